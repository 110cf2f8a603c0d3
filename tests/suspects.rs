//! The leak detector end to end: against the demo target with every leak
//! and the healthy workload, each leaking group becomes a suspect with the
//! right blocked-on reason, and no other group does.

use crate::common::{self, DemoTarget, group, spawn_line, watch_until};
use std::time::Duration;
use taskscope::analysis::{Params, Reason, SuspectKind};

#[test]
fn every_demo_leak_is_suspect_with_its_reason_and_nothing_healthy_is() {
    let target = DemoTarget::start(&[
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,healthy",
        "--leak-every",
        "400ms",
        "--healthy-rate",
        "40",
    ]);
    let leaks = [
        ("idle-conn", Reason::Untracked),
        ("full-channel", Reason::ChannelSend),
        ("sleepers", Reason::Sleep),
        ("oneshot", Reason::Oneshot),
    ];
    let params = Params {
        window: Duration::from_secs(30),
        ..Params::default()
    };
    let leak_lines: Vec<String> = leaks.iter().map(|(l, _)| spawn_line(l)).collect();
    let started = std::time::Instant::now();
    let (_state, a) = watch_until(target.target(), Duration::from_secs(90), params, |a| {
        // At every look, nothing but a leak may be suspect.
        for g in a.groups.iter().filter(|g| g.suspect.is_some()) {
            assert!(
                leak_lines.iter().any(|l| g.location.starts_with(l)),
                "healthy group flagged: {} — {:?}\n{}",
                g.location,
                g.suspect,
                common::describe(Some(a))
            );
        }
        leak_lines
            .iter()
            .all(|l| group(a, l).is_some_and(|g| g.suspect.is_some()))
            // Healthy churn has been watched for longer than the window.
            && group(a, &spawn_line("healthy-request")).is_some_and(|g| g.finished >= 100)
            && started.elapsed() >= Duration::from_secs(40)
    });
    for (leak, reason) in leaks {
        let g = group(&a, &spawn_line(leak)).expect("group");
        let s = g.suspect.as_ref().expect("suspect");
        assert_eq!(s.kind, SuspectKind::Growing, "{leak}: {}", s.reason);
        assert_eq!(g.main_reason().map(|r| r.reason), Some(reason), "{leak}");
        assert!(s.reason.contains(reason.short()), "{leak}: {}", s.reason);
        assert!(
            s.reason.contains("none finished") || leak == "full-channel",
            "{leak}: {}",
            s.reason
        );
    }
    let suspects: Vec<&str> = a
        .groups
        .iter()
        .filter(|g| g.suspect.is_some())
        .map(|g| &*g.location)
        .collect();
    assert_eq!(
        suspects.len(),
        4,
        "only the leaks are suspect: {suspects:?}\n{}",
        common::describe(Some(&a))
    );
    // Suspects sort first.
    assert!(a.groups[..4].iter().all(|g| g.suspect.is_some()));
    assert_eq!(a.totals.suspects, 4);
}
