//! The model thread: owns the writing side of the [`State`], folds
//! connection events in, runs the analysis and hands the view an
//! `Arc<Analysis>`; also runs the jobs that read the whole state (saving a
//! snapshot, writing a report). The view's thread never applies an update
//! nor analyses, so keys and frames stay fast however large the target.

use crate::analysis::{Analysis, Params};
use crate::conn::{self, Status};
use crate::model::State;
use crate::snapshot::{self, Meta};
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The model, written by the model thread (`ui::worker`) and read by the
/// view for the few rows it shows and by jobs.
pub type SharedState = Arc<RwLock<State>>;

/// Reads the shared state (a panic elsewhere does not poison the view).
pub fn read(s: &SharedState) -> RwLockReadGuard<'_, State> {
    s.read().unwrap_or_else(|e| e.into_inner())
}

pub fn write(s: &SharedState) -> RwLockWriteGuard<'_, State> {
    s.write().unwrap_or_else(|e| e.into_inner())
}

/// Work that reads the whole state; run by the model thread when there is
/// one, so a large target never stalls the view.
#[derive(Debug)]
pub enum Job {
    Snapshot {
        meta: Meta,
        path: PathBuf,
    },
    Report {
        format: crate::report::Format,
        ctx: crate::report::model::Context,
        analysis: Arc<Analysis>,
        path: PathBuf,
    },
    /// Ask the target's agent for a task dump (`t`).
    Dump,
    /// The view opened a group (or closed it: `None`): on the hooks
    /// source, its tasks are fetched from the target while it is open.
    Open(Option<crate::model::GroupKey>),
}

impl Job {
    /// Runs the job; returns the line the status bar shows.
    pub fn run(self, state: &State) -> String {
        match self {
            Job::Snapshot { meta, path } => {
                let Some(snap) = snapshot::take(state, &meta) else {
                    return "no data yet: nothing to save".into();
                };
                match snapshot::save(&snap, &path) {
                    Ok(()) => format!("saved snapshot {}", path.display()),
                    Err(e) => format!("snapshot not saved: {e}"),
                }
            }
            Job::Report {
                format,
                ctx,
                analysis,
                path,
            } => {
                let report = crate::report::model::build(&analysis, state, &ctx, None);
                match crate::report::write_out(&path, &format.render(&report)) {
                    Ok(()) => format!("report written to {}", path.display()),
                    Err(e) => format!("report not written to {}: {e}", path.display()),
                }
            }
            Job::Dump => "task dumps are taken of live targets".into(),
            Job::Open(_) => String::new(),
        }
    }
}

/// What the model thread tells the view.
#[derive(Debug)]
pub enum ToUi {
    Status(Status),
    /// An update was applied at this instant.
    Updated(Instant),
    Analysis(Arc<Analysis>),
    /// The one-line outcome of a job.
    Notice(String),
    /// The model thread panicked: the view cannot go on.
    Died(String),
}

/// Handles the view keeps.
pub struct Worker {
    pub rx: mpsc::Receiver<ToUi>,
    pub jobs: mpsc::UnboundedSender<Job>,
}

/// Starts the model thread on a connection's events. It ends when the view
/// drops its handles or the connection task ends.
pub fn spawn(
    state: SharedState,
    conn: conn::Connection,
    params: Params,
    interval: Duration,
) -> std::io::Result<Worker> {
    let (tx, rx) = mpsc::channel(64);
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let conn::Connection { events, dumps } = conn;
    let died = tx.clone();
    let fault = std::env::var("TASKSCOPE_FAULT").is_ok_and(|f| f == "model-panic");
    std::thread::Builder::new()
        .name("taskscope-model".into())
        .spawn(move || {
            let work = std::panic::AssertUnwindSafe(|| {
                let model = Model {
                    state,
                    params,
                    interval,
                    fault,
                };
                rt.block_on(run(model, events, dumps, jobs_rx, tx))
            });
            if let Err(payload) = std::panic::catch_unwind(work) {
                let msg = super::terminal::take_other_panic()
                    .unwrap_or_else(|| crate::text::panic_message(payload.as_ref()));
                let _ = died.blocking_send(ToUi::Died(msg));
            }
        })?;
    Ok(Worker { rx, jobs })
}

/// What the model thread owns besides its channels.
struct Model {
    state: SharedState,
    params: Params,
    /// How often a fresh analysis is published.
    interval: Duration,
    /// Fault injection for the tests of a dying model thread.
    fault: bool,
}

