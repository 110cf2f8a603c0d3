//! The `?` overlay.

use crate::ui::app::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub const KEYS: &[(&str, &str)] = &[
    ("j / k / ↑ / ↓", "move the selection"),
    ("gg / G", "first / last row"),
    ("PgUp / PgDn", "page up / down"),
    ("Enter", "open the selected group, task or resource"),
    ("a", "all tasks, one per row / back"),
    ("r / f", "resources by location / one per row / back"),
    ("Esc", "back; clear the filter"),
    ("h / l / ← / →", "choose the sort column"),
    ("i", "invert the sort order"),
    ("/", "filter by location, task name, kind or reason"),
    ("space", "freeze / resume the view (data keeps coming)"),
    ("s", "save a snapshot (file name shown below)"),
    ("e / E", "export the suspect report (Markdown / HTML)"),
    ("t", "take a task dump now (needs taskscope-agent)"),
    ("b", "mark the current state as the baseline"),
    ("d", "diff against the baseline / back"),
    ("?", "this help (any key closes it)"),
    ("q / Ctrl-C", "quit"),
];

pub fn draw(f: &mut Frame, _app: &App, area: Rect) {
    let width = 72.min(area.width);
    let height = (KEYS.len() as u16 + 5).min(area.height);
    let r = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, d)| Line::from(format!(" {k:<16} {d}")))
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::from(
        " Group rows read: tasks · change over the window · trend",
    ));
    lines.push(Line::from(" * after a reason: known from a task dump"));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        r,
    );
}
