//! The flat task list (`a`): every live task of every group, as
//! tokio-console lists them, sortable by any column and filterable.

use crate::analysis::{Analysis, TaskRow, TaskState};
use crate::model::Task;
use crate::session::Page;
use std::time::Duration;

/// The list's columns, in order; each sorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Warn,
    Id,
    State,
    Name,
    Total,
    Busy,
    Sched,
    Idle,
    Polls,
    Kind,
    Location,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::Warn,
        Column::Id,
        Column::State,
        Column::Name,
        Column::Total,
        Column::Busy,
        Column::Sched,
        Column::Idle,
        Column::Polls,
        Column::Kind,
        Column::Location,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Column::Warn => "Warn",
            Column::Id => "ID",
            Column::State => "State",
            Column::Name => "Name",
            Column::Total => "Total",
            Column::Busy => "Busy",
            Column::Sched => "Sched",
            Column::Idle => "Idle",
            Column::Polls => "Polls",
            Column::Kind => "Kind",
            Column::Location => "Location",
        }
    }
}

/// Where one listed task is: its group's index in the analysis and its
/// row there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub group: u32,
    pub row: u32,
}

/// What the list shows of a task, from its row and its model.
pub struct Cells {
    pub warn: usize,
    pub id: u64,
    pub state: String,
    pub name: String,
    /// Age.
    pub total: Option<Duration>,
    pub busy: Duration,
    pub sched: Duration,
    /// Time since its last poll ended (running: none).
    pub idle: Option<Duration>,
    pub polls: u64,
    pub kind: &'static str,
    pub location: String,
    pub fields: String,
}

/// The Warn column: tokio-console's warnings on the task, a lost waker
/// included.
fn warnings(t: &Task, v: &crate::analysis::Verdict) -> usize {
    crate::analysis::lint::of_task(t, v).iter().count()
        + usize::from(v.reason == crate::analysis::Reason::NoWaker)
}

/// A task's cells; `None` for a task the page does not hold.
pub fn cells(a: &Analysis, e: Entry, page: &Page) -> Option<Cells> {
    let g = a.groups.get(e.group as usize)?;
    let row: &TaskRow = g.tasks.get(e.row as usize)?;
    let t: &Task = page.row(e.group as usize, e.row as usize)?;
    let s = &t.stats;
    let now = a.now;
    let busy = Duration::from_nanos(s.busy_ns);
    let idle = match row.verdict.state {
        TaskState::Running => None,
        _ => s.last_poll_ended.or(s.created_at).map(|e| now.since(e)),
    };
    Some(Cells {
        warn: warnings(t, &row.verdict),
        id: t.tokio_id.map_or(t.id, std::num::NonZeroU64::get),
        state: match row.verdict.state {
            TaskState::Completed => "done".into(),
            _ => row.verdict.reason.short().into(),
        },
        name: t.name().unwrap_or("").to_string(),
        total: s.created_at.map(|c| now.since(c)),
        busy,
        sched: Duration::from_nanos(s.scheduled_ns),
        idle,
        polls: s.polls,
        kind: g.kind.label(),
        location: g.location.to_string(),
        fields: t
            .fields()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// A sort key: one kind per column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// Quantities sort most first.
    Most(std::cmp::Reverse<u64>),
    Word(std::sync::Arc<str>),
    Label(&'static str),
}

fn key(
    column: Column,
    g: &crate::analysis::Group,
    r: &TaskRow,
    t: &Task,
    now: crate::model::Ts,
) -> Key {
    let most = |n: u64| Key::Most(std::cmp::Reverse(n));
    let nanos =
        |d: Option<Duration>| d.map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
    let s = &t.stats;
    match column {
        Column::Warn => most(warnings(t, &r.verdict) as u64),
        Column::Id => Key::Most(std::cmp::Reverse(
            u64::MAX - t.tokio_id.map_or(t.id, std::num::NonZeroU64::get),
        )),
        Column::State => Key::Label(r.verdict.reason.short()),
        Column::Name => Key::Word(t.name_arc().cloned().unwrap_or_else(|| "".into())),
        Column::Total => most(nanos(s.created_at.map(|c| now.since(c)))),
        Column::Busy => most(s.busy_ns),
        Column::Sched => most(s.scheduled_ns),
        Column::Idle => most(match r.verdict.state {
            TaskState::Running => 0,
            _ => nanos(s.last_poll_ended.or(s.created_at).map(|e| now.since(e))),
        }),
        Column::Polls => most(s.polls),
        Column::Kind => Key::Label(g.kind.label()),
        Column::Location => Key::Word(g.location.clone()),
    }
}

/// Every live task of the analysis, filtered by `needle` (lowercase:
/// name, location, state, fields) and sorted by `column` (quantities most
/// first, words a..z; ties by id). Only the sort column's value is read
/// per task, so 100 000 tasks sort in milliseconds.
pub fn order(a: &Analysis, page: &Page, column: Column, invert: bool, needle: &str) -> Vec<Entry> {
    let mut rows: Vec<(Key, (u16, u64), Entry)> = Vec::new();
    for (gi, g) in a.groups.iter().enumerate() {
        for (ri, r) in g.tasks.iter().enumerate() {
            if r.verdict.state == TaskState::Completed {
                continue;
            }
            let e = Entry {
                group: gi as u32,
                row: ri as u32,
            };
            let Some(t) = page.row(gi, ri) else {
                continue;
            };
            if !needle.is_empty() {
                let Some(c) = cells(a, e, page) else {
                    continue;
                };
                if ![&c.name, &c.location, &c.state, &c.fields]
                    .iter()
                    .any(|s| s.to_lowercase().contains(needle))
                {
                    continue;
                }
            }
            rows.push((key(column, g, r, t, a.now), (r.target, r.id), e));
        }
    }
    rows.sort_unstable_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
    if invert {
        rows.reverse();
    }
    rows.into_iter().map(|(_, _, e)| e).collect()
}

/// Whether the analysis lists tasks one by one (the console source) or
/// only counts them (the hooks source lists an open group's tasks only).
pub fn listed(a: &Analysis) -> bool {
    a.groups.iter().any(|g| !g.tasks.is_empty()) || a.groups.is_empty()
}
