//! A target that dies mid-stream: the connection reports it, retries with
//! backoff, and picks up the restarted target on the same port while the
//! model keeps its history.

mod common;

use common::{DemoTarget, spawn_line};
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
        let mut rx = conn::spawn(target, opts);
        let mut state = State::default();
        let sleepers = spawn_line("sleepers");
        let count = |state: &State| {
            state.now.map_or(0, |now| {
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
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Event::StreamStarted)) => state.begin_stream(),
                Ok(Some(Event::Update(u))) => state.apply(*u),
                _ => {}
            }
        }
        let history_before = state.histories.len();
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
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(Event::Status(Status::Connected))) => connected = true,
                Ok(Some(Event::StreamStarted)) => state.begin_stream(),
                Ok(Some(Event::Update(u))) => state.apply(*u),
                _ => {}
            }
            if connected && count(&state) == 3 {
                break;
            }
        }
        // The old tasks were retired, not double counted; history was kept.
        assert!(state.histories.len() >= history_before);
        assert_eq!(state.health.restarts, 1);
        assert_eq!(state.health.streams, 2);
    });
}