async fn run(
    model: Model,
    mut conn_rx: mpsc::Receiver<conn::Event>,
    dumps: conn::Requests,
    mut jobs_rx: mpsc::UnboundedReceiver<Job>,
    tx: mpsc::Sender<ToUi>,
) {
    let Model {
        state,
        params,
        interval,
        fault,
    } = model;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stale = false;
    let mut published = false;
    loop {
        tokio::select! {
            biased;
            job = jobs_rx.recv() => {
                let Some(job) = job else { return };
                // The view already said a dump was asked for.
                if let Job::Dump = job {
                    dumps.request();
                    continue;
                }
                if let Job::Open(key) = job {
                    let raw = key.and_then(|k| {
                        let st = read(&state);
                        Some(st.aggregates.as_ref()?.groups.get(&k)?.raw.clone())
                    });
                    dumps.open(raw);
                    continue;
                }
                let msg = job.run(&read(&state));
                if tx.send(ToUi::Notice(msg)).await.is_err() {
                    return;
                }
            }
            ev = conn_rx.recv() => {
                let Some(ev) = ev else { return };
                // Fault injection for the tests of a dying model thread
                // (TASKSCOPE_FAULT=model-panic): fails on the first update.
                if fault && ev.is_data() {
                    panic!("injected fault (TASKSCOPE_FAULT=model-panic)");
                }
                let mut updated = None;
                let mut statuses = Vec::new();
                {
                    let mut st = write(&state);
                    let mut ev = Some(ev);
                    // Fold in what else is queued under one lock, a few at
                    // a time so that readers (the detail view) get a turn.
                    let mut folded = 0;
                    while let Some(e) = ev.take() {
                        folded += 1;
                        if e.is_data() {
                            updated = Some(Instant::now());
                        }
                        match conn::apply(&mut st, e) {
                            Some(s) => statuses.push(s),
                            None => stale = true,
                        }
                        if folded < 32 {
                            ev = conn_rx.try_recv().ok();
                        }
                    }
                }
                for s in statuses {
                    if tx.send(ToUi::Status(s)).await.is_err() {
                        return;
                    }
                }
                if let Some(at) = updated
                    && tx.send(ToUi::Updated(at)).await.is_err()
                {
                    return;
                }
                // The first screen does not wait for the tick.
                if stale && !published {
                    match publish(&state, &params, &tx).await {
                        Err(()) => return,
                        Ok(sent) => {
                            published = sent;
                            stale = !sent;
                        }
                    }
                }
            }
            _ = tick.tick() => {
                if tx.is_closed() {
                    return;
                }
                if stale {
                    match publish(&state, &params, &tx).await {
                        Err(()) => return,
                        Ok(sent) => {
                            published |= sent;
                            stale = !sent;
                        }
                    }
                }
            }
        }
    }
}

/// Analyses the state and sends it: `Ok(false)` when there is nothing to
/// analyse yet (no update), `Err` when the view is gone.
async fn publish(
    state: &SharedState,
    params: &Params,
    tx: &mpsc::Sender<ToUi>,
) -> Result<bool, ()> {
    let analysis = {
        let st = read(state);
        let Some(now) = st.now else { return Ok(false) };
        Analysis::run(&st, now, params)
    };
    tx.send(ToUi::Analysis(Arc::new(analysis)))
        .await
        .map(|()| true)
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Ts;
    use crate::model::update::{NewTask, SourceLoc, TaskStats, Update};

    fn update(at_secs: i64, ids: std::ops::Range<u64>) -> Box<Update> {
        let at = Ts::from_nanos(1_800_000_000_000_000_000 + at_secs * 1_000_000_000);
        let mut up = Update {
            now: Some(at),
            has_metadata: true,
            ..Update::default()
        };
        for id in ids {
            up.tasks.push(NewTask {
                id,
                location: Some(SourceLoc {
                    file: "src/a.rs".into(),
                    line: Some(1),
                    column: Some(1),
                }),
                fields: Vec::new(),
            });
            let stats = TaskStats {
                created_at: Some(at),
                ..TaskStats::default()
            };
            up.task_stats.push((id, stats));
        }
        Box::new(up)
    }

    #[tokio::test]
    async fn the_model_thread_applies_analyses_and_runs_jobs() {
        let state = SharedState::default();
        let (conn_tx, conn_rx) = mpsc::channel(8);
        let conn = conn::Connection {
            events: conn_rx,
            dumps: conn::Requests::default(),
        };
        let mut w = spawn(
            state.clone(),
            conn,
            Params::default(),
            Duration::from_millis(20),
        )
        .expect("spawn");
        conn_tx
            .send(conn::Event::Status(Status::Connected))
            .await
            .unwrap();
        conn_tx.send(conn::Event::StreamStarted).await.unwrap();
        conn_tx
            .send(conn::Event::Update(update(0, 1..4)))
            .await
            .unwrap();
        let mut live = Vec::new();
        let mut saw_status = false;
        while live.last() != Some(&5) {
            match w.rx.recv().await.expect("worker alive") {
                ToUi::Status(Status::Connected) => saw_status = true,
                ToUi::Analysis(a) => {
                    live.push(a.totals.live);
                    if a.totals.live == 3 {
                        // A later update is analysed on the next tick.
                        conn_tx
                            .send(conn::Event::Update(update(1, 4..6)))
                            .await
                            .unwrap();
                    }
                }
                _ => {}
            }
        }
        assert!(saw_status);
        assert_eq!(live.first(), Some(&3), "{live:?}");
        assert_eq!(super::read(&state).tasks.len(), 5);

        let dir = std::env::temp_dir().join(format!("taskscope-worker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("snap.json");
        let meta = crate::snapshot::Meta {
            target: "t".into(),
            taken_at_unix_ns: 1,
            watched: Duration::from_secs(1),
            window: Duration::from_secs(60),
        };
        w.jobs
            .send(Job::Snapshot {
                meta,
                path: path.clone(),
            })
            .unwrap();
        let notice = loop {
            if let ToUi::Notice(m) = w.rx.recv().await.expect("worker alive") {
                break m;
            }
        };
        assert_eq!(notice, format!("saved snapshot {}", path.display()));
        assert!(crate::snapshot::load(&path).is_ok());
        std::fs::remove_dir_all(&dir).ok();
        // Dropping the connection ends the thread, which closes its channel.
        drop(conn_tx);
        while w.rx.recv().await.is_some() {}
    }
}
