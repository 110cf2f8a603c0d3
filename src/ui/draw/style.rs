//! Colors, with `NO_COLOR` respected: every highlight also has a textual
//! mark so nothing depends on color alone.

use crate::ui::app::App;
use ratatui::style::{Color, Modifier, Style};

pub fn header(app: &App) -> Style {
    if app.color {
        Style::default().fg(Color::Black).bg(Color::Cyan)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

pub fn selected() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

pub fn table_header() -> Style {
    Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
}

pub fn warn(app: &App) -> Style {
    if app.color {
        Style::default()
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

pub fn bad(app: &App) -> Style {
    if app.color {
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

/// Suspect rows: red where color is allowed; the `!!` mark says it anyway.
pub fn suspect(app: &App) -> Style {
    if app.color {
        Style::default().fg(Color::Red)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    }
}

pub fn good(app: &App) -> Style {
    if app.color {
        Style::default().fg(Color::Green)
    } else {
        Style::default()
    }
}

pub fn dim(app: &App) -> Style {
    if app.color {
        Style::default().fg(Color::DarkGray)
    } else {
        Style::default()
    }
}
