//! One verdict however it is asked for: against the demo's `slow-leaks`
//! scenario (six leaks at their own sites, from 20 a second down to one
//! every 6 s with `--leak-every 100ms`, beside 50 requests a second and a
//! worker pool), `watch`, `connect --once` and a report re-judged from a
//! snapshot taken over the same 70 s flag the same groups, on the hooks
//! source and on the console source: the five faster leaks, and nothing
//! healthy. 70 s is past the 32–64 s age bucket whose tasks the old rule
//! never counted; time is compressed by the leaks' rates, not by sleeping.

use crate::common::{BIN, DemoTarget, spawn_line_in, watch_json};
use std::collections::BTreeSet;
use std::process::Command;

/// `src/demo/leaks.rs:LINE:` of the spawn marked `// spawn: NAME`.
fn leak_line(name: &str) -> String {
    spawn_line_in(
        include_str!("../src/demo/leaks.rs"),
        "src/demo/leaks.rs",
        name,
    )
}

/// The locations a JSON report flags as growing (not stuck, not a lost
/// waker: the verdict under test is the growth rule's).
fn flagged(rep: &serde_json::Value) -> BTreeSet<String> {
    rep["suspects"]
        .as_array()
        .expect("suspects")
        .iter()
        .filter(|s| s["suspect"]["kind"] == "growing")
        .filter_map(|s| s["location"].as_str().map(str::to_string))
        .collect()
}

fn same_verdicts_everywhere(source: &str) {
    let target = DemoTarget::start(&[
        "--source",
        source,
        "--scenarios",
        "slow-leaks,healthy",
        "--leak-every",
        "100ms",
        "--healthy-rate",
        "50",
    ]);
    let addr = target.addr.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("end.json");
    // All three over the same 70 s of the same target, side by side.
    let (snapshot, once) = std::thread::scope(|s| {
        let snapshot = s.spawn(|| {
            Command::new(BIN)
                .args([
                    "snapshot",
                    &addr,
                    "--source",
                    source,
                    "--duration",
                    "70s",
                    "-o",
                ])
                .arg(&snap)
                .output()
                .expect("run snapshot")
        });
        let once = s.spawn(|| {
            Command::new(BIN)
                .args([
                    "connect",
                    &addr,
                    "--source",
                    source,
                    "--once",
                    "--duration",
                    "70s",
                ])
                .output()
                .expect("run connect --once")
        });
        (
            snapshot.join().expect("snapshot thread"),
            once.join().expect("connect thread"),
        )
    });
    let (_, watched) = watch_json(&addr, &["--source", source, "--duration", "1s"]);
    assert!(
        snapshot.status.success(),
        "{}",
        String::from_utf8_lossy(&snapshot.stderr)
    );
    let report = Command::new(BIN)
        .arg("report")
        .arg(&snap)
        .args(["--format", "json", "-o", "-"])
        .output()
        .expect("run report");
    let rejudged: serde_json::Value =
        serde_json::from_slice(&report.stdout).expect("report from the snapshot");

    let leaks: BTreeSet<String> = (1..=5)
        .map(|i| leak_line(&format!("slow-leak-{i}")))
        .collect();
    let slowest = leak_line("slow-leak-6");
    let only_leaks = |what: &str, got: &BTreeSet<String>| {
        for l in &leaks {
            assert!(
                got.iter().any(|g| g.starts_with(l)),
                "{source}, {what}: leak {l} not flagged; flagged: {got:?}"
            );
        }
        for g in got {
            assert!(
                leaks.iter().chain([&slowest]).any(|l| g.starts_with(l)),
                "{source}, {what}: healthy group {g} flagged"
            );
        }
    };
    // The snapshot's own verdict, re-judged by `report`, after 70 s.
    only_leaks("report from the snapshot", &flagged(&rejudged));
    // `watch` attached after those 70 s: the hooks source's kept seconds
    // (or the console's retained tasks) give it the same history.
    only_leaks("watch", &flagged(&watched));
    // `connect --once` prints the table, `!!` on each suspect row.
    let table = String::from_utf8_lossy(&once.stdout);
    let marked: BTreeSet<String> = table
        .lines()
        .filter(|l| l.starts_with("!!"))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("src/")))
        .map(str::to_string)
        .collect();
    only_leaks("connect --once", &marked);
    // The report says which source it read.
    let want = if source == "hooks" { "hooks" } else { "both" };
    assert_eq!(rejudged["data_source"], want, "{source}");
    assert_eq!(watched["data_source"], want, "{source}");
    assert!(
        table.contains(if source == "hooks" {
            "hooks source (taskscope-agent "
        } else {
            "console-subscriber + taskscope-agent "
        }),
        "{table}"
    );
}

#[test]
#[ignore = "end-to-end tier (long watches, 100 s): scripts/test.sh runs it"]
fn hooks_source_gives_one_verdict_everywhere() {
    same_verdicts_everywhere("hooks");
}

#[test]
#[ignore = "end-to-end tier (long watches, 100 s): scripts/test.sh runs it"]
fn console_source_gives_one_verdict_everywhere() {
    same_verdicts_everywhere("console");
}
