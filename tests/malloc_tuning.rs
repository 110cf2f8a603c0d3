//! The viewer runs with glibc's allocator tuned (PERFORMANCE.md, "The allocator"): it
//! executes itself again once with `GLIBC_TUNABLES` set, unless told not
//! to; the demo target keeps glibc's defaults.

use crate::common::{BIN, DemoTarget, wait_until};
use std::process::{Command, Stdio};
use std::time::Duration;
use taskscope::malloc::TUNABLES;

fn environ(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|b| {
            b.split(|&c| c == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The threads of a running process (0 once it is gone).
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// `GLIBC_TUNABLES` as the process has it. glibc parses it in place at
/// startup, so /proc shows its `:` separators as NULs: the entries after it
/// that are tunables are its.
fn tunables(env: &[String]) -> Option<String> {
    let at = env.iter().position(|v| v.starts_with("GLIBC_TUNABLES="))?;
    let mut parts = vec![env[at]["GLIBC_TUNABLES=".len()..].to_string()];
    parts.extend(
        env[at + 1..]
            .iter()
            .take_while(|v| v.starts_with("glibc."))
            .cloned(),
    );
    Some(parts.join(":"))
}

/// `taskscope watch` on the target, with `env`; its environment once it
/// has connected (after the exec, if any).
fn watch_env(addr: &str, env: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["watch", addr, "--duration", "20s"])
        .env_remove("GLIBC_TUNABLES")
        .env_remove("TASKSCOPE_MALLOC_TUNED")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start watch");
    let pid = child.id();
    // The exec keeps the pid; /proc shows the new image's environment once
    // it ran. The image that stays is the one past `malloc::tune`, which
    // runs before the program starts any thread (its tokio runtime): a
    // second thread says the exec, if any, is done.
    wait_until(
        "the watch's runtime threads",
        Duration::from_secs(20),
        || threads(pid),
        |n| *n > 1,
    );
    let env = environ(pid);
    let _ = child.kill();
    let _ = child.wait();
    env
}

#[test]
fn the_viewer_runs_with_the_tuned_allocator_and_the_target_without() {
    let target = DemoTarget::start(&[
        "--no-agent",
        "--scenarios",
        "sleepers",
        "--max-per-leak",
        "2",
    ]);
    let env = watch_env(&target.addr, &[]);
    assert_eq!(tunables(&env).as_deref(), Some(TUNABLES), "{env:?}");
    // Another library's tunables are kept, ours added after them.
    let env = watch_env(&target.addr, &[("GLIBC_TUNABLES", "glibc.pthread.rseq=0")]);
    assert_eq!(
        tunables(&env),
        Some(format!("glibc.pthread.rseq=0:{TUNABLES}"))
    );
    // Opted out, or the user tuned malloc: left alone.
    let env = watch_env(&target.addr, &[("TASKSCOPE_MALLOC", "default")]);
    assert_eq!(tunables(&env), None, "{env:?}");
    let env = watch_env(
        &target.addr,
        &[("GLIBC_TUNABLES", "glibc.malloc.arena_max=8")],
    );
    assert_eq!(tunables(&env).as_deref(), Some("glibc.malloc.arena_max=8"));
    // The demo target is a target: glibc's defaults.
    assert_eq!(tunables(&environ(target.pid())), None);
}
