//! An agent with a token, from the viewer: the headless commands and the
//! TUI's connection present it with `--token-file`; without it the
//! target's refusal is one line and exit code 2, at once (no retries), and
//! `/metrics` stays open.

use crate::common::{self, DemoTarget};
use std::process::Command;

const TOKEN: &str = "e2e-token-0123456789";

fn token_file(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_token_opens_inspection_and_its_absence_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let agent_token = token_file(dir.path(), "agent", &format!("{TOKEN}\n"));
    for source in ["hooks", "console"] {
        let demo = DemoTarget::start_with(
            0,
            &[
                "--source",
                source,
                "--scenarios",
                "sleepers",
                "--leak-every",
                "200ms",
            ],
            &[("TASKSCOPE_TOKEN_FILE", agent_token.to_str().unwrap())],
        );
        let watch = |extra: &[&str]| {
            Command::new(common::BIN)
                .args(["watch", &demo.addr, "--duration", "2s", "--format", "json"])
                .args(extra)
                .env_remove("TASKSCOPE_TOKEN_FILE")
                .output()
                .expect("run watch")
        };
        let started = std::time::Instant::now();
        let out = watch(&[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{source}: {err}");
        assert!(
            err.contains("refused to be inspected") && err.contains("--token-file"),
            "{source}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{source}: one line: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{source}: at once, not retried"
        );
        let wrong = token_file(dir.path(), "wrong", "not-the-agent-s-token");
        let out = watch(&["--token-file", wrong.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{source}: wrong token");

        let out = watch(&["--token-file", agent_token.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{source}: {err}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(doc["totals"]["tasks"].as_u64() > Some(0), "{source}: {doc}");
    }
}

/// A rotated token file (a new file moved in place, as Kubernetes updates
/// a mounted secret) is in force within the agent's recheck, without a
/// restart; the old token is refused from then on.
#[test]
fn a_rotated_token_file_is_in_force_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let agent_token = token_file(dir.path(), "agent", &format!("{TOKEN}\n"));
    let old = token_file(dir.path(), "old", TOKEN);
    let new = token_file(dir.path(), "new", "rotated-e2e-token-0123456789");
    let demo = DemoTarget::start_with(
        0,
        &["--source", "hooks", "--scenarios", "sleepers"],
        &[("TASKSCOPE_TOKEN_FILE", agent_token.to_str().unwrap())],
    );
    let once = |token: &std::path::Path| {
        Command::new(common::BIN)
            .args(["connect", &demo.addr, "--once", "--token-file"])
            .arg(token)
            .env_remove("TASKSCOPE_TOKEN_FILE")
            .output()
            .expect("run connect --once")
            .status
            .code()
    };
    assert_eq!(once(&old), Some(0), "the first token");
    assert_eq!(once(&new), Some(2), "not yet");
    let moved_in = dir.path().join("agent.new");
    std::fs::copy(&new, &moved_in).unwrap();
    std::fs::rename(&moved_in, &agent_token).unwrap();
    common::wait_for(
        "the rotated token to be in force",
        std::time::Duration::from_secs(30),
        || once(&new) == Some(0),
    );
    assert_eq!(once(&old), Some(2), "the old token refused after rotation");
}

#[test]
fn an_unreadable_token_file_is_a_usage_error() {
    let out = Command::new(common::BIN)
        .args([
            "watch",
            "127.0.0.1:1",
            "--duration",
            "1s",
            "--token-file",
            "/nonexistent/token",
        ])
        .output()
        .expect("run watch");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot read the token file /nonexistent/token"),
        "{err}"
    );
}

/// The viewer follows its token file too: a target restarted with a
/// rotated secret refuses the old token, the viewer reads its file again,
/// finds the new one and reconnects (instead of giving up for good).
#[test]
fn the_viewer_takes_up_a_rotated_token_when_refused() {
    use taskscope::conn::{self, Status};
    let dir = tempfile::tempdir().unwrap();
    let agent_file = token_file(dir.path(), "agent", TOKEN);
    let viewer_file = token_file(dir.path(), "viewer", TOKEN);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = [("TASKSCOPE_TOKEN_FILE", agent_file.to_str().unwrap())];
    let args = ["--source", "hooks", "--scenarios", "sleepers"];
    let mut demo = DemoTarget::start_with(port, &args, &env);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = conn::Options {
            token: Some(conn::Credential::from_file(&viewer_file).expect("token")),
            backoff_max: std::time::Duration::from_secs(1),
            ..conn::Options::default()
        };
        let mut events = conn::spawn(demo.target(), opts).events;
        // Connected, and data flows.
        loop {
            match next_status(&mut events).await {
                Status::Connected => break,
                Status::Failed(e) => panic!("refused at first: {e}"),
                _ => {}
            }
        }
        // The secret is rotated: the target restarts with the new one, and
        // the viewer's file is updated.
        demo.kill();
        std::fs::write(&agent_file, "rotated-e2e-token-0123456789").unwrap();
        std::fs::write(&viewer_file, "rotated-e2e-token-0123456789").unwrap();
        demo = DemoTarget::start_with(port, &args, &env);
        loop {
            match next_status(&mut events).await {
                Status::Connected => break,
                Status::Failed(e) => panic!("gave up on the rotated token: {e}"),
                _ => {}
            }
        }
    });
    drop(demo);
}

/// The next status the connection reports (its data skipped).
async fn next_status(
    events: &mut tokio::sync::mpsc::Receiver<taskscope::conn::Event>,
) -> taskscope::conn::Status {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(30), events.recv()).await {
            Ok(Some(taskscope::conn::Event::Status(s))) => return s,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the connection ended"),
            Err(_) => panic!("no status within 30 s"),
        }
    }
}
