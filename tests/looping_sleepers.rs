//! Looping sleepers beside churn, on console data only: worker loops that
//! sleep per round (each round a new `Sleep` resource) next to short
//! requests. The sleeps are linked to their tasks on the target's own
//! timestamps (the `Sleep` created inside the task's last poll); and when
//! the subscriber lags by more than a round, so that each round's `Sleep`
//! arrives after its task polled again, the group is known to sleep from
//! the sleeps that arrive late (`model::late`).

mod common;

use common::{DemoTarget, report_group, watch_json};

/// How many of the group's tasks read `sleep`, and how many it has.
fn sleeping(rep: &serde_json::Value, group: &str) -> (u64, u64) {
    let g = report_group(rep, group);
    let tasks = g["tasks"].as_u64().unwrap();
    let sleeping = g["blocked_on"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["label"] == "sleep")
        .map(|m| m["tasks"].as_u64().unwrap())
        .sum::<u64>();
    (sleeping, tasks)
}

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
    let (sleeping, tasks) = sleeping(&rep, "loop-sleepers");
    assert_eq!(tasks, 40);
    assert!(
        sleeping * 10 >= tasks * 9,
        "{sleeping} of {tasks} read as sleep: {}",
        report_group(&rep, "loop-sleepers")["blocked_on"]
    );
}

#[test]
fn a_group_that_only_sleeps_reads_sleep_when_the_console_lags_more_than_a_round() {
    // The subscriber's default publish interval (1 s): it sends about 65
    // new tasks a second, so 300 requests a second put it further and
    // further behind, soon by more than the loopers' 2 s round.
    let demo = DemoTarget::start(&[
        "--scenarios",
        "loop-sleepers,healthy",
        "--healthy-rate",
        "300",
        "--leak-every",
        "20ms",
        "--loop-sleep",
        "2s",
        "--publish-interval",
        "1s",
        "--no-agent",
    ]);
    let (code, rep) = watch_json(
        &demo.addr,
        &["--duration", "25s", "--no-dumps", "--source", "console"],
    );
    assert_eq!(code, Some(0));
    // The scenario: the console lags by more than a round.
    let lag = rep["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str()?.strip_prefix("target's console lags "))
        .next()
        .unwrap_or_else(|| panic!("no lag: {}", rep["warnings"]))
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let secs = taskscope::cli::parse_duration(&lag)
        .unwrap_or_else(|e| panic!("{lag}: {e}"))
        .as_secs();
    assert!(secs > 2, "the console lags {lag}, not more than a round");
    let (sleeping, tasks) = sleeping(&rep, "loop-sleepers");
    assert_eq!(tasks, 40);
    assert!(
        sleeping * 10 >= tasks * 9,
        "{sleeping} of {tasks} read as sleep (console lag {lag}): {}",
        report_group(&rep, "loop-sleepers")["blocked_on"]
    );
}
