//! From a suspect to its fix, on real leaks: the demo target runs every
//! kind of leak the write-ups describe (plus the probes: a held mutex,
//! silent senders, a Notify nobody signals, tasks awaiting tasks that never
//! end), on the hooks source; `taskscope watch` names each suspect's
//! likely cause and its fix, and says nothing for the healthy groups.

use crate::common::{self, DemoTarget, spawn_line, web_line};
use std::process::Command;

#[test]
fn every_kind_of_leak_gets_its_cause_and_fix() {
    let target = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,mutex-wait,recv,notify,axum-idle,grpc-streams,http-no-timeout,healthy",
        "--leak-every",
        "150ms",
    ]);
    let out = Command::new(common::BIN)
        .args([
            "watch",
            &target.addr,
            "--source",
            "hooks",
            "--duration",
            "15s",
            "--window",
            "10s",
            "--format",
            "json",
        ])
        .output()
        .expect("run watch");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let suspects = doc["suspects"].as_array().expect("suspects");
    let advice = |at: &dyn Fn(&str) -> bool| {
        let g = suspects
            .iter()
            .find(|g| g["location"].as_str().is_some_and(at))
            .unwrap_or_else(|| panic!("not a suspect: {suspects:#?}"));
        g["advice"]["fix"].as_str().unwrap_or_default().to_string()
    };
    let at_line = |line: String| move |l: &str| l.starts_with(&line);
    for (name, word) in [
        ("idle-conn", "tokio::time::timeout(d, stream.read"),
        ("full-channel", "send_timeout"),
        ("sleepers", "CancellationToken"),
        ("oneshot", "drop the Sender"),
        ("mutex-wait", "drop the guard"),
        ("recv", "drop the Senders"),
        ("notify", "notify_one"),
    ] {
        let fix = advice(&at_line(spawn_line(name)));
        assert!(fix.contains(word), "{name}: {fix}");
    }
    let fix = advice(&at_line(web_line("serve", "axum-idle")));
    assert!(fix.contains("header_read_timeout"), "axum: {fix}");
    let fix = advice(&at_line(web_line("spawn", "http-no-timeout")));
    assert!(
        fix.contains("ClientBuilder::timeout"),
        "reqwest calls: {fix}"
    );
    let split_by = |by: String| {
        move |l: &str| {
            let (at, spawner) = taskscope_proto::names::unsplit_location(l);
            at.contains("hyper-util-") && spawner.is_some_and(|s| s.starts_with(&by))
        }
    };
    let fix = advice(&split_by(web_line("spawn", "http-no-timeout")));
    assert!(
        fix.contains("pool_idle_timeout"),
        "reqwest's connections: {fix}"
    );
    let grpc = web_line("serve", "grpc-streams");
    let fix = advice(&move |l: &str| {
        let (at, spawner) = taskscope_proto::names::unsplit_location(l);
        at.contains("src/rt/bounds.rs") && spawner.is_some_and(|s| s.starts_with(&grpc))
    });
    assert!(fix.contains("keepalive"), "gRPC streams: {fix}");
    // Healthy groups are not suspects, and carry no advice.
    for g in doc["top_groups"].as_array().expect("groups") {
        if g["suspect"].is_null() {
            assert!(g["advice"].is_null(), "advice for a healthy group: {g:#}");
        }
    }
}
