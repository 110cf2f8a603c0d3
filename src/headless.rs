//! Gathering targets' state without a terminal: the second front end of
//! the session the TUI uses ([`crate::session`]), for a fixed time. The
//! session folds the connections' events into the models and analyses
//! them; this decides when a target counts as reached or lost, asks for
//! one last capture, and takes the models back at the end.

use crate::analysis::{Analysis, Params};
use crate::conn::{self, ConnError, Status, Target};
use crate::model::State;
use crate::session::{self, Job, ToUi};
use std::time::Duration;
use tokio::time::Instant;

/// What was gathered.
pub struct Gathered {
    pub state: State,
    /// The last connection error seen, if any (data may still be complete).
    pub last_error: Option<ConnError>,
}

/// Called about once a second with the newest analysis (none before the
/// first update) and the time since the run started.
pub type Progress<'a> = &'a mut (dyn FnMut(Option<&Analysis>, Duration) + Send);

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
    let mut all = gather_fleet(
        vec![target],
        opts,
        duration,
        wait_for_target,
        &Params::default(),
        None,
    )
    .await;
    all.pop().expect("one target, one result")
}

/// One target's run, as this front end follows it.
struct Watch {
    name: String,
    first_update: Option<Instant>,
    connected: bool,
    /// It failed for good (not reached at all, or a failure no retry
    /// helps): the run goes on without it.
    ended: bool,
    /// Unreached and given up on: its result is this error.
    failed: Option<ConnError>,
    last_error: Option<ConnError>,
}

impl Watch {
    /// When its part of the run is over: `duration` after its first
    /// update, or `give_up` after the start without one.
    fn deadline(&self, started: Instant, duration: Duration, give_up: Duration) -> Instant {
        match self.first_update {
            Some(t) => t + duration,
            None => started + give_up,
        }
    }
}

