//! The write-ups' leaks on the stack services run, end to end: the demo
//! target's axum server (taskscope-agent's drop-in) whose clients went
//! quiet, its tonic server whose streaming calls are never closed, and its
//! reqwest calls with no timeout to an upstream that never answers, beside
//! a healthy reqwest poller of a plain axum server; read by the real
//! `taskscope watch` on the hooks source. Every leak is flagged with its
//! exact wait or an honest, inferred label; nothing healthy is flagged; no
//! group is at the agent's own source; the executor's line is split by the
//! tasks that spawned through it.

use crate::common::{self, DemoTarget, web_line};
use std::process::Command;

fn group<'a>(
    doc: &'a serde_json::Value,
    key: &str,
    at: impl Fn(&str) -> bool,
) -> &'a serde_json::Value {
    doc[key]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["location"].as_str().is_some_and(&at))
        .unwrap_or_else(|| panic!("no such group in {key}: {doc:#}"))
}

/// The group's main reason, and how its tasks have it (capture,
/// inferred…).
fn main_wait(g: &serde_json::Value) -> (String, u64, u64) {
    let m = &g["blocked_on"][0];
    (
        m["reason"].as_str().unwrap_or_default().to_string(),
        m["captured"].as_u64().unwrap_or(0),
        m["inferred"].as_u64().unwrap_or(0),
    )
}

#[test]
fn web_leaks_are_flagged_with_exact_waits_or_honest_labels() {
    let target = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        "axum-idle,grpc-streams,http-no-timeout,healthy",
        "--leak-every",
        "150ms",
    ]);
    let out = Command::new(common::BIN)
        .args([
            "watch",
            &target.addr,
            "--source",
            "hooks",
            "--fail-on-suspect",
            "--duration",
            "20s",
            "--window",
            "15s",
            "--format",
            "json",
        ])
        .output()
        .expect("run watch");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let suspects = common::suspect_locations(&doc);

    // The idle connections of an axum server, at the line that started
    // it, waiting to read a request: captured.
    let axum = web_line("serve", "axum-idle");
    let g = group(&doc, "suspects", |l| l.starts_with(&axum));
    let (reason, exact, _) = main_wait(g);
    assert_eq!(reason, "request_read", "{g:#}");
    assert!(exact > 0, "{g:#}");

    // The tonic server's open streaming calls: hyper's stream tasks, split
    // by the server's line, each waiting on the health service's watch.
    let grpc = web_line("serve", "grpc-streams");
    let g = group(&doc, "suspects", |l| {
        let (at, by) = taskscope_proto::names::unsplit_location(l);
        at.contains("/src/rt/bounds.rs:") && by.is_some_and(|b| b.starts_with(&grpc))
    });
    let (reason, exact, _) = main_wait(g);
    assert_eq!(reason, "watch", "{g:#}");
    assert!(exact > 0, "{g:#}");

    // The calls with no timeout: each caller awaits a reqwest response
    // (captured), and reqwest's connection under it, which reqwest spawned
    // itself, is out of reach: named by what it is, its wait inferred from
    // hyper's shape, split by the callers' line.
    let fetch = web_line("spawn", "http-no-timeout");
    let g = group(&doc, "suspects", |l| l.starts_with(&fetch));
    let (reason, exact, _) = main_wait(g);
    assert_eq!(reason, "reqwest_response", "{g:#}");
    assert!(exact > 0, "{g:#}");
    let split_by = |by_line: &str, l: &str| {
        let (at, by) = taskscope_proto::names::unsplit_location(l);
        at.contains("hyper-util-")
            && at.contains("/src/rt/tokio.rs:")
            && by.is_some_and(|b| b.starts_with(by_line))
    };
    let g = group(&doc, "suspects", |l| split_by(&fetch, l));
    let (reason, exact, inferred) = main_wait(g);
    assert_eq!((reason.as_str(), exact), ("response_read", 0), "{g:#}");
    assert!(inferred > 0, "{g:#}");
    assert!(
        g["waits"]
            .as_str()
            .is_some_and(|w| w.contains("HTTP client connections") && w.contains("TracedExecutor")),
        "{g:#}"
    );
    assert!(
        g["suspect"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("(inferred)")),
        "{g:#}"
    );

    // Nothing healthy: the poller's one pooled connection, the plain axum
    // server's connections (out of reach, named), the healthy requests.
    let poller = web_line("spawn", "healthy-poller");
    assert!(
        !suspects.iter().any(|l| split_by(&poller, l)),
        "the healthy poller's connection flagged: {suspects:?}"
    );
    let g = group(&doc, "top_groups", |l| split_by(&poller, l));
    assert!(
        g["tasks"].as_u64().is_some_and(|n| (1..=3).contains(&n)),
        "a pooled connection or two: {g:#}"
    );
    assert!(
        !suspects
            .iter()
            .any(|l| l.contains("axum-") && l.contains("/src/serve/mod.rs")),
        "the plain axum server flagged: {suspects:?}"
    );
    assert!(
        !suspects.iter().any(|l| l.starts_with("src/demo/target.rs")),
        "healthy requests flagged: {suspects:?}"
    );
    // No group anywhere at the agent's own source.
    for key in ["suspects", "top_groups"] {
        for g in doc[key].as_array().expect("groups") {
            let l = g["location"].as_str().unwrap_or_default();
            assert!(
                !l.contains("taskscope-agent") && !l.contains("agent/src/"),
                "a group at the agent's source: {l}"
            );
        }
    }
    // Where the waits are out of reach, nothing reads `idle`.
    for key in ["suspects", "top_groups"] {
        for g in doc[key].as_array().expect("groups") {
            for m in g["blocked_on"].as_array().expect("mix") {
                assert_ne!(m["reason"], "idle", "{g:#}");
            }
        }
    }
}
