//! Gathering a target's state without a terminal: the same conn → model
//! path the TUI uses, for a fixed time.

use crate::conn::{self, ConnError, Event, Status, Target};
use crate::model::{Agent, State};
use std::time::Duration;
use tokio::time::Instant;

/// What was gathered.
pub struct Gathered {
    pub state: State,
    /// The last connection error seen, if any (data may still be complete).
    pub last_error: Option<ConnError>,
}

/// Connects and folds updates into a fresh model until `duration` has
/// passed since the first update. A target that cannot be reached fails
/// at its first failed attempt (within the connect timeout), unless
/// `wait_for_target` allows it that long to come up (a CI job that starts
/// the service and taskscope together). Once reached, a lost target is
/// retried until the run ends (when `opts.reconnect`).
pub async fn gather(
    target: Target,
    opts: conn::Options,
    duration: Duration,
    wait_for_target: Option<Duration>,
) -> Result<Gathered, ConnError> {
    gather_with_progress(target, opts, duration, wait_for_target, &mut |_, _| {}).await
}

/// As [`gather`], calling `progress(state, elapsed)` about once a second.
pub async fn gather_with_progress(
    target: Target,
    opts: conn::Options,
    duration: Duration,
    wait_for_target: Option<Duration>,
    progress: &mut (dyn FnMut(&State, Duration) + Send),
) -> Result<Gathered, ConnError> {
    // Without an update yet, the run waits at most this long: the first
    // attempt's own timeouts (connect, first response), or the time the
    // user allowed the target to come up.
    let give_up = wait_for_target.unwrap_or(opts.connect_timeout * 2 + Duration::from_secs(1));
    let name = target.display.clone();
    // One dump at the end of the run (the caller's `dumps` options choose
    // whether; a headless run never takes one on connect or periodically).
    let dumps_enabled = opts.dumps.enabled;
    let mut opts = opts;
    opts.dumps.on_connect = false;
    opts.dumps.interval = None;
    let dump_wait = opts.dumps.timeout * 6;
    let conn = conn::spawn(target, opts);
    let mut rx = conn.events;
    // With an agent, one task dump at the end of the run, so the reasons
    // describe the tasks as they are when the run ends.
    let mut final_dump: Option<Instant> = None;
    let mut state = State::default();
    let started = Instant::now();
    let mut first_update: Option<Instant> = None;
    let mut last_error = None;
    let mut last_progress = started;
    // Whether the connection is up now: no final dump is asked of a
    // target that is gone (it would only wait out the dump timeout).
    let mut connected = false;
    loop {
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            progress(&state, started.elapsed());
        }
        let mut deadline = match first_update {
            Some(t) => t + duration,
            None => started + give_up,
        };
        if let Some(asked) = final_dump {
            deadline = asked + dump_wait;
        }
        let tick = deadline.min(Instant::now() + Duration::from_secs(1));
        let ev = match tokio::time::timeout_at(tick, rx.recv()).await {
            Err(_) if tick < deadline => continue,
            Err(_)
                if final_dump.is_none()
                    && dumps_enabled
                    && connected
                    && matches!(state.agent, Agent::Ready { .. }) =>
            {
                conn.dumps.request();
                final_dump = Some(Instant::now());
                continue;
            }
            Err(_) => break,
            Ok(None) => break,
            Ok(Some(ev)) => ev,
        };
        let is_update = ev.is_data();
        let is_dump = matches!(ev, Event::Dump(_));
        match conn::apply(&mut state, ev) {
            Some(Status::Failed(e)) => {
                last_error = Some(e);
                break;
            }
            Some(Status::Reconnecting { error, .. }) => {
                connected = false;
                let reached = state.health.updates > 0;
                let waiting = wait_for_target.is_some_and(|w| started.elapsed() < w);
                if !reached && !waiting {
                    return Err(error);
                }
                last_error = Some(error);
            }
            Some(Status::Connected) => connected = true,
            Some(_) => {}
            None if is_update => {
                first_update.get_or_insert_with(Instant::now);
            }
            None if is_dump && final_dump.is_some() => break,
            None => {}
        }
    }
    if state.health.updates == 0 {
        return Err(last_error.unwrap_or(ConnError::Timeout(name, give_up.as_secs())));
    }
    Ok(Gathered { state, last_error })
}
