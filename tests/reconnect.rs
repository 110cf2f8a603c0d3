//! A target that dies mid-stream: the connection reports it, retries with
//! backoff, and picks up the restarted target on the same port while the
//! model keeps its history.

use crate::common::{self, DemoTarget, spawn_line};
use std::time::{Duration, Instant};
use taskscope::analysis::{Analysis, Params};
use taskscope::conn::{self, ConnError, Event, Status};
use taskscope::model::State;

#[test]
fn target_restart_reconnects_and_keeps_history() {
    let mut first = DemoTarget::start(&[
        "--scenarios",
        "sleepers",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "5",
    ]);
    let port: u16 = first
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let target = first.target();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let opts = conn::Options {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(400),
            ..conn::Options::default()
        };
        let mut rx = conn::spawn(target, opts).events;
        let mut state = State::default();
        let sleepers = spawn_line("sleepers");
        let count = |state: &State| {
            state.log.now.map_or(0, |now| {
                let a = Analysis::run(state, now, &Params::default());
                a.groups
                    .iter()
                    .find(|g| g.location.starts_with(&sleepers))
                    .map_or(0, |g| g.live)
            })
        };
        // Phase 1: connected, five sleepers seen.
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(&state) < 5 {
            assert!(Instant::now() < deadline, "never saw 5 sleepers");
            if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                conn::apply(&mut state, ev);
            }
        }
        let history_before = state.log.histories.len();
        // Phase 2: kill the target; the stream must break into Reconnecting.
        first.kill();
        let mut saw_reconnecting = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while saw_reconnecting.is_none() {
            assert!(
                Instant::now() < deadline,
                "no reconnecting status after the target died"
            );
            if let Ok(Some(Event::Status(Status::Reconnecting { error, .. }))) =
                tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
            {
                saw_reconnecting = Some(error);
            }
        }
        assert!(
            matches!(
                saw_reconnecting,
                Some(ConnError::Broken(..)) | Some(ConnError::Refused(..))
            ),
            "{saw_reconnecting:?}"
        );
        // Phase 3: a new target on the same port; we reconnect by ourselves.
        let _second = DemoTarget::start_on(
            port,
            &[
                "--scenarios",
                "sleepers",
                "--leak-every",
                "50ms",
                "--max-per-leak",
                "3",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut connected = false;
        loop {
            assert!(
                Instant::now() < deadline,
                "did not reconnect (connected={connected}, count={})",
                count(&state)
            );
            if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
                && conn::apply(&mut state, ev) == Some(Status::Connected)
            {
                connected = true;
            }
            if connected && count(&state) == 3 {
                break;
            }
        }
        // The old tasks were retired, not double counted; history was kept.
        assert!(state.log.histories.len() >= history_before);
        assert_eq!(state.log.health.restarts, 1);
        assert_eq!(state.log.health.streams, 2);
        // The time without data is known, and drawn as a gap.
        assert_eq!(state.log.gaps.len(), 1);
        let (from, to) = state.log.gaps[0];
        assert!(to > from, "{:?}", state.log.gaps);
    });
}

#[test]
fn snapshot_keeps_what_it_gathered_when_the_target_dies() {
    let mut target = DemoTarget::start(&[
        "--scenarios",
        "sleepers",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "8",
    ]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("dying.json");
    // All eight sleepers exist before the snapshot starts...
    let sleepers = spawn_line("sleepers");
    common::watch_until(
        target.target(),
        Duration::from_secs(30),
        Params::default(),
        |a| common::group(a, &sleepers).is_some_and(|g| g.live == 8),
    );
    // ...and the target dies once the snapshot has received its full
    // state (the first update, with every callsite's metadata, is far
    // larger than the HTTP/2 handshake).
    let proxy = common::StallingProxy::start(&target.addr);
    let child = std::process::Command::new(common::BIN)
        .args(["snapshot", &proxy.addr, "--duration", "5s", "-o"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run snapshot");
    common::wait_for(
        "the snapshot's first update",
        Duration::from_secs(30),
        || proxy.forwarded_to_clients() > 8 * 1024,
    );
    target.kill();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("taskscope: warning: the connection broke while gathering"),
        "a warning says the data may be partial: {err}"
    );
    let loaded = taskscope::snapshot::open(&path).expect("the snapshot is complete and loads");
    let a = loaded.analyze(&Params::default());
    let sleepers = spawn_line("sleepers");
    assert_eq!(
        a.groups
            .iter()
            .find(|g| g.location.starts_with(&sleepers))
            .map(|g| g.live),
        Some(8)
    );
}

#[test]
fn a_stalled_connection_is_detected_and_recovers() {
    let target = DemoTarget::start(&[
        "--scenarios",
        "sleepers",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "3",
    ]);
    let proxy = common::StallingProxy::start(&target.addr);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let opts = conn::Options {
            keepalive_interval: Duration::from_millis(500),
            keepalive_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            ..conn::Options::default()
        };
        let mut rx = conn::spawn(
            taskscope::conn::Target::parse(&proxy.addr).expect("addr"),
            opts,
        )
        .events;
        let until = |deadline: Duration| Instant::now() + deadline;
        // Connected through the proxy.
        let d = until(Duration::from_secs(20));
        loop {
            assert!(Instant::now() < d, "never connected through the proxy");
            if let Ok(Some(Event::Status(Status::Connected))) =
                tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
            {
                break;
            }
        }
        // The network stalls: nothing is closed, nothing arrives.
        proxy.pause();
        let paused_at = Instant::now();
        let d = until(Duration::from_secs(15));
        let error = loop {
            assert!(Instant::now() < d, "the stall was not detected");
            if let Ok(Some(Event::Status(Status::Reconnecting { error, .. }))) =
                tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
            {
                break error;
            }
        };
        let detected = paused_at.elapsed();
        assert!(
            detected <= Duration::from_secs(6),
            "stall detected only after {detected:?}: {error}"
        );
        // The network comes back: so does the stream.
        proxy.resume();
        let d = until(Duration::from_secs(20));
        loop {
            assert!(Instant::now() < d, "did not recover after the stall");
            if let Ok(Some(Event::Status(Status::Connected))) =
                tokio::time::timeout(Duration::from_secs(5), rx.recv()).await
            {
                break;
            }
        }
    });
}
