//! Reports and the leak gate against the demo target: every leaking group
//! is named with its reason in Markdown, JSON and HTML, no healthy group
//! is, hostile names arrive inert, and `watch --fail-on-suspect` exits 1 on
//! the leaks and 0 on a healthy-only run.

use crate::common::{self, DemoTarget, spawn_line};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

// The demo target serves captures (taskscope-agent): each headless run
// takes one at its end, so even the socket read is named exactly.
const LEAKS: [(&str, &str); 4] = [
    ("idle-conn", "socket_read"),
    ("full-channel", "channel_send"),
    ("sleepers", "sleep"),
    ("oneshot", "oneshot"),
];

fn start(args: &[&str]) -> Child {
    Command::new(common::BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run taskscope")
}

fn finish(c: Child) -> Output {
    c.wait_with_output().expect("wait")
}

fn run(args: &[&str]) -> Output {
    finish(start(args))
}

fn validate(doc: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../assets/report.schema.json")).expect("schema parses");
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match its schema: {errors:#?}"
    );
}

fn check_json(doc: &serde_json::Value) {
    validate(doc);
    let suspects = doc["suspects"].as_array().expect("suspects");
    for (leak, reason) in LEAKS {
        let line = spawn_line(leak);
        let g = suspects
            .iter()
            .find(|g| g["location"].as_str().is_some_and(|l| l.starts_with(&line)))
            .unwrap_or_else(|| panic!("{leak} is not a suspect: {doc:#}"));
        assert_eq!(g["blocked_on"][0]["reason"], reason, "{leak}");
        assert!(
            g["blocked_on"][0]["captured"].as_u64() > Some(0),
            "{leak}: the reason comes from the capture: {g:#}"
        );
        assert!(
            !g["stacks"].as_array().expect("stacks").is_empty(),
            "{leak} has its async stack"
        );
        assert!(
            !g["samples"].as_array().expect("samples").is_empty(),
            "{leak} has sample tasks"
        );
        assert!(
            g["history"].as_array().expect("history").len() > 10,
            "{leak} has a history"
        );
    }
    assert_eq!(
        suspects.len(),
        4,
        "only the leaks: {:#?}",
        suspects.iter().map(|g| &g["location"]).collect::<Vec<_>>()
    );
}

/// A directory of its own, removed when dropped.
fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn reports_and_the_leak_gate_against_the_demo() {
    let leaky = DemoTarget::start(&[
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,healthy,hostile",
        "--leak-every",
        "400ms",
        "--healthy-rate",
        "40",
    ]);
    let healthy = DemoTarget::start(&["--scenarios", "healthy", "--healthy-rate", "40"]);
    let d_dir = tmp();
    let d = d_dir.path();
    let (html, snap) = (d.join("live.html"), d.join("snap.json"));
    let watch_args = ["--duration", "25s", "--window", "20s"];
    // Four headless runs at once, so the test takes one watch's time.
    let live_html = start(
        &[
            &["report", &leaky.addr, "-o", html.to_str().expect("path")],
            &watch_args[..],
        ]
        .concat(),
    );
    let snapshot = start(
        &[
            &["snapshot", &leaky.addr, "-o", snap.to_str().expect("path")],
            &watch_args[..],
        ]
        .concat(),
    );
    let gate_leaky = start(
        &[
            &[
                "watch",
                &leaky.addr,
                "--fail-on-suspect",
                "--format",
                "json",
            ],
            &watch_args[..],
        ]
        .concat(),
    );
    let gate_healthy = start(
        &[
            &["watch", &healthy.addr, "--fail-on-suspect"],
            &watch_args[..],
        ]
        .concat(),
    );

    // watch: exit 1 with the report on stdout for the leaks, 0 for healthy.
    let out = finish(gate_leaky);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("watch prints JSON");
    check_json(&doc);
    assert_eq!(doc["waits"]["agent"], "ready", "{:#}", doc["waits"]);
    assert!(
        doc["waits"]["last"]["tasks"].as_u64() > Some(50),
        "the run's capture covered the target: {:#}",
        doc["waits"]
    );
    let out = finish(gate_healthy);
    assert_eq!(
        out.status.code(),
        Some(0),
        "healthy run flagged:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 suspect group(s)"));

    // The live HTML report.
    let out = finish(live_html);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = read(&html);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(
        !page.contains("<link") && !page.contains("<script"),
        "self-contained and script-free"
    );
    assert!(
        page.contains("&lt;script&gt;alert(&#39;taskscope&#39;)&lt;/script&gt;"),
        "hostile name shown as text"
    );
    assert!(!page.contains('\u{1b}'), "no escape sequences");
    assert!(
        page.contains("Async stacks (captured)")
            && page.contains("<td>capture</td>")
            && page.contains("<td>Captures</td><td>reasons marked from a capture taken"),
        "the report says which reasons come from the capture"
    );
    assert_eq!(page.matches("<svg").count(), 4, "one chart per suspect");
    for (leak, _) in LEAKS {
        assert!(
            page.contains(&spawn_line(leak)),
            "{leak} in the HTML report"
        );
    }

    // Markdown and JSON from the snapshot, offline.
    let out = finish(snapshot);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (md, json) = (d.join("snap.md"), d.join("snap.json.report.json"));
    for (path, extra) in [(&md, None), (&json, Some("json"))] {
        let mut args = vec![
            "report",
            snap.to_str().expect("path"),
            "-o",
            path.to_str().expect("path"),
            "--window",
            "20s",
        ];
        if let Some(f) = extra {
            args.extend(["--format", f]);
        }
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    check_json(&serde_json::from_str(&read(&json)).expect("json"));
    let text = read(&md);
    let suspects_part = text.split("## Top groups").next().expect("sections");
    for (leak, _) in LEAKS {
        assert!(
            suspects_part.contains(&format!("@ {}", spawn_line(leak))),
            "{leak} in the Markdown suspects:\n{text}"
        );
    }
    assert!(!suspects_part.contains(&spawn_line("healthy-request")));
    assert!(
        text.contains("\\<script\\>"),
        "hostile name escaped in Markdown"
    );
    assert!(!text.contains('\u{1b}'));
    assert!(
        !text.replace("\\<", "").contains('<'),
        "no raw HTML in the Markdown"
    );
}
