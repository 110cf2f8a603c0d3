//! Keys, as users of tokio-console, less and vim expect them.

use super::app::{App, Screen, SortKey};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::time::Instant;

/// Applies one key press, then asks for the rows of the screen it opens.
/// Returns true when the screen changes.
pub fn on_key(app: &mut App, key: KeyEvent, now: Instant) -> bool {
    let changed = apply(app, key, now);
    app.sync_lens() || changed
}

fn apply(app: &mut App, key: KeyEvent, now: Instant) -> bool {
    if key.kind == KeyEventKind::Release {
        return false;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c')) {
        app.should_quit = true;
        return true;
    }
    if app.editing_filter {
        return on_filter_key(app, key);
    }
    if app.help {
        // Any key closes help; q still quits.
        app.help = false;
        if key.code == KeyCode::Char('q') {
            app.should_quit = true;
        }
        return true;
    }
    let was_g = std::mem::take(&mut app.pending_g);
    let page = app.page_rows.max(1) as isize;
    match key.code {
        KeyCode::Char('q') => app.should_quit = true,
        KeyCode::Char('?') => app.help = true,
        KeyCode::Char('j') | KeyCode::Down => move_sel(app, 1),
        KeyCode::Char('k') | KeyCode::Up => move_sel(app, -1),
        KeyCode::PageDown => move_sel(app, page),
        KeyCode::PageUp => move_sel(app, -page),
        KeyCode::Char('d') if ctrl => move_sel(app, page / 2),
        KeyCode::Char('u') if ctrl => move_sel(app, -page / 2),
        KeyCode::Char('g') if was_g => move_sel(app, isize::MIN / 2),
        KeyCode::Char('g') => {
            app.pending_g = true;
            return false;
        }
        KeyCode::Home => move_sel(app, isize::MIN / 2),
        KeyCode::Char('G') | KeyCode::End => move_sel(app, isize::MAX / 2),
        KeyCode::Char('h') | KeyCode::Left if app.screen == Screen::Tasks => {
            cycle_task_sort(app, -1)
        }
        KeyCode::Char('l') | KeyCode::Right if app.screen == Screen::Tasks => {
            cycle_task_sort(app, 1)
        }
        KeyCode::Char('i') if app.screen == Screen::Tasks => {
            app.task_invert = !app.task_invert;
            app.rebuild_tasks();
        }
        KeyCode::Char('r') => match app.screen {
            Screen::Resources | Screen::ResourceList | Screen::Resource(..) => {
                app.screen = Screen::Groups
            }
            _ => {
                if matches!(app.screen, Screen::Task(..)) {
                    app.close_task();
                }
                app.screen = Screen::Resources;
            }
        },
        KeyCode::Char('f') if app.screen == Screen::Resources => {
            app.res_only = None;
            app.res_list_pos = Default::default();
            app.screen = Screen::ResourceList;
        }
        KeyCode::Char('f') if app.screen == Screen::ResourceList => app.screen = Screen::Resources,
        KeyCode::Enter if app.screen == Screen::Resources => {
            let sel = app.res_groups_pos.selected;
            let Some(g) = app.page.res_groups.get(sel).cloned() else {
                return false;
            };
            app.res_only = Some(g.key);
            app.res_list_pos = Default::default();
            app.screen = Screen::ResourceList;
        }
        KeyCode::Enter if app.screen == Screen::ResourceList => {
            let sel = app.res_list_pos.selected;
            let Some(r) = app.page.res_rows.get(sel).cloned() else {
                return false;
            };
            app.res_pos = Default::default();
            app.screen = Screen::Resource(r.target, r.id);
        }
        KeyCode::Enter if matches!(app.screen, Screen::Resource(..)) => {
            let sel = app.res_pos.selected;
            let Some(w) = app.page.waiters.get(sel).cloned() else {
                return false;
            };
            // The task's group in the analysis.
            let key = app.analysis.as_ref().and_then(|a| {
                a.groups
                    .iter()
                    .find(|g| {
                        g.tasks
                            .iter()
                            .any(|r| r.id == w.task && usize::from(r.target) == w.target)
                    })
                    .map(|g| g.key)
            });
            let Some(key) = key else {
                app.notify("that task is not in the current analysis yet", now);
                return true;
            };
            app.open_task(key, w.target, w.task);
        }
        KeyCode::Char('a') => match app.screen {
            Screen::Tasks => app.screen = Screen::Groups,
            _ => {
                if matches!(app.screen, Screen::Task(..)) {
                    app.close_task();
                }
                app.screen = Screen::Tasks;
                app.rebuild_tasks();
            }
        },
        KeyCode::Char('h') | KeyCode::Left => cycle_sort(app, -1),
        KeyCode::Char('l') | KeyCode::Right => cycle_sort(app, 1),
        KeyCode::Char('i') => {
            app.invert = !app.invert;
            let keep = app.selected_group().map(|g| g.key);
            app.rebuild_visible(keep);
        }
        KeyCode::Char('/') => {
            app.editing_filter = true;
        }
        KeyCode::Char(' ') => {
            app.toggle_freeze();
            if app.frozen {
                app.notify(
                    "frozen: the view holds still; data is still collected (space resumes)",
                    now,
                );
            } else {
                app.notify("resumed", now);
            }
        }
        KeyCode::Char('s') => app.save_snapshot(now),
        KeyCode::Char('e') => app.export_report(crate::report::Format::Md, now),
        KeyCode::Char('E') => app.export_report(crate::report::Format::Html, now),
        KeyCode::Char('b') => app.mark_baseline(now),
        KeyCode::Char('t') => app.request_waits(now),
        KeyCode::Char('d') => match app.screen {
            Screen::Diff if app.offline.is_none() => app.screen = Screen::Groups,
            Screen::Diff => return false,
            _ if app.baseline.is_none() => app.notify("no baseline yet: press b to mark one", now),
            _ => {
                app.screen = Screen::Diff;
                app.diff_pos = Default::default();
            }
        },
        KeyCode::Enter if app.screen == Screen::Tasks => {
            // Opens the task.
            let picked = app.task_order.get(app.tasks_pos.selected).copied();
            let Some((e, a)) = picked.zip(app.analysis.clone()) else {
                return false;
            };
            let Some(g) = a.groups.get(e.group as usize) else {
                return false;
            };
            let Some(row) = g.tasks.get(e.row as usize) else {
                return false;
            };
            app.open_task(g.key, usize::from(row.target), row.id);
        }
        KeyCode::Enter if matches!(app.screen, Screen::Detail(_)) => {
            let picked = app.detail_group().and_then(|g| {
                let r = g.tasks.get(app.detail_pos.selected)?;
                Some((g.key, usize::from(r.target), r.id))
            });
            let Some((key, target, id)) = picked else {
                return false;
            };
            app.open_task(key, target, id);
        }
        KeyCode::Enter => {
            if app.screen == Screen::Groups
                && let Some(g) = app.selected_group()
            {
                let key = g.key;
                app.screen = Screen::Detail(key);
                app.detail_pos = Default::default();
            }
        }
        KeyCode::Esc | KeyCode::Backspace => match app.screen {
            Screen::Detail(_) => app.screen = Screen::Groups,
            Screen::Diff if app.offline.is_none() => app.screen = Screen::Groups,
            Screen::Diff => return false,
            Screen::Tasks => app.screen = Screen::Groups,
            Screen::Task(..) => app.close_task(),
            Screen::Resource(..) => app.screen = Screen::ResourceList,
            Screen::ResourceList => app.screen = Screen::Resources,
            Screen::Resources => app.screen = Screen::Groups,
            Screen::Groups if !app.filter.is_empty() => {
                app.filter.clear();
                let keep = app.selected_group().map(|g| g.key);
                app.rebuild_visible(keep);
            }
            Screen::Groups => return false,
        },
        _ => return false,
    }
    true
}

