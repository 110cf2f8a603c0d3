//! The session: one thread that owns the targets' connections and models
//! (one target is a fleet of one), folds their events in, runs the
//! analysis and publishes what front ends draw from: an immutable
//! [`View`], the analysis plus the rows of the open screen ([`Page`]).
//! Nothing else reads a model while it is written: the TUI's keys and
//! frames stay fast however large the target, and a frozen view holds
//! every row still. It also runs the jobs that read the whole model
//! (saving a snapshot, writing a report).

mod jobs;
pub mod page;
pub mod resources;

pub use jobs::Job;

use crate::analysis::{Analysis, Params};
use crate::conn::{self, Status};
use crate::model::State;
pub use page::{Lens, Page};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What a front end draws: an analysis and the rows of the open screen,
/// built together from the same models.
#[derive(Clone, Debug)]
pub struct View {
    pub analysis: Arc<Analysis>,
    pub page: Arc<Page>,
}

/// What the model thread tells the view.
#[derive(Debug)]
pub enum ToUi {
    Status(Status),
    /// An update was applied at this instant.
    Updated(Instant),
    /// With several targets: target `i`'s connection status.
    TargetStatus(usize, Status),
    /// With several targets: target `i`'s update was applied.
    TargetUpdated(usize, Instant),
    View(View),
    /// Of the targets a [`Job::FinalWaits`] named, those asked.
    WaitsAsked(Vec<usize>),
    /// Target `i`'s capture was folded in.
    Captured(usize),
    /// The one-line outcome of a job.
    Notice(String),
    /// The model thread panicked: the view cannot go on.
    Died(String),
}

/// Handles a front end keeps.
pub struct Session {
    pub rx: mpsc::Receiver<ToUi>,
    pub jobs: mpsc::UnboundedSender<Job>,
    /// The targets' models, in their order, handed back when the session
    /// ends (the front end dropped `jobs`, or every connection ended);
    /// dropped if it panicked.
    pub models: tokio::sync::oneshot::Receiver<Vec<State>>,
}

/// Starts the session on a connection's events, publishing a view every
/// `interval` (`None`: never, for a headless run without progress). It
/// ends when the front end drops its handles or the connection task ends.
pub fn spawn(
    conn: conn::Connection,
    params: Params,
    interval: Option<Duration>,
) -> std::io::Result<Session> {
    spawn_fleet(vec![(String::new(), conn)], params, interval)
}

/// One target's part of the session.
struct Member {
    label: Arc<str>,
    state: State,
    requests: conn::Requests,
}

/// Starts the model thread on several targets' connections (one model
/// each); with more than one, their analyses are merged by spawn location
/// ([`crate::analysis::fleet`]) and statuses are sent per target. A target
/// whose connection fails does not stop the others; the thread ends when
/// the view drops its handles or every connection has ended.
pub fn spawn_fleet(
    targets: Vec<(String, conn::Connection)>,
    params: Params,
    interval: Option<Duration>,
) -> std::io::Result<Session> {
    let (tx, rx) = mpsc::channel(64);
    let (models_tx, models) = tokio::sync::oneshot::channel();
    let (jobs, jobs_rx) = mpsc::unbounded_channel();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let died = tx.clone();
    let fault = std::env::var("TASKSCOPE_FAULT").is_ok_and(|f| f == "model-panic");
    std::thread::Builder::new()
        .name("taskscope-model".into())
        .spawn(move || {
            let work = std::panic::AssertUnwindSafe(|| {
                rt.block_on(async move {
                    // One stream of (target, event) from every connection.
                    // Small for the same reason as each connection's.
                    let (ev_tx, ev_rx) = mpsc::channel(4);
                    let mut members = Vec::new();
                    for (i, (label, conn)) in targets.into_iter().enumerate() {
                        let conn::Connection { mut events, waits } = conn;
                        let ev_tx = ev_tx.clone();
                        tokio::spawn(async move {
                            while let Some(e) = events.recv().await {
                                if ev_tx.send((i, e)).await.is_err() {
                                    return;
                                }
                            }
                        });
                        members.push(Member {
                            label: label.into(),
                            state: State::default(),
                            requests: waits,
                        });
                    }
                    drop(ev_tx);
                    let mut model = Model {
                        members,
                        params,
                        interval,
                        fault,
                        merger: crate::analysis::fleet::Merger::default(),
                        lens: Lens::default(),
                        latest: None,
                    };
                    run(&mut model, ev_rx, jobs_rx, tx).await;
                    let states = model.members.into_iter().map(|m| m.state).collect();
                    let _ = models_tx.send(states);
                })
            });
            if let Err(payload) = std::panic::catch_unwind(work) {
                let msg = crate::ui::terminal::take_other_panic()
                    .unwrap_or_else(|| crate::text::panic_message(payload.as_ref()));
                let _ = died.blocking_send(ToUi::Died(msg));
            }
        })?;
    Ok(Session { rx, jobs, models })
}

