//! The live TUI: one event loop over keys, resizes, connection events and a
//! tick; the network never blocks a frame, and frames are drawn only when
//! something changed.

pub mod app;
pub mod draw;
mod exports;
pub mod input;
pub mod tasks;
pub mod terminal;

use crate::analysis::{Analysis, Params};
use crate::conn::{self, Target};
use crate::report::diff::Side;
use crate::session::{self, ToUi};
use app::App;
use crossterm::event::{self, Event as TermEvent, KeyEvent};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How the TUI runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub params: Params,
    pub conn: conn::Options,
    pub color: bool,
    /// Least time between two analysis passes.
    pub analysis_interval: Duration,
}

enum Input {
    Key(KeyEvent),
    Resize,
}

/// Runs the live TUI until the user quits.
pub async fn run(target: Target, opts: Options) -> anyhow::Result<()> {
    let mut app = App::new(target.display.clone(), opts.params, opts.color);
    let conn = conn::spawn(target, opts.conn.clone());
    let session = session::spawn(conn, opts.params, Some(opts.analysis_interval))?;
    app.jobs = Some(session.jobs);
    run_app(app, session.rx).await
}

/// The live TUI on several targets at once (`connect A B C`): one model
/// each, groups merged by spawn location; one target behaves as [`run`].
pub async fn run_fleet(mut targets: Vec<Target>, opts: Options) -> anyhow::Result<()> {
    if targets.len() == 1
        && let Some(t) = targets.pop()
    {
        return run(t, opts).await;
    }
    let names: Vec<String> = targets.iter().map(|t| t.display.clone()).collect();
    let mut app = App::new(
        format!("{} ({} targets)", names.join(", "), names.len()),
        opts.params,
        opts.color,
    );
    let mut members = Vec::new();
    for t in targets {
        app.fleet.push(app::Member {
            label: t.display.clone(),
            conn: app.conn.clone(),
        });
        let conn = conn::spawn(t.clone(), opts.conn.clone());
        members.push((t.display.clone(), conn));
    }
    let session = session::spawn_fleet(members, opts.params, Some(opts.analysis_interval))?;
    app.jobs = Some(session.jobs);
    run_app(app, session.rx).await
}

/// The diff view of two snapshots, offline.
pub async fn run_diff(
    old: Analysis,
    old_side: Side,
    new: Analysis,
    new_side: Side,
    params: Params,
    color: bool,
) -> anyhow::Result<()> {
    let mut app = App::new(new_side.target.clone(), params, color);
    app.offline = Some(format!("{} → {}", old_side.describe(), new_side.describe()));
    app.analysis = Some(Arc::new(new));
    app.baseline = Some((Arc::new(old), old_side));
    app.screen = app::Screen::Diff;
    app.rebuild_visible(None);
    // No connection: a channel whose sender lives as long as the view.
    let (_tx, rx) = mpsc::channel(1);
    run_app(app, rx).await
}

async fn run_app(mut app: App, mut model_rx: mpsc::Receiver<ToUi>) -> anyhow::Result<()> {
    // Live, the session owns the models.
    if app.jobs.is_some() {
        app.local.clear();
    }
    let mut guard = terminal::TerminalGuard::enter()?;
    let mut input_rx = spawn_input_thread();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    let mut last_draw = Instant::now();
    let mut signals = QuitSignals::new()?;
    loop {
        if dirty {
            // Drawing reads only what the session published: it never
            // waits on a model being written.
            let size = guard.terminal.size()?;
            app.page_rows = draw::list_rows(&app, size.height);
            guard.terminal.draw(|f| draw::draw(f, &app))?;
            dirty = false;
            last_draw = Instant::now();
        }
        if app.should_quit {
            break;
        }
        tokio::select! {
            biased;
            _ = signals.recv() => app.should_quit = true,
            Some(ev) = input_rx.recv() => {
                let now = Instant::now();
                dirty |= match ev {
                    Input::Key(k) => input::on_key(&mut app, k, now),
                    Input::Resize => true,
                };
            }
            msg = model_rx.recv() => {
                let now = Instant::now();
                let Some(msg) = msg else {
                    // Every connection ended: a target that refused this
                    // client for good (no retry helps) says why; else the
                    // session is gone without a word.
                    if !matches!(app.conn.status, conn::Status::Failed(_)) {
                        app.fatal.get_or_insert_with(|| "it stopped".into());
                    }
                    app.should_quit = true;
                    continue;
                };
                dirty |= app.on_worker(msg, now);
                // Take what else is queued, without starving input.
                for _ in 0..32 {
                    match model_rx.try_recv() {
                        Ok(msg) => dirty |= app.on_worker(msg, now),
                        Err(_) => break,
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                if app.notice.as_ref().is_some_and(|(_, t)| now.duration_since(*t) > Duration::from_secs(5)) {
                    app.notice = None;
                    dirty = true;
                }
                // The status line shows the update's age and countdowns.
                dirty |= now.duration_since(last_draw) >= Duration::from_secs(1);
            }
        }
    }
    drop(guard);
    if app.fatal.is_none()
        && let conn::Status::Failed(e) = &app.conn.status
    {
        anyhow::bail!("{e}");
    }
    match app.fatal {
        Some(why) => anyhow::bail!(
            "the model thread failed ({}); the view was closed",
            crate::text::sanitize(&why, 500)
        ),
        None => Ok(()),
    }
}

/// Signals that end the view like `q`, so the terminal is restored:
/// SIGTERM, SIGHUP and SIGINT (sent from outside: in raw mode Ctrl-C is a
/// key); Ctrl-C's console event elsewhere.
struct QuitSignals {
    #[cfg(unix)]
    streams: [tokio::signal::unix::Signal; 3],
}

impl QuitSignals {
    fn new() -> std::io::Result<QuitSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(QuitSignals {
                streams: [
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::hangup())?,
                    signal(SignalKind::interrupt())?,
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(QuitSignals {})
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            let [term, hup, int] = &mut self.streams;
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reads terminal events on a plain thread (crossterm's read blocks).
fn spawn_input_thread() -> mpsc::Receiver<Input> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        while !tx.is_closed() {
            match event::poll(Duration::from_millis(200)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let msg = match event::read() {
                Ok(TermEvent::Key(k)) => Input::Key(k),
                Ok(TermEvent::Resize(..)) => Input::Resize,
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.blocking_send(msg).is_err() {
                return;
            }
        }
    });
    rx
}
