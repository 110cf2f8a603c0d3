//! The header line and the status lines.

use super::style;
use crate::conn::Status;
use crate::text;
use crate::ui::app::{App, Screen};
use ratatui::text::{Line, Span};
use std::time::Instant;

pub fn header(app: &App) -> Line<'static> {
    let mut s = format!(" taskscope · {}", text::sanitize(&app.target, 80));
    if let Some(a) = &app.analysis {
        let t = a.totals;
        s.push_str(&format!(
            " · {} tasks in {} groups · {} running · {} scheduled · {} idle",
            text::count(u64::from(t.live)),
            text::count(u64::from(t.groups)),
            text::count(u64::from(t.running)),
            text::count(u64::from(t.scheduled)),
            text::count(u64::from(t.idle)),
        ));
        if t.suspects > 0 {
            s.push_str(&format!(" · !! {} suspect", t.suspects));
        }
    }
    if matches!(
        app.screen,
        Screen::Resources | Screen::ResourceList | Screen::Resource(..)
    ) {
        s.push_str(" · resources");
    }
    if let Screen::Tasks = app.screen {
        s.push_str(&format!(
            " · all tasks ({}) · sort: {}",
            text::count(app.task_order.len() as u64),
            app.task_col.label()
        ));
    }
    if let Screen::Groups = app.screen {
        s.push_str(&format!(" · sort: {}", app.sort.label()));
    }
    if app.frozen {
        s.push_str(" · FROZEN");
    }
    Line::from(Span::styled(s, style::header(app)))
}

/// Two lines: connection and data health, then filter or key hints.
pub fn footer(app: &App) -> Vec<Line<'static>> {
    footer_at(app, Instant::now())
}

pub fn footer_at(app: &App, now: Instant) -> Vec<Line<'static>> {
    let mut first: Vec<Span> = vec![connection(app, now)];
    if let Some(d) = waits(app) {
        first.push(Span::raw("  "));
        first.push(d);
    }
    for w in warnings(app) {
        first.push(Span::raw("  "));
        first.push(Span::styled(w, style::warn(app)));
    }
    let second = if app.editing_filter || !app.filter.is_empty() {
        let cursor = if app.editing_filter { "▏" } else { "" };
        Line::from(vec![
            Span::styled(" filter: ", style::warn(app)),
            Span::raw(format!("{}{cursor}", app.filter)),
            Span::styled(
                if app.editing_filter {
                    "  (Enter keeps, Esc clears)"
                } else {
                    "  (Esc clears)"
                },
                style::dim(app),
            ),
        ])
    } else if let Some((msg, _)) = &app.notice {
        Line::from(Span::raw(format!(" {msg}")))
    } else if let Some((g, sus)) = app
        .selected_group()
        .filter(|_| app.screen == Screen::Groups)
        .and_then(|g| Some((g, g.suspect.as_ref()?)))
    {
        Line::from(vec![
            Span::styled(" !! suspect: ", style::bad(app)),
            Span::raw(format!(
                "{} — {}{}",
                text::sanitize(&g.location, 80),
                sus.reason,
                g.advice
                    .as_ref()
                    .map(|a| format!(" · fix: {}", a.fix))
                    .unwrap_or_default()
            )),
        ])
    } else {
        let hints = match app.screen {
            Screen::Groups => {
                " ↑↓/jk move · Enter open · h/l sort · i invert · / filter · space freeze · ? help · q quit"
            }
            Screen::Detail(_) => " ↑↓/jk move · Esc back · space freeze · ? help · q quit",
            Screen::Diff if app.offline.is_some() => " ↑↓/jk move · ? help · q quit",
            Screen::Diff => " ↑↓/jk move · d/Esc back · b new baseline · ? help · q quit",
            Screen::Task(..) => " Esc back · t capture waits · space freeze · ? help · q quit",
            Screen::Resources => {
                " ↑↓/jk move · Enter its resources · f one per row · r/Esc tasks · ? help · q quit"
            }
            Screen::ResourceList => " ↑↓/jk move · Enter open · f/Esc grouped · ? help · q quit",
            Screen::Resource(..) => {
                " ↑↓/jk move · Enter open the task · Esc back · ? help · q quit"
            }
            Screen::Tasks => {
                " ↑↓/jk move · Enter its group · h/l sort · i invert · / filter · a/Esc groups · ? help · q quit"
            }
        };
        Line::from(Span::styled(hints, style::dim(app)))
    };
    vec![Line::from(first), second]
}

