//! One group opened: its summary, its tasks, the selected task's fields.

use super::style;
use crate::analysis::TaskState;
use crate::session::Page;
use crate::text;
use crate::ui::app::App;
use crate::wording::Words;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, Wrap};

pub const HEADER_ROWS: u16 = 7;

/// The header's rows for group `g`: two more for a suspect's likely cause
/// and fix.
pub fn header_rows(g: Option<&crate::analysis::Group>) -> u16 {
    HEADER_ROWS
        + if g.is_some_and(|g| g.advice.is_some()) {
            2
        } else {
            0
        }
}
pub const FOOTER_ROWS: u16 = 4;

pub fn draw(f: &mut Frame, app: &App, page: &Page, area: Rect) {
    let (Some(a), Some(g)) = (&app.analysis, app.detail_group()) else {
        super::placeholder(f, area, "this group has no tasks any more (Esc goes back)");
        return;
    };
    // The page's rows are the analysis's, by group index.
    let gi = a
        .groups
        .iter()
        .position(|x| x.key == g.key)
        .unwrap_or(usize::MAX);
    let [head, list, foot] = Layout::vertical([
        Constraint::Length(header_rows(Some(g))),
        Constraint::Min(2),
        Constraint::Length(FOOTER_ROWS),
    ])
    .areas(area);

    let names = if g.names.is_empty() {
        "(unnamed)".to_string()
    } else {
        let mut s: Vec<String> = g
            .names
            .iter()
            .map(|(n, c)| format!("{} ×{c}", text::sanitize(n, 32)))
            .collect();
        if g.distinct_names as usize > g.names.len() {
            s.push(format!("… {} distinct", g.distinct_names));
        }
        s.join(", ")
    };
    let suspect = g
        .suspect
        .as_ref()
        .map(|s| format!("   !! suspect: {}", s.reason))
        .unwrap_or_default();
    let on_targets = crate::wording::targets(
        g.shares.iter().map(|s| (&*s.target, s.live, s.suspect)),
        8,
        str::to_string,
    );
    let head_lines = vec![
        Line::from(format!(
            " {} tasks @ {} ({}){on_targets}{suspect}",
            text::count(u64::from(g.live)),
            text::sanitize(&g.location, 200),
            g.kind.label()
        )),
        Line::from(format!(
            " change over window {}   running {} · scheduled {} · idle {} · finished (kept) {}",
            text::delta(g.delta),
            g.running,
            g.scheduled,
            g.idle,
            g.finished
        )),
        Line::from(format!(" blocked on: {}", g.mix_text(6))),
        Line::from(match g.waits {
            Some(w) => format!(" waits: {}", crate::wording::coverage_head(&w)),
            None => {
                " waits: from console-subscriber's data, and captures where marked *".to_string()
            }
        }),
        Line::from(format!(
            " names: {names}{}",
            crate::wording::lints(g.lints.iter().map(|(l, n)| (l.label(), u64::from(*n))))
        )),
        Line::from(format!(
            " trend: {}",
            crate::text::sparkline_gaps(&g.spark, 60)
        )),
        // Out of the agent's reach, no stack can be shown: how to reach
        // them instead.
        Line::from(match g.waits.and_then(|w| crate::wording::reach(&w)) {
            Some(reach) => format!(" to capture them: {reach}"),
            None => format!(" stacks: {}", stacks_text(app, g)),
        }),
    ];
    let mut head_lines = head_lines;
    if let Some(a) = &g.advice {
        head_lines.push(Line::from(format!(" likely cause: {}", a.cause)));
        head_lines.push(Line::from(format!(" fix: {}", a.fix)));
    }
    f.render_widget(Paragraph::new(head_lines), head);

    let rows_fit = list.height.saturating_sub(1) as usize;
    let mut pos = app.detail_pos;
    pos.clamp(g.tasks.len(), rows_fit);
    let rows: Vec<Row> = (pos.offset..g.tasks.len())
        .take(rows_fit)
        .filter_map(|i| {
            let row = &g.tasks[i];
            // Several targets: the row's id says whose task it is.
            let (target, id) = (usize::from(row.target), row.id);
            let Some(t) = page.row(gi, i) else {
                // The hooks source: the task as the target's page has it.
                let p = page.paged(target, id)?;
                let r = Row::new(paged_cells(p, row, a.now));
                return Some(if i == pos.selected {
                    r.style(style::selected())
                } else {
                    r
                });
            };
            let v = row.verdict;
            let state = match v.state {
                TaskState::Completed => "done".to_string(),
                _ => v.reason.short().to_string(),
            };
            let id = t
                .tokio_id
                .map(|i| i.to_string())
                .unwrap_or_else(|| format!("span {}", t.id));
            let r = Row::new(vec![
                Cell::from(id),
                Cell::from(t.name().map(|n| text::sanitize(n, 40)).unwrap_or_default()),
                Cell::from(state),
                Cell::from(v.duration(a.now).map(text::duration).unwrap_or_default()),
                Cell::from(
                    t.stats
                        .created_at
                        .map(|c| text::duration(a.now.since(c)))
                        .unwrap_or_default(),
                ),
                Cell::from(text::count(t.stats.polls)),
                Cell::from(t.stats.live_wakers().to_string()),
                Cell::from(fields_text(t, 200)),
            ]);
            Some(if i == pos.selected {
                r.style(style::selected())
            } else {
                r
            })
        })
        .collect();
    // The Polls column fits the rows on screen.
    let polls = (pos.offset..g.tasks.len()).take(rows_fit).filter_map(|i| {
        let (target, id) = (usize::from(g.tasks[i].target), g.tasks[i].id);
        let n = match page.row(gi, i) {
            Some(t) => t.stats.polls,
            None => page.paged(target, id)?.polls,
        };
        Some(text::count(n))
    });
    let polls_w = super::fit("Polls", polls, 8);
    let header = Row::new([
        "ID", "Name", "State", "For", "Age", "Polls", "Wakers", "Fields",
    ])
    .style(style::table_header());
    let widths = [
        Constraint::Length(10),
        Constraint::Length(18),
        Constraint::Length(18),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(polls_w),
        Constraint::Length(6),
        Constraint::Min(10),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        list,
    );

    // The selected row's target and its own task id.
    let picked = g.tasks.get(pos.selected);
    let selected = picked.and_then(|r| Some((r, page.row(gi, pos.selected)?)));
    let text_lines = match selected {
        Some((row, t)) => {
            let mut phrase = row.verdict.reason.phrase().to_string();
            if let Some(guess) = crate::wording::guess(&row.verdict) {
                phrase.push_str(&format!(" ({guess})"));
            }
            if row.verdict.captured {
                phrase.push_str(" (from its captured stack)");
            }
            let mut lines = vec![Line::from(format!(
                " task {} · span {} · {phrase}",
                t.tokio_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "?".into()),
                t.id
            ))];
            lines.extend(stack_lines(page, row));
            lines.push(Line::from(format!(" fields: {}", fields_text(t, 1000))));
            lines
        }
        None => match picked.and_then(|r| Some((r, page.paged(usize::from(r.target), r.id)?))) {
            Some((row, p)) => {
                let parent = match (&p.parent_location, p.parent) {
                    (Some(l), id) if id != 0 => {
                        format!("spawned by task {id} @ {}", text::sanitize(l, 120))
                    }
                    _ => "spawned from outside any task".into(),
                };
                let mut lines = vec![Line::from(format!(
                    " task {} · {parent} · {}{}",
                    p.id,
                    row.verdict.reason.phrase(),
                    if row.verdict.captured {
                        " (from its captured stack)"
                    } else {
                        ""
                    }
                ))];
                lines.extend(stack_lines(page, row));
                lines
            }
            None => vec![Line::from(" no task selected")],
        },
    };
    f.render_widget(
        Paragraph::new(text_lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::TOP)),
        foot,
    );
}

