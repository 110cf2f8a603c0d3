//! Looping sleepers beside churn, on console data only: worker loops that
//! sleep 3 s per round (each round a new `Sleep` resource) next to 80
//! short requests a second, at console-subscriber's default settings. The
//! sleeps are linked to their tasks on the target's own timestamps (the
//! `Sleep` created inside the task's last poll), so however late the
//! resources arrive, the group reads `sleep`, round after round.

mod common;

use common::{BIN, DemoTarget, spawn_line};
use std::process::Command;

#[test]
fn a_group_that_only_sleeps_reads_sleep_under_churn() {
    let demo = DemoTarget::start(&[
        "--scenarios",
        "loop-sleepers,healthy",
        "--healthy-rate",
        "80",
        "--leak-every",
        "50ms",
        "--no-agent",
    ]);
    // Two rounds of every looper's sleep.
    let out = Command::new(BIN)
        .args(["watch", &demo.addr, "--duration", "8s", "--format", "json"])
        .args(["--no-dumps", "--source", "console"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let line = spawn_line("loop-sleepers");
    let g = rep["top_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["location"].as_str().unwrap().starts_with(&line))
        .expect("the loopers' group");
    let tasks = g["tasks"].as_u64().unwrap();
    assert_eq!(tasks, 40, "{g}");
    let sleeping = g["blocked_on"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["label"] == "sleep")
        .map(|m| m["tasks"].as_u64().unwrap())
        .sum::<u64>();
    assert!(
        sleeping * 10 >= tasks * 9,
        "{sleeping} of {tasks} read as sleep: {}",
        g["blocked_on"]
    );
}
