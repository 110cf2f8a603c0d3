//! Looping sleepers beside churn, on console data only: worker loops that
//! sleep 3 s per round (each round a new `Sleep` resource) next to 80
//! short requests a second, at console-subscriber's default settings. The
//! sleeps are linked to their tasks on the target's own timestamps (the
//! `Sleep` created inside the task's last poll), so however late the
//! resources arrive, the group reads `sleep`, round after round.

mod common;

use common::{DemoTarget, report_group, watch_json};

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
    let (code, rep) = watch_json(
        &demo.addr,
        &["--duration", "8s", "--no-dumps", "--source", "console"],
    );
    assert_eq!(code, Some(0));
    let g = report_group(&rep, "loop-sleepers");
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