fn on_filter_key(app: &mut App, key: KeyEvent) -> bool {
    match key.code {
        KeyCode::Enter => app.editing_filter = false,
        KeyCode::Esc => {
            app.editing_filter = false;
            app.filter.clear();
        }
        KeyCode::Backspace => {
            app.filter.pop();
        }
        KeyCode::Char(c) if !c.is_control() => app.filter.push(c),
        _ => return false,
    }
    let keep = app.selected_group().map(|g| g.key);
    app.rebuild_visible(keep);
    app.groups_pos.selected = 0;
    if app.screen == Screen::Tasks {
        app.tasks_pos.selected = 0;
        app.rebuild_tasks();
    }
    true
}

fn move_sel(app: &mut App, delta: isize) {
    match app.screen {
        Screen::Groups => {
            app.selection_moved = true;
            let len = app.visible.len();
            app.groups_pos.move_by(delta, len);
            app.groups_pos.clamp(len, app.page_rows);
        }
        Screen::Detail(_) => {
            let len = app.detail_group().map(|g| g.tasks.len()).unwrap_or(0);
            app.detail_pos.move_by(delta, len);
            app.detail_pos.clamp(len, app.page_rows);
        }
        Screen::Diff => {
            let len = app.diff().map(|d| d.rows.len()).unwrap_or(0);
            app.diff_pos.move_by(delta, len);
            app.diff_pos.clamp(len, app.page_rows);
        }
        Screen::Tasks => {
            let len = app.task_order.len();
            app.tasks_pos.move_by(delta, len);
            app.tasks_pos.clamp(len, app.page_rows);
        }
        Screen::Task(..) => {}
        Screen::Resources => {
            let len = app.page.res_groups.len();
            app.res_groups_pos.move_by(delta, len);
            app.res_groups_pos.clamp(len, app.page_rows);
        }
        Screen::ResourceList => {
            let len = app.page.res_rows.len();
            app.res_list_pos.move_by(delta, len);
            app.res_list_pos.clamp(len, app.page_rows);
        }
        Screen::Resource(..) => {
            let len = app.page.waiters.len();
            app.res_pos.move_by(delta, len);
            app.res_pos.clamp(len, app.page_rows);
        }
    }
}

/// The entry `dir` steps from `cur` in `all`, wrapping around.
fn step<T: Copy + PartialEq>(all: &[T], cur: T, dir: isize) -> T {
    let n = all.len() as isize;
    let at = all.iter().position(|c| *c == cur).unwrap_or(0) as isize;
    all[(at + dir).rem_euclid(n) as usize]
}

fn cycle_task_sort(app: &mut App, dir: isize) {
    app.task_col = step(&super::tasks::Column::ALL, app.task_col, dir);
    app.rebuild_tasks();
}

fn cycle_sort(app: &mut App, dir: isize) {
    app.sort = step(&SortKey::ALL, app.sort, dir);
    let keep = app.selected_group().map(|g| g.key);
    app.rebuild_visible(keep);
}