/// What the model thread owns besides its channels.
struct Model {
    members: Vec<Member>,
    params: Params,
    /// How often a fresh analysis is published (never: `None`).
    interval: Option<Duration>,
    /// Fault injection for the tests of a dying model thread.
    fault: bool,
    merger: crate::analysis::fleet::Merger,
    /// What the front end looks at.
    lens: Lens,
    /// The newest analysis published.
    latest: Option<Arc<Analysis>>,
}

impl Model {
    fn fleet(&self) -> bool {
        self.members.len() > 1
    }

    fn states(&self) -> Vec<&State> {
        self.members.iter().map(|m| &m.state).collect()
    }

    /// A job the front end asked for: `Some` line for its status bar, or
    /// a view to send.
    fn job(&mut self, job: Job) -> Option<ToUi> {
        match job {
            // The view already said a capture was asked for.
            Job::Waits => {
                for m in &self.members {
                    m.requests.request();
                }
                None
            }
            Job::FinalWaits(targets) => {
                let asked: Vec<usize> = targets
                    .into_iter()
                    .filter(|&i| {
                        self.members.get(i).is_some_and(|m| {
                            matches!(m.state.agent, crate::model::Agent::Ready { .. })
                        })
                    })
                    .collect();
                for &i in &asked {
                    self.members[i].requests.request();
                }
                Some(ToUi::WaitsAsked(asked))
            }
            Job::Lens { lens, frozen } => {
                self.look(lens);
                let analysis = frozen.or_else(|| self.latest.clone())?;
                let page = Page::build(self.lens.clone(), &analysis, &self.states());
                Some(ToUi::View(View {
                    analysis,
                    page: Arc::new(page),
                }))
            }
            job if !self.fleet() => Some(ToUi::Notice(job.run(&self.members[0].state))),
            job => Some(ToUi::Notice(job.run_fleet(&self.states(), &self.merger))),
        }
    }

    /// Follows the front end's lens: which group's tasks each target pages
    /// in (the hooks source) and whose details it streams (the console's).
    fn look(&mut self, lens: Lens) {
        if lens.open_group() != self.lens.open_group() {
            let origins: Vec<(usize, crate::model::GroupKey)> = match lens.open_group() {
                None => Vec::new(),
                Some(k) if !self.fleet() => vec![(0, k)],
                Some(k) => self.merger.origins(k).to_vec(),
            };
            for (i, m) in self.members.iter().enumerate() {
                let raw = origins
                    .iter()
                    .find(|(t, _)| *t == i)
                    .and_then(|(_, k)| Some(m.state.hooks.as_ref()?.groups.get(k)?.place()));
                m.requests.open(raw);
            }
        }
        if lens.open_task() != self.lens.open_task() {
            let at = lens.open_task();
            for (i, m) in self.members.iter().enumerate() {
                m.requests
                    .details(at.filter(|(t, _)| *t == i).map(|(_, id)| id));
            }
        }
        self.lens = lens;
    }

    /// Analyses the models and sends the (merged) analysis with the open
    /// screen's rows: `Ok(false)` when there is nothing to analyse yet,
    /// `Err` when the front end is gone.
    async fn publish(&mut self, tx: &mpsc::Sender<ToUi>) -> Result<bool, ()> {
        let fleet = self.fleet();
        let targets = self.members.iter().map(|m| (m.label.clone(), &m.state));
        let Some(merged) = self.merger.analyse(fleet, targets, &self.params) else {
            return Ok(false);
        };
        let analysis = Arc::new(merged);
        let page = Page::build(self.lens.clone(), &analysis, &self.states());
        self.latest = Some(analysis.clone());
        let view = View {
            analysis,
            page: Arc::new(page),
        };
        tx.send(ToUi::View(view))
            .await
            .map(|()| true)
            .map_err(|_| ())
    }
}

