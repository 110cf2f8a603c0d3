//! tokio-console's warnings, as taskscope words them: a task idle with no
//! waker can never run again (a lost waker): a proven leak, flagged however
//! flat its group's count is; `block_on`'s future, polled without a waker,
//! is not.

mod common;

use common::{BIN, DemoTarget, spawn_line};
use std::process::Command;

#[test]
fn a_lost_waker_is_a_proven_leak() {
    let demo = DemoTarget::start(&["--scenarios", "lost-waker,healthy", "--leak-every", "100ms"]);
    let out = Command::new(BIN)
        .args(["watch", &demo.addr, "--duration", "7s", "--format", "json"])
        .args(["--fail-on-suspect", "--no-dumps"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
}