/// "40 @ a → b · 2 @ c → d", or why there are no stacks.
fn stacks_text(app: &App, g: &crate::analysis::Group) -> String {
    use crate::model::Agent;
    if !g.stacks.is_empty() {
        let mut parts: Vec<String> = g
            .stacks
            .iter()
            .take(3)
            .map(|s| format!("{} @ {}", s.tasks, text::sanitize(&s.label, 70)))
            .collect();
        if g.stacks.len() > 3 {
            parts.push(format!("… {} distinct", g.stacks.len()));
        }
        return parts.join(" · ");
    }
    let agent = app.analysis.as_ref().map(|a| &a.waits.agent);
    match agent {
        Some(Agent::Ready { .. }) => "none captured yet (t asks now)".into(),
        Some(Agent::Absent) => "need taskscope-agent in the target".into(),
        Some(Agent::Unavailable(why)) => text::sanitize(why, 100),
        _ => "none captured".into(),
    }
}

pub(super) fn fields_text(t: &crate::model::Task, max: usize) -> String {
    let s: Vec<String> = t
        .fields()
        .iter()
        .map(|(k, v)| format!("{}={}", text::sanitize(k, 40), text::sanitize(v, 80)))
        .collect();
    text::sanitize(&s.join(" "), max)
}

/// The row of a paged task: no name or wakers on that source; the busy
/// time where the console shows fields.
fn paged_cells<'a>(
    p: &crate::model::counted::PagedTask,
    row: &crate::analysis::TaskRow,
    now: crate::model::Ts,
) -> Vec<Cell<'a>> {
    vec![
        Cell::from(p.id.to_string()),
        Cell::from(""),
        Cell::from(row.verdict.reason.short().to_string()),
        Cell::from(
            row.verdict
                .duration(now)
                .map(text::duration)
                .unwrap_or_default(),
        ),
        Cell::from(
            p.created
                .map(|c| text::duration(now.since(c)))
                .unwrap_or_default(),
        ),
        Cell::from(text::count(p.polls)),
        Cell::from("–"),
        Cell::from(format!("busy {}", text::duration(p.busy))),
    ]
}

/// The selected task's stack from the capture, a line per leaf.
pub(super) fn stack_lines<'a>(page: &Page, row: &crate::analysis::TaskRow) -> Vec<Line<'a>> {
    let trace = row
        .verdict
        .trace()
        .and_then(|i| page.trace(usize::from(row.target), i));
    let Some(trace) = trace else {
        return Vec::new();
    };
    trace
        .leaves
        .iter()
        .map(|leaf| {
            let frames: Vec<String> = leaf
                .iter()
                .map(|f| text::sanitize(&crate::analysis::stack::short(f), 80))
                .collect();
            Line::from(format!(" stack: {}", frames.join(" → ")))
        })
        .collect()
}