/// [`gather`] over several targets at once, in one session: each target's
/// `duration` counts from its own first update, and each result is that
/// target's (in the order given). `progress`, when given, is called about
/// once a second with the session's newest (merged) analysis by `params`.
pub async fn gather_fleet(
    targets: Vec<Target>,
    opts: conn::Options,
    duration: Duration,
    wait_for_target: Option<Duration>,
    params: &Params,
    mut progress: Option<Progress<'_>>,
) -> Vec<Result<Gathered, ConnError>> {
    // Without an update yet, a target is waited for at most this long: the
    // first attempt's own timeouts (connect, first response), or the time
    // the user allowed it to come up.
    let give_up = wait_for_target.unwrap_or(opts.connect_timeout * 2 + Duration::from_secs(1));
    // One capture at the end of the run (the caller's `captures` options choose
    // whether; a headless run never takes one on connect or periodically),
    // so the reasons describe the tasks as they are when the run ends.
    let waits_enabled = opts.waits.enabled;
    let mut opts = opts;
    opts.waits.on_connect = false;
    opts.waits.interval = None;
    // The request for waits ends within its timeout, answered or not; the
    // second is for its event to reach the session.
    let waits_wait = opts.waits.timeout + Duration::from_secs(1);
    let mut watches: Vec<Watch> = targets
        .iter()
        .map(|t| Watch {
            name: t.display.clone(),
            first_update: None,
            connected: false,
            ended: false,
            failed: None,
            last_error: None,
        })
        .collect();
    let members = targets
        .into_iter()
        .map(|t| (t.display.clone(), conn::spawn(t, opts.clone())))
        .collect();
    let interval = progress.is_some().then_some(Duration::from_secs(1));
    let mut s = match session::spawn_fleet(members, *params, interval) {
        Ok(s) => s,
        Err(e) => return failed_all(&watches, &format!("cannot start the session: {e}")),
    };
    let started = Instant::now();
    let mut last_progress = started;
    let mut latest: Option<std::sync::Arc<Analysis>> = None;
    // Once asked: when, and the targets whose capture has not arrived yet
    // (`None` until the session says whom it asked).
    let mut final_waits: Option<(Instant, Option<Vec<usize>>)> = None;
    let mut died = None;
    loop {
        let now = Instant::now();
        if let Some(p) = progress.as_mut()
            && now.duration_since(last_progress) >= Duration::from_secs(1)
        {
            last_progress = now;
            p(latest.as_deref(), started.elapsed());
        }
        let open = watches
            .iter()
            .filter(|w| !w.ended)
            .map(|w| w.deadline(started, duration, give_up))
            .filter(|d| *d > now)
            .min();
        let deadline = match (&final_waits, open) {
            (Some((asked, _)), _) => *asked + waits_wait,
            (None, Some(d)) => d,
            (None, None) => {
                let ask: Vec<usize> = (0..watches.len())
                    .filter(|&i| {
                        let w = &watches[i];
                        !w.ended && w.connected && w.first_update.is_some()
                    })
                    .collect();
                if !waits_enabled || ask.is_empty() || s.jobs.send(Job::FinalWaits(ask)).is_err() {
                    break;
                }
                final_waits = Some((now, None));
                continue;
            }
        };
        if now >= deadline {
            break;
        }
        let tick = deadline.min(now + Duration::from_secs(1));
        let msg = match tokio::time::timeout_at(tick, s.rx.recv()).await {
            Err(_) => continue,
            // Every connection ended.
            Ok(None) => break,
            Ok(Some(msg)) => msg,
        };
        let (i, status) = match msg {
            ToUi::Status(st) => (0, st),
            ToUi::TargetStatus(i, st) => (i, st),
            ToUi::Updated(_) => {
                watches[0].first_update.get_or_insert_with(Instant::now);
                continue;
            }
            ToUi::TargetUpdated(i, _) => {
                if let Some(w) = watches.get_mut(i) {
                    w.first_update.get_or_insert_with(Instant::now);
                }
                continue;
            }
            ToUi::View(v) => {
                latest = Some(v.analysis);
                continue;
            }
            ToUi::WaitsAsked(asked) => {
                if asked.is_empty() {
                    break;
                }
                if let Some((_, pending)) = &mut final_waits {
                    *pending = Some(asked);
                }
                continue;
            }
            ToUi::Captured(i) => {
                if let Some((_, Some(pending))) = &mut final_waits {
                    pending.retain(|&t| t != i);
                    if pending.is_empty() {
                        break;
                    }
                }
                continue;
            }
            ToUi::Notice(_) => continue,
            ToUi::Died(why) => {
                died = Some(why);
                break;
            }
        };
        let Some(w) = watches.get_mut(i) else {
            continue;
        };
        match status {
            Status::Failed(e) => {
                w.ended = true;
                w.connected = false;
                w.last_error = Some(e);
            }
            Status::Reconnecting { error, .. } => {
                w.connected = false;
                let waiting = wait_for_target.is_some_and(|wait| started.elapsed() < wait);
                if w.first_update.is_none() && !waiting {
                    w.ended = true;
                    w.failed = Some(error);
                } else {
                    w.last_error = Some(error);
                }
            }
            Status::Connected => w.connected = true,
            _ => {}
        }
    }
    // The session ends when its jobs' sender is dropped, and hands the
    // models back.
    let session::Session { rx, jobs, models } = s;
    drop(jobs);
    drop(rx);
    let states = match models.await {
        Ok(states) => states,
        Err(_) => {
            let why = died.unwrap_or_else(|| "it stopped".into());
            return failed_all(&watches, &format!("the session failed: {why}"));
        }
    };
    watches
        .into_iter()
        .zip(states)
        .map(|(w, state)| {
            if let Some(e) = w.failed {
                return Err(e);
            }
            if state.log.health.updates == 0 {
                return Err(w
                    .last_error
                    .unwrap_or(ConnError::Timeout(w.name, give_up.as_secs())));
            }
            Ok(Gathered {
                state,
                last_error: w.last_error,
            })
        })
        .collect()
}

fn failed_all(watches: &[Watch], why: &str) -> Vec<Result<Gathered, ConnError>> {
    watches
        .iter()
        .map(|w| Err(ConnError::Other(w.name.clone(), why.to_string())))
        .collect()
}
