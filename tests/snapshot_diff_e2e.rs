//! Two snapshots of the demo target taken ~30 s apart (once each leak
//! grew by 60): the leaking groups
//! have grown, the healthy ones have not.

use crate::common::{self, DemoTarget, spawn_line};
use std::process::Command;

fn snapshot(addr: &str, path: &std::path::Path) {
    let out = Command::new(common::BIN)
        .args(["snapshot", addr, "--duration", "2s", "-o"])
        .arg(path)
        .output()
        .expect("run snapshot");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.starts_with(&format!("wrote {}: ", path.display())),
        "{summary}"
    );
}

#[test]
fn leaks_grow_between_snapshots_and_healthy_groups_stay_flat() {
    let target = DemoTarget::start(&["--leak-every", "500ms", "--healthy-rate", "40"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (a, b) = (dir.join("before.json"), dir.join("after.json.gz"));
    // Every scenario has started before the first snapshot.
    let lines: Vec<String> = [
        "idle-conn",
        "full-channel",
        "sleepers",
        "oneshot",
        "healthy-request",
    ]
    .iter()
    .map(|s| spawn_line(s))
    .collect();
    common::watch_until(
        target.target(),
        std::time::Duration::from_secs(30),
        taskscope::analysis::Params::default(),
        |an| lines.iter().all(|l| common::group(an, l).is_some()),
    );
    snapshot(&target.addr, &a);
    // Until every leak holds 60 tasks more than the first snapshot did
    // (2 a second: about 30 s).
    let before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a).expect("read")).expect("json");
    let live_in = |snap: &serde_json::Value, leak: &str| {
        let line = spawn_line(leak);
        snap["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| {
                t["location"].as_str().is_some_and(|l| l.starts_with(&line))
                    && t["state"] != "completed"
            })
            .count() as u32
    };
    let leaks = ["idle-conn", "full-channel", "sleepers", "oneshot"];
    let base: Vec<u32> = leaks.iter().map(|l| live_in(&before, l)).collect();
    common::watch_until(
        target.target(),
        std::time::Duration::from_secs(90),
        taskscope::analysis::Params::default(),
        |an| {
            leaks
                .iter()
                .zip(&base)
                .all(|(l, &n)| common::group(an, &spawn_line(l)).is_some_and(|g| g.live >= n + 60))
        },
    );
    snapshot(&target.addr, &b);
    // The file follows the published schema.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../assets/snapshot.schema.json"))
            .expect("schema parses");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&a).expect("read")).expect("json");
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "snapshot does not match its schema: {errors:#?}"
    );
    assert!(!written["tasks"].as_array().expect("tasks").is_empty());
    let mut wrong = written.clone();
    wrong["tasks"][0]["reason"] = serde_json::json!("daydreaming");
    assert!(
        !validator.is_valid(&wrong),
        "the schema must reject unknown reasons"
    );

    let out = Command::new(common::BIN)
        .args(["diff", "--format", "json"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run diff");
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["format"], "taskscope-diff");
    let diff_schema: serde_json::Value =
        serde_json::from_str(include_str!("../assets/diff.schema.json")).expect("schema parses");
    let diff_validator = jsonschema::validator_for(&diff_schema).expect("schema compiles");
    let errors: Vec<String> = diff_validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "diff JSON off schema: {errors:#?}");
    let rows = doc["rows"].as_array().expect("rows");
    let row = |name: &str| {
        let line = spawn_line(name);
        rows.iter()
            .find(|r| r["location"].as_str().is_some_and(|l| l.starts_with(&line)))
            .cloned()
    };
    for leak in ["idle-conn", "full-channel", "sleepers", "oneshot"] {
        let r = row(leak).unwrap_or_else(|| panic!("{leak} missing from the diff: {rows:#?}"));
        let delta = r["delta"].as_i64().expect("delta");
        // 60 more were live before the second snapshot began, at 2 a
        // second (and its 2 s of watching add a few).
        assert!((55..=90).contains(&delta), "{leak} grew by {delta}");
        assert_eq!(r["change"], "grown", "{leak}: {r}");
        assert!(
            r["suspect"].is_string(),
            "{leak} should be suspect in the newer snapshot: {r}"
        );
    }
    if let Some(r) = row("pool-worker") {
        panic!("the fixed pool changed: {r}");
    }
    if let Some(r) = row("healthy-request") {
        let delta = r["delta"].as_i64().expect("delta");
        assert!(
            delta.abs() <= 12,
            "healthy requests are churn, not growth: {r}"
        );
        assert!(r["suspect"].is_null(), "{r}");
    }
    // The text form carries the same rows.
    let text = Command::new(common::BIN)
        .args(["diff", "--format", "text"])
        .arg(&a)
        .arg(&b)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&spawn_line("sleepers")), "{text}");
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.contains("BEFORE") && l.contains("Δ/MIN")),
        "{text}"
    );
}
