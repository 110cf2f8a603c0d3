//! A build without `--cfg tokio_unstable` gets one error, with the fix,
//! not the type errors of a missing tokio API. The gate (`src/gate.rs`) is
//! compiled alone here, with and without the cfg: a whole build of the
//! crate without it would rebuild every dependency for this one test. Run
//! by hand (2026-12-04), `RUSTFLAGS=-Cdebuginfo=0 CARGO_TARGET_DIR=/tmp/x
//! cargo check -p taskscope-test` stops with this error alone (every
//! dependency, the agent included, builds without the cfg).

use std::process::{Command, Output};

fn compile_gate(cfg: bool) -> Output {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/gate.rs");
    let out =
        std::env::temp_dir().join(format!("taskscope-test-gate-{}-{cfg}", std::process::id()));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut c = Command::new(rustc);
    c.args(["--crate-type=lib", "--crate-name=gate", "--edition=2024"])
        .args(["--emit=metadata", "--color=never", "--out-dir"])
        .arg(&out)
        .arg(src);
    if cfg {
        c.args(["--cfg", "tokio_unstable"]);
    }
    let output = c.output().expect("rustc runs");
    let _ = std::fs::remove_dir_all(&out);
    output
}

#[test]
fn a_build_without_tokio_unstable_is_told_the_fix() {
    let without = compile_gate(false);
    assert!(!without.status.success());
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(
        err.contains("taskscope-test needs `--cfg tokio_unstable`"),
        "{err}"
    );
    // rustc indents the message's lines after the first.
    let lines: Vec<&str> = err.lines().map(str::trim).collect();
    assert!(
        lines
            .windows(2)
            .any(|w| w == ["[build]", "rustflags = [\"--cfg\", \"tokio_unstable\"]"]),
        "{err}"
    );
    assert!(
        err.contains("RUSTFLAGS=\"--cfg tokio_unstable\" cargo test"),
        "{err}"
    );
    // One error: the message, nothing else.
    assert!(err.contains("aborting due to 1 previous error"), "{err}");
    let with = compile_gate(true);
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
}