/// What the agent gives: captures and their cost, or why there are none.
fn waits(app: &App) -> Option<Span<'static>> {
    use crate::model::Agent;
    if app.offline.is_some() || !matches!(app.conn.status, Status::Connected) {
        return None;
    }
    let a = app.analysis.as_ref()?;
    let d = &a.waits;
    if let Some(e) = &d.error {
        return Some(Span::styled(
            format!("◆ request for waits failed: {}", text::sanitize(e, 100)),
            style::warn(app),
        ));
    }
    Some(match (&d.agent, &d.last) {
        (Agent::Unknown, _) => return None,
        (Agent::Absent, _) => Span::styled(
            "◇ console data only (add taskscope-agent for exact waits)",
            style::dim(app),
        ),
        (Agent::Unavailable(why), _) => Span::styled(
            format!("◇ agent without captures: {}", text::sanitize(why, 100)),
            style::warn(app),
        ),
        (Agent::Ready { .. }, None) => {
            Span::styled("◆ agent ready, waits pending", style::dim(app))
        }
        (Agent::Ready { .. }, Some(c)) if c.per_task => Span::styled(
            format!(
                "◆ waits of {} tasks, captured per task (never paused){} (* = captured, ~ = inferred, t = now)",
                text::count(c.tasks as u64),
                c.newest
                    .map(|n| format!(", newest {} ago", text::duration(a.now.since(n))))
                    .unwrap_or_default(),
            ),
            style::good(app),
        ),
        (Agent::Ready { .. }, Some(c)) => Span::styled(
            format!(
                "◆ waits captured {} ago: {} tasks, paused {} (* = captured, t = new)",
                text::duration(a.now.since(c.taken_at)),
                text::count(c.tasks as u64),
                text::duration(c.capture)
            ),
            style::good(app),
        ),
    })
}

fn connection(app: &App, now: Instant) -> Span<'static> {
    if let Some(label) = &app.offline {
        return Span::raw(format!(" ◇ offline: {}", text::sanitize(label, 200)));
    }
    if !app.fleet.is_empty() {
        return fleet_connections(app, now);
    }
    let target = text::sanitize(&app.target, 60);
    match &app.conn.status {
        Status::Connecting { attempt } if *attempt <= 1 => {
            Span::styled(format!(" ◌ connecting to {target}…"), style::warn(app))
        }
        Status::Connecting { attempt } => Span::styled(
            format!(" ◌ connecting to {target} (attempt {attempt})…"),
            style::warn(app),
        ),
        Status::Connected => {
            let age = app
                .conn
                .last_update
                .map(|t| {
                    format!(
                        ", update {} ago",
                        text::duration(now.saturating_duration_since(t))
                    )
                })
                .unwrap_or_default();
            let source = app
                .analysis
                .as_ref()
                .and_then(|a| a.source_phrase())
                .map(|s| format!(", {s}"))
                .unwrap_or_default();
            Span::styled(format!(" ● connected{source}{age}"), style::good(app))
        }
        Status::Reconnecting { at, error, .. } => {
            let wait = at.into_std().saturating_duration_since(now);
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Span::styled(
                format!(" ⟳ reconnecting in {secs}s: {error}"),
                style::bad(app),
            )
        }
        Status::Failed(e) => Span::styled(format!(" ✗ failed: {e}"), style::bad(app)),
    }
}

/// Each target's connection, compactly: `● a:6669 · ⟳ b:6669 3s · ✗ c:6669`.
fn fleet_connections(app: &App, now: Instant) -> Span<'static> {
    let mut up = 0;
    let parts: Vec<String> = app
        .fleet
        .iter()
        .map(|m| {
            let name = text::sanitize(&m.label, 40);
            match &m.conn.status {
                Status::Connecting { .. } => format!("◌ {name}"),
                Status::Connected => {
                    up += 1;
                    format!("● {name}")
                }
                Status::Reconnecting { at, .. } => {
                    let wait = at.into_std().saturating_duration_since(now);
                    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    format!("⟳ {name} {secs}s")
                }
                Status::Failed(_) => format!("✗ {name}"),
            }
        })
        .collect();
    let s = format!(" {} of {} up: {}", up, app.fleet.len(), parts.join(" · "));
    let style = if up == app.fleet.len() {
        style::good(app)
    } else if up > 0 {
        style::warn(app)
    } else {
        style::bad(app)
    };
    Span::styled(s, style)
}

/// The health warnings, marked for the status line.
pub fn warnings(app: &App) -> Vec<String> {
    let Some(a) = &app.analysis else {
        return Vec::new();
    };
    crate::analysis::health::warnings(&a.health)
        .into_iter()
        .map(|w| format!("⚠ {w}"))
        .collect()
}
