//! Gathering a target's state without a terminal: the same conn → model
//! path the TUI uses, for a fixed time.

use crate::conn::{self, ConnError, Event, Status, Target};
use crate::model::State;
use std::time::Duration;
use tokio::time::Instant;

/// What was gathered.
pub struct Gathered {
    pub state: State,
    /// The last connection error seen, if any (data may still be complete).
    pub last_error: Option<ConnError>,
}

/// Connects and folds updates into a fresh model until `duration` has
/// passed since the first update. Fails when no update ever arrives: at
/// once when `opts.reconnect` is false, else when `give_up` passes.
pub async fn gather(
    target: Target,
    opts: conn::Options,
    duration: Duration,
    give_up: Duration,
) -> Result<Gathered, ConnError> {
    gather_with_progress(target, opts, duration, give_up, &mut |_, _| {}).await
}

/// As [`gather`], calling `progress(state, elapsed)` about once a second.
pub async fn gather_with_progress(
    target: Target,
    opts: conn::Options,
    duration: Duration,
    give_up: Duration,
    progress: &mut dyn FnMut(&State, Duration),
) -> Result<Gathered, ConnError> {
    let name = target.display.clone();
    let mut rx = conn::spawn(target, opts);
    let mut state = State::default();
    let started = Instant::now();
    let mut first_update: Option<Instant> = None;
    let mut last_error = None;
    let mut last_progress = started;
    loop {
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&state, started.elapsed());
        }
        let deadline = match first_update {
            Some(t) => t + duration,
            None => started + give_up,
        };
        let tick = deadline.min(Instant::now() + Duration::from_secs(1));
        let ev = match tokio::time::timeout_at(tick, rx.recv()).await {
            Err(_) if tick < deadline => continue,
            Err(_) => break,
            Ok(None) => break,
            Ok(Some(ev)) => ev,
        };
        match ev {
            Event::StreamStarted => state.begin_stream(),
            Event::Update(up) => {
                state.apply(*up);
                first_update.get_or_insert_with(Instant::now);
            }
            Event::Status(Status::Failed(e)) => {
                last_error = Some(e);
                break;
            }
            Event::Status(Status::Reconnecting { error, .. }) => last_error = Some(error),
            Event::Status(_) => {}
        }
    }
    if state.health.updates == 0 {
        return Err(last_error.unwrap_or(ConnError::Timeout(name, give_up.as_secs())));
    }
    Ok(Gathered { state, last_error })
}