async fn run(
    model: &mut Model,
    mut conn_rx: mpsc::Receiver<(usize, conn::Event)>,
    mut jobs_rx: mpsc::UnboundedReceiver<Job>,
    tx: mpsc::Sender<ToUi>,
) {
    let mut tick = tokio::time::interval(model.interval.unwrap_or(Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let publishing = model.interval.is_some();
    let mut stale = false;
    let mut published = false;
    // An event taken while folding another target's: handled next.
    let mut held: Option<(usize, conn::Event)> = None;
    loop {
        let next = match held.take() {
            Some(e) => Some(e),
            None => tokio::select! {
                biased;
                job = jobs_rx.recv() => {
                    let Some(job) = job else { return };
                    if let Some(msg) = model.job(job)
                        && tx.send(msg).await.is_err()
                    {
                        return;
                    }
                    continue;
                }
                ev = conn_rx.recv() => {
                    let Some(ev) = ev else { return };
                    Some(ev)
                }
                _ = tick.tick() => {
                    if tx.is_closed() {
                        return;
                    }
                    if stale && publishing {
                        match model.publish(&tx).await {
                            Err(()) => return,
                            Ok(sent) => {
                                published |= sent;
                                stale = !sent;
                            }
                        }
                    }
                    None
                }
            },
        };
        let Some((target, ev)) = next else { continue };
        // Fault injection for the tests of a dying model thread
        // (TASKSCOPE_FAULT=model-panic): fails on the first update.
        if model.fault && ev.is_data() {
            panic!("injected fault (TASKSCOPE_FAULT=model-panic)");
        }
        let mut updated = None;
        let mut captured = false;
        let mut statuses = Vec::new();
        {
            let st = &mut model.members[target].state;
            let mut ev = Some(ev);
            // Fold in what else is queued for this target, a few at a time
            // so that jobs and publications get a turn.
            let mut folded = 0;
            while let Some(e) = ev.take() {
                folded += 1;
                if e.is_data() {
                    updated = Some(Instant::now());
                }
                captured |= matches!(e, conn::Event::Captures(_));
                match conn::apply(st, e) {
                    Some(s) => statuses.push(s),
                    None => stale = true,
                }
                if folded < 32 {
                    match conn_rx.try_recv() {
                        Ok((t, e)) if t == target => ev = Some(e),
                        Ok(other) => held = Some(other),
                        Err(_) => {}
                    }
                }
            }
        }
        // Per target with several, as the view's own with one.
        let fleet = model.fleet();
        let mut msgs: Vec<ToUi> = statuses
            .into_iter()
            .map(|s| match fleet {
                true => ToUi::TargetStatus(target, s),
                false => ToUi::Status(s),
            })
            .collect();
        msgs.extend(updated.map(|at| match fleet {
            true => ToUi::TargetUpdated(target, at),
            false => ToUi::Updated(at),
        }));
        for msg in msgs {
            if tx.send(msg).await.is_err() {
                return;
            }
        }
        if captured && tx.send(ToUi::Captured(target)).await.is_err() {
            return;
        }
        // The first screen does not wait for the tick.
        if stale && !published && publishing {
            match model.publish(&tx).await {
                Err(()) => return,
                Ok(sent) => {
                    published = sent;
                    stale = !sent;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(at_secs: i64, ids: std::ops::Range<u64>) -> Box<crate::model::update::Update> {
        Box::new(page::tests::update(at_secs, ids, |_| "src/a.rs"))
    }

    #[tokio::test]
    async fn the_session_publishes_views_and_runs_jobs() {
        let (conn_tx, conn_rx) = mpsc::channel(8);
        let conn = conn::Connection {
            events: conn_rx,
            waits: conn::Requests::default(),
        };
        let mut w = spawn(conn, Params::default(), Some(Duration::from_millis(20))).expect("spawn");
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
                ToUi::View(View { analysis: a, .. }) => {
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
        // A lens is answered at once, with its rows.
        w.jobs
            .send(Job::Lens {
                lens: Lens::Tasks,
                frozen: None,
            })
            .unwrap();
        let (page_analysis, page) = loop {
            if let ToUi::View(v) = w.rx.recv().await.expect("worker alive")
                && v.page.lens == Lens::Tasks
            {
                break (v.analysis, v.page);
            }
        };
        let a = &page_analysis;
        let listed = a
            .groups
            .iter()
            .enumerate()
            .flat_map(|(gi, g)| (0..g.tasks.len()).map(move |ri| (gi, ri)))
            .filter(|&(gi, ri)| page.row(gi, ri).is_some())
            .count();
        assert_eq!(listed, 5);

        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
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
        // Dropping the connection ends the thread, which closes its channel.
        drop(conn_tx);
        while w.rx.recv().await.is_some() {}
    }
}
