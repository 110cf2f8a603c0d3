//! tokio-console's warnings, as taskscope words them: a task idle with no
//! waker can never run again (a lost waker): a proven leak, flagged however
//! flat its group's count is; `block_on`'s future, polled without a waker,
//! is not.

use crate::common::{self, DemoTarget, report_group, spawn_line, watch_json};

#[test]
fn a_lost_waker_is_a_proven_leak() {
    let demo = DemoTarget::start(&["--scenarios", "lost-waker,healthy", "--leak-every", "100ms"]);
    let (code, rep) = watch_json(
        &demo.addr,
        &["--duration", "7s", "--fail-on-suspect", "--no-waits"],
    );
    assert_eq!(code, Some(1), "suspects found");
    let line = spawn_line("lost-waker");
    let suspects = rep["suspects"].as_array().unwrap();
    assert_eq!(suspects.len(), 1, "only the lost wakers: {suspects:#?}");
    let s = &suspects[0];
    assert!(s["location"].as_str().unwrap().starts_with(&line), "{s}");
    assert_eq!(s["tasks"], 3);
    assert_eq!(s["suspect"]["kind"], "lost_waker", "{s}");
    let reason = s["suspect"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("3 tasks idle with no waker, up to ")
            && reason.ends_with("nothing can wake them again (lost waker)"),
        "{reason}"
    );
    assert_eq!(s["blocked_on"][0]["label"], "lost waker", "{s}");
    // `block_on`'s future has no counted waker (the blocking thread polls
    // it): not a lost one.
    let block_on = rep["top_groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "block_on")
        .expect("the block_on group");
    assert_ne!(
        block_on["blocked_on"][0]["label"], "lost waker",
        "{block_on}"
    );
}

#[test]
fn tokio_console_s_warnings_show_on_their_groups() {
    let demo = DemoTarget::start(&["--scenarios", "lints"]);
    let (code, rep) = watch_json(&demo.addr, &["--duration", "3s", "--no-waits"]);
    assert_eq!(code, Some(0));
    let warnings = |name: &str| -> Vec<(String, u64)> {
        report_group(&rep, name)["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .map(|w| {
                        (
                            w["lint"].as_str().unwrap().to_string(),
                            w["tasks"].as_u64().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let w = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(l, n)| (l.to_string(), *n)).collect()
    };
    assert_eq!(warnings("large-future"), w(&[("large_future", 3)]));
    // A boxed future's `size.bytes` is the box's: only `auto_boxed`.
    assert_eq!(warnings("boxed-future"), w(&[("auto_boxed", 2)]));
    assert_eq!(warnings("never-yields"), w(&[("long_poll", 1)]));
    assert_eq!(warnings("self-waker"), w(&[("self_wakes", 1)]));
    // The Markdown report says them on the rows.
    let md = std::process::Command::new(common::BIN)
        .args(["watch", &demo.addr, "--duration", "1s", "--format", "md"])
        .args(["--no-waits"])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("⚠ large future ×3"), "{md}");
}
