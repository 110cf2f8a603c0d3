//! The main view: one row per spawn location.

use super::style;
use crate::text;
use crate::ui::app::{App, SortKey};
use crate::wording::Words;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

const SPARK_WIDTH: usize = 16;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let Some(a) = &app.analysis else {
        super::placeholder(f, area, "waiting for the first update from the target…");
        return;
    };
    if app.visible.is_empty() {
        let msg = if app.filter.is_empty() {
            "no live tasks reported yet".to_string()
        } else {
            format!(
                "no group matches the filter {:?} (Esc clears it)",
                app.filter
            )
        };
        super::placeholder(f, area, &msg);
        return;
    }
    let rows_fit = area.height.saturating_sub(1) as usize;
    let mut pos = app.groups_pos;
    pos.clamp(app.visible.len(), rows_fit);
    let window = (pos.offset..app.visible.len()).take(rows_fit);
    let rows: Vec<Row> = window
        .map(|vi| {
            let g = &a.groups[app.visible[vi]];
            let (names, kind) = (g.names_suffix(), g.kind_suffix());
            let mix = match crate::wording::freshness(g.waits.as_ref()) {
                Some(f) => format!("{} · {f}", g.mix_text(2)),
                None => g.mix_text(2),
            };
            let mark = match &g.suspect {
                Some(_) => Cell::from("!!").style(style::bad(app)),
                None => Cell::from(""),
            };
            let row = Row::new(vec![
                mark,
                Cell::from(text::count(u64::from(g.live))),
                Cell::from(text::delta(g.delta)),
                Cell::from(crate::text::sparkline_gaps(&g.spark, SPARK_WIDTH)),
                Cell::from(text::count(u64::from(g.running))),
                Cell::from(text::count(u64::from(g.scheduled))),
                Cell::from(text::count(u64::from(g.idle))),
                Cell::from(g.oldest.map(text::duration).unwrap_or_default()),
                Cell::from(g.longest_idle.map(text::duration).unwrap_or_default()),
                Cell::from(mix),
                Cell::from(format!("{}{kind}{names}", text::sanitize(&g.location, 200))),
            ]);
            if vi == pos.selected {
                row.style(style::selected())
            } else {
                row
            }
        })
        .collect();
    let header = Row::new(
        [
            (None, ""),
            (Some(SortKey::Tasks), "Tasks"),
            (Some(SortKey::Delta), "Δ/win"),
            (None, "Trend"),
            (None, "Run"),
            (None, "Sched"),
            (None, "Idle"),
            (Some(SortKey::Oldest), "Oldest"),
            (Some(SortKey::Idle), "Max idle"),
            (Some(SortKey::Reason), "Blocked on"),
            (Some(SortKey::Location), "Location"),
        ]
        .map(|(key, label)| {
            if key == Some(app.sort) {
                let arrow = if app.invert { "▲" } else { "▼" };
                Cell::from(Line::from(vec![Span::raw(label), Span::raw(arrow)]))
            } else {
                Cell::from(label)
            }
        }),
    )
    .style(style::table_header());
    // Numeric columns fit the widest value of every visible group (not
    // only the rows on screen, so widths hold still while scrolling).
    let all = || app.visible.iter().map(|&i| &a.groups[i]);
    let n =
        |f: fn(&crate::analysis::Group) -> u32| all().map(move |g| text::count(u64::from(f(g))));
    let widths = [
        Constraint::Length(2),
        Constraint::Length(super::fit("Tasks▼", n(|g| g.live), 7)),
        Constraint::Length(super::fit("Δ/win▼", all().map(|g| text::delta(g.delta)), 6)),
        Constraint::Length(SPARK_WIDTH as u16),
        Constraint::Length(super::fit("Run", n(|g| g.running), 5)),
        Constraint::Length(super::fit("Sched", n(|g| g.scheduled), 5)),
        Constraint::Length(super::fit("Idle", n(|g| g.idle), 6)),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(30),
        Constraint::Min(20),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        area,
    );
}
