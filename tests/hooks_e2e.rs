//! The hooks source end to end: the demo target with taskscope-agent on
//! tokio's runtime hooks (no console-subscriber), read by the real client
//! and model, and by the real `taskscope watch` binary.

use crate::common::{self, DemoTarget, group, spawn_line, watch_until};
use std::process::Command;
use std::time::Duration;
use taskscope::analysis::{Params, Reason};

const LEAKS: [&str; 4] = ["idle-conn", "full-channel", "sleepers", "oneshot"];

/// The line number in `src/demo/target.rs:LINE:COL`.
fn line_of(loc: &str) -> usize {
    loc.strip_prefix("src/demo/target.rs:")
        .and_then(|r| r.split(':').next())
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("not a demo location: {loc}"))
}

#[test]
fn every_leak_is_counted_exactly_at_its_spawn_line_with_its_spawner() {
    let target = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,healthy",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "12",
    ]);
    let (state, a) = watch_until(
        target.target(),
        Duration::from_secs(60),
        Params::default(),
        |a| {
            LEAKS
                .iter()
                .all(|l| group(a, &spawn_line(l)).is_some_and(|g| g.live == 12))
                && group(a, &spawn_line("pool-worker")).is_some_and(|g| g.live == 4)
        },
    );
    assert!(state.hooks.is_some(), "read through the hooks source");
    assert!(
        state.console.tasks.is_empty(),
        "no per-task stream on this source"
    );
    for leak in LEAKS {
        let g = group(&a, &spawn_line(leak)).expect("group");
        assert_eq!(g.live, 12, "{leak}");
        assert_eq!(g.running + g.idle, 12, "{leak}");
        assert!(g.oldest.is_some(), "{leak}");
        // All idle (waiting); without a capture, their waits are not
        // captured yet, and say so (never `idle`).
        assert_eq!(
            g.reasons.first().map(|r| r.reason),
            Some(Reason::Uncaptured),
            "{leak}"
        );
        // Spawn ancestry: all twelve were spawned by one loop task, itself
        // spawned a few lines above the leak's spawn.
        assert_eq!(g.spawned_from.len(), 1, "{leak}: {:?}", g.spawned_from);
        let (loc, n) = &g.spawned_from[0];
        let (parent, own) = (line_of(loc), line_of(&g.location));
        assert!(
            parent < own && own - parent < 20,
            "{leak}: {loc} spawned {}",
            g.location
        );
        assert_eq!(*n, 12, "{leak}");
    }
    // The count history came from the target's totals: each leak rose to
    // twelve and stayed (the producers whose send fitted in the channel's
    // four slots finished).
    for leak in LEAKS {
        let key = group(&a, &spawn_line(leak)).expect("group").key;
        let h = state.log.histories.get(&key).expect("history");
        let done = if leak == "full-channel" { 4 } else { 0 };
        assert_eq!(h.current(), 12, "{leak}");
        assert_eq!(
            (h.total_births, h.total_deaths),
            (12 + done, done),
            "{leak}"
        );
    }
}

#[test]
fn watch_gates_on_the_hooks_source() {
    let leaky = DemoTarget::start(&["--source", "hooks", "--leak-every", "400ms"]);
    let healthy = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        "healthy",
        "--healthy-rate",
        "40",
    ]);
    let run = |addr: &str| {
        Command::new(common::BIN)
            .args([
                "watch",
                addr,
                "--source",
                "hooks",
                "--fail-on-suspect",
                "--duration",
                "25s",
                "--window",
                "20s",
                "--format",
                "json",
            ])
            .output()
            .expect("run watch")
    };
    let (leaky_out, healthy_out) = std::thread::scope(|s| {
        let a = s.spawn(|| run(&leaky.addr));
        let b = s.spawn(|| run(&healthy.addr));
        (a.join().expect("leaky"), b.join().expect("healthy"))
    });
    assert_eq!(
        leaky_out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&leaky_out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&leaky_out.stdout).expect("json");
    let suspects = common::suspect_locations(&doc);
    for leak in LEAKS {
        let line = spawn_line(leak);
        assert!(
            suspects.iter().any(|l| l.starts_with(&line)),
            "{leak} ({line}) not among the suspects: {suspects:?}"
        );
    }
    // The final capture names each leak's wait, put in its group by the
    // spawn location the agent recorded.
    for (leak, reason) in [
        ("idle-conn", "socket_read"),
        ("full-channel", "channel_send"),
        ("sleepers", "sleep"),
        ("oneshot", "oneshot"),
    ] {
        let line = spawn_line(leak);
        let g = doc["suspects"]
            .as_array()
            .expect("suspects")
            .iter()
            .find(|g| g["location"].as_str().is_some_and(|l| l.starts_with(&line)))
            .expect("suspect");
        let main = &g["blocked_on"][0];
        assert_eq!(main["reason"], reason, "{leak}: {g:#}");
        assert!(main["captured"].as_u64() > Some(0), "{leak}: {main}");
        assert!(
            g["spawned_from"][0]["name"]
                .as_str()
                .is_some_and(|l| l.starts_with("src/demo/target.rs:")),
            "{leak}: {g:#}"
        );
    }
    assert_eq!(
        healthy_out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&healthy_out.stdout),
        String::from_utf8_lossy(&healthy_out.stderr)
    );
}

#[test]
fn snapshots_of_the_hooks_source_load_and_diff() {
    let target = DemoTarget::start(&["--source", "hooks", "--leak-every", "200ms"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (a, b) = (dir.join("a.json"), dir.join("b.json.gz"));
    let snap = |path: &std::path::Path| {
        let out = Command::new(common::BIN)
            .args([
                "snapshot",
                &target.addr,
                "--source",
                "hooks",
                "--duration",
                "1s",
                "-o",
            ])
            .arg(path)
            .output()
            .expect("snapshot");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    snap(&a);
    // Until every leak holds 20 tasks more than the first snapshot's.
    let first: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a).expect("read")).expect("json");
    let base: Vec<u64> = LEAKS
        .iter()
        .map(|leak| {
            let line = spawn_line(leak);
            first["aggregates"]
                .as_array()
                .expect("aggregates")
                .iter()
                .filter(|g| g["location"].as_str().is_some_and(|l| l.starts_with(&line)))
                .filter_map(|g| g["live"].as_u64())
                .sum()
        })
        .collect();
    common::watch_until(
        target.target(),
        Duration::from_secs(60),
        taskscope::analysis::Params::default(),
        |an| {
            LEAKS.iter().zip(&base).all(|(leak, &n)| {
                common::group(an, &spawn_line(leak)).is_some_and(|g| u64::from(g.live) >= n + 20)
            })
        },
    );
    snap(&b);
    // The file follows the published schema and holds the groups.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../assets/snapshot.schema.json")).expect("schema");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a).expect("read")).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        written["aggregates"]
            .as_array()
            .is_some_and(|g| !g.is_empty())
    );
    let out = Command::new(common::BIN)
        .args(["diff", "--format", "json"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("diff");
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for leak in LEAKS {
        let line = spawn_line(leak);
        let row = doc["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["location"].as_str().is_some_and(|l| l.starts_with(&line)))
            .unwrap_or_else(|| panic!("{leak} missing: {doc:#}"));
        assert_eq!(row["change"], "grown", "{leak}: {row}");
        assert!(row["delta"].as_i64() > Some(15), "{leak}: {row}");
    }
}
