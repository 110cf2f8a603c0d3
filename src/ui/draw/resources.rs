//! The resources views: grouped by location, one per row, and one
//! resource with the tasks waiting on it.

use super::style;
use crate::session::Page;
use crate::session::resources::ResRow;
use crate::text;
use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table};

/// The cursor kept inside `len` rows and the `area` (one header row),
/// and the range of rows shown.
fn page(
    pos: crate::ui::app::ListPos,
    len: usize,
    area: Rect,
) -> (crate::ui::app::ListPos, std::ops::Range<usize>) {
    let fit = area.height.saturating_sub(1) as usize;
    let mut pos = pos;
    pos.clamp(len, fit);
    (pos, pos.offset..(pos.offset + fit).min(len))
}

fn table(
    f: &mut Frame,
    area: Rect,
    header: &[&str],
    rows: Vec<Vec<String>>,
    selected: usize,
    offset: usize,
    last_min: u16,
) {
    let mut widths: Vec<Constraint> = (0..header.len().saturating_sub(1))
        .map(|k| {
            Constraint::Length(super::fit(header[k], rows.iter().map(|r| r[k].as_str()), 2).min(60))
        })
        .collect();
    widths.push(Constraint::Min(last_min));
    let rows: Vec<Row> = rows
        .into_iter()
        .enumerate()
        .map(|(i, cells)| {
            let r = Row::new(cells.into_iter().map(Cell::from));
            if i + offset == selected {
                r.style(style::selected())
            } else {
                r
            }
        })
        .collect();
    f.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header.iter().map(|h| Cell::from(*h))).style(style::table_header()))
            .column_spacing(1),
        area,
    );
}

/// `r`: resources grouped by location, kind and type.
pub fn draw_groups(f: &mut Frame, app: &App, p: &Page, area: Rect) {
    let groups = &p.res_groups;
    if groups.is_empty() {
        super::placeholder(
            f,
            area,
            "no live resources (the hooks source has none; the console source lists mutexes, semaphores, timers…)",
        );
        return;
    }
    let (pos, shown) = page(app.res_groups_pos, groups.len(), area);
    let rows = groups[shown]
        .iter()
        .map(|g| {
            vec![
                text::count(u64::from(g.live)),
                text::count(u64::from(g.waiting)),
                text::count(u64::from(g.internal)),
                g.oldest.map(text::duration).unwrap_or_default(),
                text::sanitize(&g.key.kind, 20),
                text::sanitize(&g.key.ty, 60),
                text::sanitize(&g.key.location, 120),
            ]
        })
        .collect();
    table(
        f,
        area,
        &[
            "Live", "Waiting", "Internal", "Oldest", "Kind", "Type", "Location",
        ],
        rows,
        pos.selected,
        pos.offset,
        20,
    );
}

fn row_cells(r: &ResRow, app: &App) -> Vec<String> {
    let target = app
        .fleet
        .get(r.target)
        .map(|m| text::sanitize(&m.label, 30))
        .unwrap_or_default();
    vec![
        r.id.to_string(),
        r.parent.map(|p| p.to_string()).unwrap_or_default(),
        text::sanitize(&r.key.kind, 20),
        r.age.map(text::duration).unwrap_or_default(),
        target,
        text::sanitize(&r.key.ty, 60),
        if r.internal { "internal" } else { "public" }.into(),
        text::count(u64::from(r.waiting)),
        text::sanitize(&r.key.location, 120),
        text::sanitize(&r.attributes, 200),
    ]
}

const LIST_HEADER: [&str; 10] = [
    "ID",
    "Parent",
    "Kind",
    "Total",
    "Target",
    "Type",
    "Vis",
    "Waiting",
    "Location",
    "Attributes",
];

/// `f` (or Enter on a group): resources one per row.
pub fn draw_list(f: &mut Frame, app: &App, p: &Page, area: Rect) {
    let rows = &p.res_rows;
    if rows.is_empty() {
        super::placeholder(f, area, "no live resources here");
        return;
    }
    let (pos, shown) = page(app.res_list_pos, rows.len(), area);
    let cells = rows[shown].iter().map(|r| row_cells(r, app)).collect();
    table(f, area, &LIST_HEADER, cells, pos.selected, pos.offset, 10);
}

/// One resource: what it is and the tasks waiting on it.
pub fn draw_one(f: &mut Frame, app: &App, p: &Page, target: usize, id: u64, area: Rect) {
    let Some(r) = p
        .res_one
        .as_ref()
        .filter(|r| r.target == target && r.id == id)
    else {
        super::placeholder(f, area, "this resource was dropped (Esc goes back)");
        return;
    };
    let waiters = &p.waiters;
    let [head, list] = Layout::vertical([Constraint::Length(4), Constraint::Min(2)]).areas(area);
    let head_lines = vec![
        Line::from(format!(
            " resource {} · {} {} · {} · {}",
            r.id,
            text::sanitize(&r.key.kind, 20),
            text::sanitize(&r.key.ty, 60),
            if r.internal { "internal" } else { "public" },
            text::sanitize(&r.key.location, 120)
        )),
        Line::from(format!(
            " age {} · parent {} · attributes: {}",
            r.age.map(text::duration).unwrap_or_default(),
            r.parent
                .map(|p| p.to_string())
                .unwrap_or_else(|| "none".into()),
            if r.attributes.is_empty() {
                "none"
            } else {
                &r.attributes
            }
        )),
        Line::from(format!(
            " {} waiting (Enter opens the selected task)",
            crate::text::count(waiters.len() as u64)
        )),
    ];
    f.render_widget(Paragraph::new(head_lines), head);
    let (pos, shown) = page(app.res_pos, waiters.len(), list);
    let cells = waiters[shown]
        .iter()
        .map(|w| {
            let (t, own) = (w.target, w.task);
            let task = p.task(t, own);
            vec![
                task.and_then(|t| t.tokio_id)
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| format!("span {own}")),
                task.and_then(|t| t.name())
                    .map(|n| text::sanitize(n, 40))
                    .unwrap_or_default(),
                w.op.clone(),
                w.since.map(text::duration).unwrap_or_default(),
            ]
        })
        .collect();
    table(
        f,
        list,
        &["Task", "Name", "Waits in", "For"],
        cells,
        pos.selected,
        pos.offset,
        8,
    );
}
