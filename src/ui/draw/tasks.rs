//! The flat task list (`a`): every live task, tokio-console's columns
//! plus what taskscope knows it waits on.

use super::style;
use crate::text;
use crate::ui::app::App;
use crate::ui::tasks::{Column, cells};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

pub fn draw(f: &mut Frame, app: &App, page: &crate::session::Page, area: Rect) {
    let Some(a) = &app.analysis else {
        super::placeholder(f, area, "waiting for the first update from the target…");
        return;
    };
    if !crate::ui::tasks::listed(a) {
        super::placeholder(
            f,
            area,
            "the hooks source counts tasks in the target and lists a group's tasks when you open it (Esc, then Enter on a group); the flat list needs the console source (--source console)",
        );
        return;
    }
    if app.task_order.is_empty() {
        let msg = if app.filter.is_empty() {
            "no live tasks".to_string()
        } else {
            format!(
                "no task matches the filter {:?} (Esc clears it)",
                app.filter
            )
        };
        super::placeholder(f, area, &msg);
        return;
    }
    let rows_fit = area.height.saturating_sub(1) as usize;
    let mut pos = app.tasks_pos;
    pos.clamp(app.task_order.len(), rows_fit);
    let shown: Vec<_> = (pos.offset..app.task_order.len())
        .take(rows_fit)
        .filter_map(|i| Some((i, cells(a, app.task_order[i], page)?)))
        .collect();
    let dur = |d: Option<std::time::Duration>| d.map(text::duration).unwrap_or_default();
    let texts: Vec<(usize, [String; 12])> = shown
        .into_iter()
        .map(|(i, c)| {
            (
                i,
                [
                    if c.warn > 0 {
                        format!("⚠ {}", c.warn)
                    } else {
                        String::new()
                    },
                    c.id.to_string(),
                    c.state,
                    text::sanitize(&c.name, 30),
                    dur(c.total),
                    text::duration(c.busy),
                    text::duration(c.sched),
                    dur(c.idle),
                    text::count(c.polls),
                    c.kind.to_string(),
                    text::sanitize(&c.location, 120),
                    text::sanitize(&c.fields, 200),
                ],
            )
        })
        .collect();
    let header_label = |col: Column| {
        if col == app.task_col {
            let arrow = if app.task_invert { "▲" } else { "▼" };
            format!("{}{arrow}", col.label())
        } else {
            col.label().to_string()
        }
    };
    let mut headers: Vec<String> = Column::ALL.iter().map(|c| header_label(*c)).collect();
    headers.push("Fields".into());
    // Every column fits what it shows (numbers are never cut); the last
    // two take the rest.
    let width = |k: usize, max: u16| {
        super::fit(&headers[k], texts.iter().map(|(_, t)| t[k].as_str()), 2).min(max)
    };
    let widths = [
        Constraint::Length(width(0, 6)),
        Constraint::Length(width(1, 20)),
        Constraint::Length(width(2, 18)),
        Constraint::Length(width(3, 30)),
        Constraint::Length(width(4, 10)),
        Constraint::Length(width(5, 10)),
        Constraint::Length(width(6, 10)),
        Constraint::Length(width(7, 10)),
        Constraint::Length(width(8, 16)),
        Constraint::Length(width(9, 9)),
        Constraint::Length(width(10, 60)),
        Constraint::Min(10),
    ];
    let rows: Vec<Row> = texts
        .into_iter()
        .map(|(i, t)| {
            let [warn, rest @ ..] = t;
            let mut cells = vec![if warn.is_empty() {
                Cell::from("")
            } else {
                Cell::from(warn).style(style::warn(app))
            }];
            cells.extend(rest.into_iter().map(Cell::from));
            let r = Row::new(cells);
            if i == pos.selected {
                r.style(style::selected())
            } else {
                r
            }
        })
        .collect();
    let header = Row::new(
        headers
            .into_iter()
            .map(|h| Cell::from(Line::from(Span::raw(h)))),
    )
    .style(style::table_header());
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        area,
    );
}
