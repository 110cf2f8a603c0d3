//! Entering and leaving the terminal's full-screen mode, always restored:
//! by the guard's drop, and by a panic hook when the UI thread panics.
//!
//! A panic in another thread (the model thread) must not restore the
//! terminal under a view that is still drawing, nor print into the
//! alternate screen: the hook keeps its message for the view, which then
//! closes cleanly and prints it (see `session`). ratatui's own
//! `init`/`restore` are not used for this reason: their hook restores the
//! terminal whichever thread panics.

use crossterm::{cursor, execute, terminal};
use parking_lot::Mutex;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{self, Stdout};
use std::thread::ThreadId;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// The thread that owns the terminal while the view is up.
static UI_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);
/// The last panic of another thread while the view was up: its message
/// and where it happened.
static OTHER_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Holds the terminal in raw mode on the alternate screen until dropped.
pub struct TerminalGuard {
    pub terminal: Term,
}

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        *UI_THREAD.lock() = Some(std::thread::current().id());
        terminal::enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, terminal::EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(out)) {
            Ok(t) => t,
            Err(e) => {
                restore();
                return Err(e);
            }
        };
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen; safe to call twice.
pub fn restore() {
    *UI_THREAD.lock() = None;
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
}

/// The message of a panic in a thread other than the view's, taken once.
pub fn take_other_panic() -> Option<String> {
    OTHER_PANIC.lock().take()
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let ui = *UI_THREAD.lock();
            match ui {
                // The view is up and another thread panicked: keep the
                // message for the view, print nothing over it.
                Some(id) if id != std::thread::current().id() => {
                    let what = crate::text::panic_message(info.payload());
                    let at = info
                        .location()
                        .map(|l| format!(" at {}:{}", l.file(), l.line()))
                        .unwrap_or_default();
                    *OTHER_PANIC.lock() = Some(format!("{what}{at}"));
                }
                Some(_) => {
                    restore();
                    previous(info);
                }
                None => previous(info),
            }
        }));
    });
}
