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
    ("t", "capture the tasks' waits now (needs taskscope-agent)"),
    ("b", "mark the current state as the baseline"),
    ("d", "diff against the baseline / back"),
    ("?", "this help (any key closes it)"),
    ("q / Ctrl-C", "quit"),
];

pub fn draw(f: &mut Frame, _app: &App, area: Rect) {
    let key_line = |(k, d): &(&str, &str)| format!(" {k:<16} {d:<52}");
    let notes = [
        String::new(),
        " Group rows read: tasks · change over the window · trend".to_string(),
        " * after a reason: captured (the task's own stack); ~ inferred".to_string(),
    ];
    // One column when it fits; two side by side in a short, wide
    // terminal; else as many keys as fit and a line saying so.
    let fits = KEYS.len() + notes.len() + 2 <= area.height as usize;
    let two = !fits && area.width >= 144;
    let mut lines: Vec<String> = if two {
        let half = KEYS.len().div_ceil(2);
        (0..half)
            .map(|i| {
                let left = key_line(&KEYS[i]);
                let right = KEYS.get(half + i).map(key_line).unwrap_or_default();
                format!("{left}{right}")
            })
            .collect()
    } else {
        KEYS.iter().map(key_line).collect()
    };
    lines.extend(notes);
    let room = area.height.saturating_sub(2) as usize;
    if lines.len() > room && room > 0 {
        lines.truncate(room - 1);
        lines.push(" … (a taller terminal shows every key)".into());
    }
    let width = if two { 144 } else { 72 }.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>())
            .block(Block::default().borders(Borders::ALL).title(" keys ")),
        r,
    );
}
