//! Drawing: a pure function of `&App` onto a frame. Only visible rows are
//! built, so a 100 000-task group draws as fast as a small one.

mod detail;
mod diff;
mod groups;
mod help;
mod resources;
mod status;
pub mod style;
mod task;
mod tasks;

use super::app::{App, Screen};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

/// Smallest terminal the views fit in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 10;

/// A column as wide as its widest value and its header (a sortable
/// column's header with its arrow), at least `min`: numbers are never cut.
pub fn fit<S: AsRef<str>>(header: &str, values: impl IntoIterator<Item = S>, min: u16) -> u16 {
    let widest = values
        .into_iter()
        .map(|v| v.as_ref().chars().count())
        .max()
        .unwrap_or(0);
    (widest.max(header.chars().count()) as u16).max(min)
}

/// Draws the view from what the session published: the analysis and the
/// open screen's page (`app.page`).
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "terminal too small: {}x{} (taskscope needs {MIN_WIDTH}x{MIN_HEIGHT}); enlarge it or press q",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(2),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(status::header(app)), header);
    let page = &app.page;
    match app.screen {
        Screen::Groups => groups::draw(f, app, body),
        Screen::Diff => diff::draw(f, app, body),
        // The session answers a new screen with its rows at once; until
        // then, nothing to show but that.
        _ if !app.page_ready() && app.analysis.is_some() => {
            placeholder(f, body, "reading this screen's rows…")
        }
        Screen::Detail(_) => detail::draw(f, app, page, body),
        Screen::Tasks => tasks::draw(f, app, page, body),
        Screen::Task(key, t, id) => task::draw(f, app, page, key, t, id, body),
        Screen::Resources => resources::draw_groups(f, app, page, body),
        Screen::ResourceList => resources::draw_list(f, app, page, body),
        Screen::Resource(t, id) => resources::draw_one(f, app, page, t, id, body),
    }
    f.render_widget(Paragraph::new(status::footer(app)), footer);
    if app.help {
        help::draw(f, app, area);
    }
}

/// Rows a list can show in a terminal of `height` rows (for paging).
pub fn list_rows(app: &App, height: u16) -> usize {
    let body = height.saturating_sub(3);
    match app.screen {
        Screen::Groups => body.saturating_sub(1) as usize,
        Screen::Detail(_) => body
            .saturating_sub(detail::header_rows(app.detail_group()) + detail::FOOTER_ROWS + 1)
            as usize,
        Screen::Diff => body.saturating_sub(diff::HEADER_ROWS + 1) as usize,
        Screen::Tasks => body.saturating_sub(1) as usize,
        Screen::Task(..) => 1,
        Screen::Resources | Screen::ResourceList => body.saturating_sub(1) as usize,
        Screen::Resource(..) => body.saturating_sub(5) as usize,
    }
}

/// A one-line placeholder in the middle of an area.
fn placeholder(f: &mut Frame, area: Rect, text: &str) {
    let y = area.y + area.height / 2;
    let line = Rect::new(area.x, y, area.width, 1);
    f.render_widget(
        Paragraph::new(Line::from(text.to_string())).centered(),
        line,
    );
}
