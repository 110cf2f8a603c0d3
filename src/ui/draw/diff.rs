//! The diff view: the live state against the baseline, or two snapshots.
//! The same widget serves both.

use super::style;
use crate::report::diff::{change_label, header};
use crate::text;
use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

pub const HEADER_ROWS: u16 = 2;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let (Some(d), Some((_, old))) = (app.diff(), &app.baseline) else {
        super::placeholder(f, area, "no baseline: press b to mark one, then d");
        return;
    };
    let [head, list] =
        Layout::vertical([Constraint::Length(HEADER_ROWS), Constraint::Min(2)]).areas(area);
    let mut text = format!(" {}", header(&d, old, &app.current_side()));
    let restarted = match (&app.baseline, &app.analysis) {
        (Some((base, _)), Some(now)) => now.health.restarts > base.health.restarts,
        _ => false,
    };
    if restarted {
        text.push_str(" · ⚠ the target restarted since the baseline: its tasks are new, not grown");
    }
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), head);
    if d.rows.is_empty() {
        super::placeholder(f, list, "no changes since the baseline");
        return;
    }
    let rows_fit = list.height.saturating_sub(1) as usize;
    let mut pos = app.diff_pos;
    pos.clamp(d.rows.len(), rows_fit);
    let rows: Vec<Row> = (pos.offset..d.rows.len())
        .take(rows_fit)
        .map(|i| {
            let r = &d.rows[i];
            let mix = r.mix_text();
            let row = Row::new(vec![
                Cell::from(if r.suspect.is_some() { "!!" } else { "" }),
                Cell::from(text::count(u64::from(r.before))),
                Cell::from(text::count(u64::from(r.after))),
                Cell::from(text::delta(r.delta)),
                Cell::from(format!("{:+.1}", r.per_minute)),
                Cell::from(change_label(r.change)),
                Cell::from(mix),
                Cell::from(text::sanitize(&r.location, 200)),
            ]);
            if i == pos.selected {
                row.style(style::selected())
            } else if r.suspect.is_some() {
                row.style(style::suspect(app))
            } else {
                row
            }
        })
        .collect();
    let header = Row::new([
        "",
        "Before",
        "After",
        "Δ",
        "Δ/min",
        "Change",
        "Blocked on (before → after)",
        "Location",
    ])
    .style(style::table_header());
    let widths = [
        Constraint::Length(2),
        Constraint::Length(super::fit(
            "Before",
            d.rows.iter().map(|r| text::count(u64::from(r.before))),
            7,
        )),
        Constraint::Length(super::fit(
            "After",
            d.rows.iter().map(|r| text::count(u64::from(r.after))),
            7,
        )),
        Constraint::Length(super::fit(
            "Δ",
            d.rows.iter().map(|r| text::delta(r.delta)),
            7,
        )),
        Constraint::Length(super::fit(
            "Δ/min",
            d.rows.iter().map(|r| format!("{:+.1}", r.per_minute)),
            8,
        )),
        Constraint::Length(6),
        Constraint::Length(44),
        Constraint::Min(20),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        list,
    );
}
