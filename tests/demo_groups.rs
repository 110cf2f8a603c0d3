//! The model receives the demo's groups, at their exact spawn locations,
//! with the expected counts, from a real console-subscriber.

use crate::common::{self, DemoTarget, group, spawn_line, watch_until};
use std::time::Duration;
use taskscope::analysis::Params;

#[test]
fn demo_leaks_arrive_grouped_by_spawn_location_with_exact_counts() {
    let target = DemoTarget::start(&[
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,healthy",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "12",
    ]);
    let leaks = ["idle-conn", "full-channel", "sleepers", "oneshot"];
    let (_state, a) = watch_until(
        target.target(),
        Duration::from_secs(60),
        Params::default(),
        |a| {
            leaks
                .iter()
                .all(|l| group(a, &spawn_line(l)).is_some_and(|g| g.live == 12))
                && group(a, &spawn_line("pool-worker")).is_some_and(|g| g.live == 4)
        },
    );
    for (leak, name) in [
        ("idle-conn", "conn-handler"),
        ("full-channel", "producer"),
        ("sleepers", "stale-worker"),
        ("oneshot", "await-reply"),
    ] {
        let g = group(&a, &spawn_line(leak)).expect("group");
        assert_eq!(g.live, 12, "{leak}");
        assert_eq!(g.names.first().map(|n| &*n.0), Some(name), "{leak}");
        assert_eq!(g.distinct_names, 1, "{leak}");
        assert!(g.oldest.is_some());
    }
    // The fixed pool: four workers with four names at one location.
    let pool = group(&a, &spawn_line("pool-worker")).expect("pool group");
    assert_eq!(pool.live, 4);
    assert_eq!(pool.distinct_names, 4);
    // Every group is keyed by a distinct location.
    let mut locs: Vec<&str> = a.groups.iter().map(|g| &*g.location).collect();
    let n = locs.len();
    locs.sort();
    locs.dedup();
    assert_eq!(locs.len(), n, "one row per location and kind");
}

#[test]
fn a_target_on_a_unix_socket_is_reached_with_a_file_url() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let sock = tmp.path().join("demo.sock");
    let sock_arg = sock.to_str().expect("path").to_string();
    let target = DemoTarget::start(&[
        "--unix",
        &sock_arg,
        "--scenarios",
        "sleepers",
        "--leak-every",
        "20ms",
        "--max-per-leak",
        "6",
    ]);
    assert_eq!(target.addr, format!("file://{sock_arg}"));
    let (_state, a) = watch_until(
        target.target(),
        Duration::from_secs(30),
        Params::default(),
        |a| group(a, &spawn_line("sleepers")).is_some_and(|g| g.live == 6),
    );
    assert_eq!(group(&a, &spawn_line("sleepers")).map(|g| g.live), Some(6));
    // The command line takes the same address.
    let out = std::process::Command::new(common::BIN)
        .args(["connect", &target.addr, "--once"])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.starts_with(&format!("file://{sock_arg}: ")),
        "{table}"
    );
    assert!(table.contains("[stale-worker]"), "{table}");
}
