//! The whole-binary mode (`harness = false`): `taskscope_test::main` runs
//! the binary's tests on the shared runtime and then fails the binary when
//! tasks are left on it that no test owns. This binary runs itself twice
//! more, as a binary that leaves such a task and as one that does not, and
//! checks how each ends.

use std::process::{Command, ExitCode};
use std::time::Duration;
use taskscope_test::Check;

const MODE: &str = "TASKSCOPE_TEST_BINARY_MODE";
const GRACE: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    match std::env::var(MODE).as_deref() {
        Ok("leftover") => leftover(),
        Ok("clean") => clean(),
        _ => taskscope_test::main(the_binary_mode_fails_only_on_leftovers),
    }
}

fn a_test() {
    let hs = async {
        let hs: Vec<_> = (0..8)
            .map(|_| tokio::spawn(tokio::task::yield_now()))
            .collect();
        for h in hs {
            h.await.unwrap();
        }
    };
    Check::new().grace(GRACE).run_shared(hs).unwrap();
}

/// Its tests pass, and a thread of its own leaves a task on the shared
/// runtime: no test's check sees it, the binary's does.
fn leftover() -> ExitCode {
    Check::new().grace(GRACE).main(|| {
        a_test();
        let rt = taskscope_test::shared_runtime().unwrap();
        println!("at {}:{}:", file!(), line!() + 1);
        rt.spawn(std::future::pending::<()>());
        a_test();
    })
}

fn clean() -> ExitCode {
    Check::new().grace(GRACE).main(|| {
        a_test();
        a_test();
    })
}

fn run_as(mode: &str) -> (bool, String, String) {
    let exe = std::env::current_exe().expect("this binary");
    let out = Command::new(exe)
        .env(MODE, mode)
        .output()
        .expect("run this binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn the_binary_mode_fails_only_on_leftovers() {
    let (ok, stdout, stderr) = run_as("leftover");
    assert!(!ok, "a binary with a leftover passed:\n{stderr}");
    let at = stdout.trim().strip_prefix("at ").unwrap_or_default();
    assert!(!at.is_empty(), "{stdout}");
    assert!(
        stderr.contains("taskscope-test: 1 task left on the test binary's shared runtime at its end (still alive after 100ms)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("  1 task @ {at}")),
        "{at} not in {stderr}"
    );
    assert!(stderr.contains("spawned outside any task"), "{stderr}");
    let (ok, _, stderr) = run_as("clean");
    assert!(ok, "a clean binary failed:\n{stderr}");
    assert!(!stderr.contains("taskscope-test"), "{stderr}");
    println!("binary mode: a leftover fails the binary, a clean binary passes: ok");
}
