//! Looping sleepers beside churn, on console data only: worker loops that
//! sleep per round (each round a new `Sleep` resource) next to short
//! requests. The sleeps are linked to their tasks on the target's own
//! timestamps (the `Sleep` created inside the task's last poll); and when
//! the subscriber lags by more than a round, so that each round's `Sleep`
//! arrives after its task polled again, the group is known to sleep from
//! the sleeps that arrive late (`model::late`).

use crate::common::{DemoTarget, group, report_group, spawn_line, watch_json, watch_until};
use std::time::Duration;
use taskscope::analysis::{Params, Reason};

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
        &["--duration", "8s", "--no-waits", "--source", "console"],
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
    // new tasks a second, so 100 requests a second put it further and
    // further behind, soon by more than the loopers' 2 s round. Each
    // round's `Sleep` then arrives after its task polled again, dropped.
    let demo = DemoTarget::start(&[
        "--scenarios",
        "loop-sleepers,healthy",
        "--healthy-rate",
        "100",
        "--leak-every",
        "20ms",
        "--loop-sleep",
        "2s",
        "--publish-interval",
        "1s",
        "--no-agent",
    ]);
    let line = spawn_line("loop-sleepers");
    let (state, a) = watch_until(
        demo.target(),
        Duration::from_secs(60),
        Params::default(),
        |a| {
            group(a, &line).is_some_and(|g| {
                g.live == 40
                    && g.reasons
                        .iter()
                        .any(|r| r.reason == Reason::Sleep && r.tasks >= 36)
            })
        },
    );
    // The case: the loopers' last polls are newer than every span the
    // console sent, so no live sleep of theirs is known; they read sleep
    // because their group's earlier sleeps arrived late in their polls.
    let g = group(&a, &line).expect("group");
    let inferred = g
        .tasks
        .iter()
        .filter(|r| r.verdict.reason == Reason::Sleep && r.verdict.resource.is_none())
        .filter(|r| r.verdict.ambiguous)
        .count();
    let unseen = state
        .console
        .tasks
        .values()
        .filter(|t| t.name() == Some("looper"))
        .filter(|t| t.own_poll.0.is_some_and(|p| state.console.late.unseen(p)))
        .count();
    assert!(
        unseen >= 30,
        "only {unseen} of 40 loopers' polls are unseen"
    );
    assert!(inferred >= 30, "only {inferred} of 40 inferred");
}
