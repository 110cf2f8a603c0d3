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

/// `▁▂▃▅▇` for the last `width` values, scaled between their min and max.
pub fn sparkline(values: &[u64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(width)..];
    let (Some(&min), Some(&max)) = (tail.iter().min(), tail.iter().max()) else {
        return String::new();
    };
    tail.iter()
        .map(|&v| {
            if max == min {
                if max == 0 { BARS[0] } else { BARS[3] }
            } else {
                let i = ((v - min) * 7 + (max - min) / 2) / (max - min);
                BARS[i.min(7) as usize]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sparkline_scales_and_truncates() {
        assert_eq!(super::sparkline(&[0, 1, 2, 3, 4, 5, 6, 7], 8), "▁▂▃▄▅▆▇█");
        assert_eq!(super::sparkline(&[9, 9, 0, 7], 2), "▁█");
        assert_eq!(super::sparkline(&[5, 5], 8), "▄▄");
        assert_eq!(super::sparkline(&[], 8), "");
    }
}
