//! The TUI's state: the view the session published (analysis and the open
//! screen's rows), connection status and view state. Drawing reads it;
//! input and the session's messages change it.

use crate::analysis::diff::{self, Diff};
use crate::analysis::{Analysis, Group, Params};
use crate::conn::Status;
use crate::model::GroupKey;
use crate::model::State;
use crate::report::diff::Side;
use crate::session::{Job, Lens, Page, ToUi, View as Published};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// Which screen is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Groups,
    Detail(GroupKey),
    /// Changes since the baseline.
    Diff,
    /// Every task, one per row (`a`).
    Tasks,
    /// One task: its group, its target and its id.
    Task(GroupKey, usize, u64),
    /// Resources grouped by location, kind and type (`r`).
    Resources,
    /// Resources one per row (`f`, or Enter on a group: `res_only`).
    ResourceList,
    /// One resource (target, id) and the tasks waiting on it.
    Resource(usize, u64),
}

/// Sortable columns of the groups table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Tasks,
    Delta,
    Oldest,
    Idle,
    /// By the reason most of the group's tasks share.
    Reason,
    Location,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Tasks,
        SortKey::Delta,
        SortKey::Oldest,
        SortKey::Idle,
        SortKey::Reason,
        SortKey::Location,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Tasks => "tasks",
            SortKey::Delta => "Δ",
            SortKey::Oldest => "oldest",
            SortKey::Idle => "max idle",
            SortKey::Reason => "blocked on",
            SortKey::Location => "location",
        }
    }
}

/// A list's cursor and scroll offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListPos {
    pub selected: usize,
    pub offset: usize,
}

impl ListPos {
    /// Keeps the selection inside `len` rows and visible in `height` rows.
    pub fn clamp(&mut self, len: usize, height: usize) {
        if len == 0 {
            *self = ListPos::default();
            return;
        }
        self.selected = self.selected.min(len - 1);
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.offset = self.offset.min(len.saturating_sub(height));
    }

    pub fn move_by(&mut self, delta: isize, len: usize) {
        if len == 0 {
            return;
        }
        let cur = self.selected as isize + delta;
        self.selected = cur.clamp(0, len as isize - 1) as usize;
    }
}

/// Connection state as the status line needs it.
#[derive(Clone, Debug)]
pub struct ConnView {
    pub status: Status,
    pub last_update: Option<Instant>,
    /// The last error, kept while connected again, for context.
    pub last_error: Option<String>,
}

/// One target of several (`connect A B C`).
#[derive(Clone, Debug)]
pub struct Member {
    pub label: String,
    pub conn: ConnView,
}

#[derive(Clone, Debug)]
pub struct App {
    pub target: String,
    /// With no session (tests, benches, offline views): the targets'
    /// models, analysed here by [`App::recompute`]. Live, the session owns
    /// them and this stays empty.
    pub local: Vec<State>,
    /// With several targets, each one; empty with one.
    pub fleet: Vec<Member>,
    pub params: Params,
    pub analysis: Option<Arc<Analysis>>,
    /// The open screen's rows, built with `analysis` (see [`Page`]).
    pub page: Arc<Page>,
    /// The lens the page was last asked for.
    pub lens_sent: Lens,
    /// The newest view, held back while the view is frozen.
    pub pending: Option<Published>,
    /// Where jobs go; `None` runs them on the spot (tests, offline).
    pub jobs: Option<mpsc::UnboundedSender<Job>>,
    /// Indices into `analysis.groups`, filtered and sorted as shown.
    pub visible: Vec<usize>,
    pub conn: ConnView,
    pub screen: Screen,
    pub help: bool,
    pub sort: SortKey,
    pub invert: bool,
    pub filter: String,
    pub editing_filter: bool,
    pub groups_pos: ListPos,
    pub detail_pos: ListPos,
    pub frozen: bool,
    pub should_quit: bool,
    /// Why the view had to close (the model thread died), if it did.
    pub fatal: Option<String>,
    pub pending_g: bool,
    /// Once the user moves the selection it follows its group as rows
    /// reorder; until then it stays on the top row (the top suspect).
    pub selection_moved: bool,
    pub color: bool,
    /// Rows available for lists at the last draw (set by the renderer's
    /// layout, used for paging).
    pub page_rows: usize,
    pub notice: Option<(String, Instant)>,
    /// The state marked with `b` (or the old snapshot of `taskscope diff`).
    pub baseline: Option<(Arc<Analysis>, Side)>,
    pub diff_pos: ListPos,
    /// Set when the view shows files rather than a live target.
    pub offline: Option<String>,
    /// When the view started watching (for snapshot metadata).
    pub started: Instant,
    /// Where `s` writes snapshots.
    pub save_dir: PathBuf,
    /// The flat task list: its sort column, direction, order and cursor.
    pub task_col: super::tasks::Column,
    pub task_invert: bool,
    pub task_order: Vec<super::tasks::Entry>,
    pub tasks_pos: ListPos,
    /// Where Esc goes from the task view.
    pub task_back: Option<Screen>,
    /// The resources views: the group the list is narrowed to, and the
    /// cursors of the groups, the list and a resource's waiters.
    pub res_only: Option<crate::session::resources::GroupKey>,
    pub res_groups_pos: ListPos,
    pub res_list_pos: ListPos,
    pub res_pos: ListPos,
}

impl App {
    pub fn new(target: String, params: Params, color: bool) -> App {
        App {
            target,
            local: vec![State::default()],
            fleet: Vec::new(),
            params,
            analysis: None,
            page: Arc::default(),
            lens_sent: Lens::Groups,
            pending: None,
            jobs: None,
            visible: Vec::new(),
            conn: ConnView {
                status: Status::Connecting { attempt: 1 },
                last_update: None,
                last_error: None,
            },
            screen: Screen::Groups,
            help: false,
            sort: SortKey::Tasks,
            invert: false,
            filter: String::new(),
            editing_filter: false,
            groups_pos: ListPos::default(),
            detail_pos: ListPos::default(),
            frozen: false,
            should_quit: false,
            fatal: None,
            pending_g: false,
            selection_moved: false,
            color,
            page_rows: 20,
            notice: None,
            baseline: None,
            diff_pos: ListPos::default(),
            offline: None,
            started: Instant::now(),
            save_dir: PathBuf::from("."),
            task_col: super::tasks::Column::Total,
            task_invert: false,
            task_order: Vec::new(),
            tasks_pos: ListPos::default(),
            task_back: None,
            res_only: None,
            res_groups_pos: ListPos::default(),
            res_list_pos: ListPos::default(),
            res_pos: ListPos::default(),
        }
    }

    /// The current state as the newer side of a diff.
    pub fn current_side(&self) -> Side {
        Side {
            label: self.offline.clone().unwrap_or_else(|| "now".into()),
            target: self.target.clone(),
            taken_at_unix_ns: None,
        }
    }

    /// The diff between the baseline and the current analysis.
    pub fn diff(&self) -> Option<Diff> {
        let (base, _) = self.baseline.as_ref()?;
        Some(diff::diff(base, self.analysis.as_ref()?))
    }

    /// What the open screen needs of the models.
    pub fn lens(&self) -> Lens {
        match self.screen {
            Screen::Groups | Screen::Diff => Lens::Groups,
            Screen::Detail(k) => Lens::Group(k),
            Screen::Tasks => Lens::Tasks,
            Screen::Task(k, t, id) => Lens::Task(k, t, id),
            Screen::Resources => Lens::Resources,
            Screen::ResourceList => Lens::ResourceList(self.res_only.clone()),
            Screen::Resource(t, id) => Lens::Resource(t, id),
        }
    }

    /// Whether the page on hand is the open screen's (a lens just asked
    /// for is answered by the session's next message).
    pub fn page_ready(&self) -> bool {
        self.page.lens == self.lens()
    }

    /// After a key: asks the session for the open screen's rows when the
    /// screen changed (built on the frozen analysis while frozen), or
    /// builds them here without one. Returns true when the page changed.
    pub fn sync_lens(&mut self) -> bool {
        let lens = self.lens();
        if lens == self.lens_sent {
            return false;
        }
        self.lens_sent = lens.clone();
        match &self.jobs {
            Some(tx) => {
                let frozen = self.analysis.clone().filter(|_| self.frozen);
                let _ = tx.send(Job::Lens { lens, frozen });
                false
            }
            None => {
                self.rebuild_page();
                true
            }
        }
    }

    /// The page of the open screen from the local models (no session).
    fn rebuild_page(&mut self) {
        let Some(a) = &self.analysis else {
            return;
        };
        let states: Vec<&State> = self.local.iter().collect();
        self.page = Arc::new(Page::build(self.lens(), a, &states));
        if self.screen == Screen::Tasks {
            self.rebuild_tasks();
        }
    }

    /// Folds in what the model thread sends. Returns true when the screen
    /// changes.
    pub fn on_worker(&mut self, msg: ToUi, now: Instant) -> bool {
        match msg {
            ToUi::TargetStatus(i, s) => {
                let Some(m) = self.fleet.get_mut(i) else {
                    return false;
                };
                if let Status::Reconnecting { error, .. } | Status::Failed(error) = &s {
                    m.conn.last_error = Some(error.to_string());
                }
                m.conn.status = s;
                // The view as a whole is connected while any target is.
                let any = self
                    .fleet
                    .iter()
                    .find(|m| matches!(m.conn.status, Status::Connected))
                    .or(self.fleet.first());
                if let Some(m) = any {
                    self.conn.status = m.conn.status.clone();
                }
                true
            }
            ToUi::Status(s) => {
                match &s {
                    Status::Reconnecting { error, .. } | Status::Failed(error) => {
                        self.conn.last_error = Some(error.to_string());
                    }
                    _ => {}
                }
                self.conn.status = s;
                true
            }
            ToUi::Updated(at) => {
                self.conn.last_update = Some(at);
                false
            }
            ToUi::TargetUpdated(i, at) => {
                self.conn.last_update = Some(at);
                if let Some(m) = self.fleet.get_mut(i) {
                    m.conn.last_update = Some(at);
                }
                false
            }
            ToUi::View(v) => {
                if self.frozen
                    && let Some(held) = &self.analysis
                {
                    // The rows of a screen opened while frozen come built
                    // on the frozen analysis; anything newer waits.
                    if Arc::ptr_eq(held, &v.analysis) {
                        self.page = v.page;
                        if self.screen == Screen::Tasks {
                            self.rebuild_tasks();
                        }
                        return true;
                    }
                    self.pending = Some(v);
                    return false;
                }
                self.show(v);
                true
            }
            ToUi::Notice(m) => {
                self.notify(m, now);
                true
            }
            // The headless front end's.
            ToUi::WaitsAsked(_) | ToUi::Captured(_) => false,
            ToUi::Died(m) => {
                self.fatal = Some(m);
                self.should_quit = true;
                true
            }
        }
    }

    /// Shows a published view, keeping the selected group selected.
    pub fn show(&mut self, v: Published) {
        self.page = v.page;
        self.set_analysis(v.analysis);
    }

    /// Shows a new analysis, keeping the selected group selected.
    pub fn set_analysis(&mut self, a: Arc<Analysis>) {
        let selected = self.selected_group().map(|g| g.key);
        self.analysis = Some(a);
        self.rebuild_visible(selected);
        if self.screen == Screen::Tasks {
            self.rebuild_tasks();
        }
    }

    /// Re-lists every task (the flat list) in its sort and filter, from
    /// the page.
    pub fn rebuild_tasks(&mut self) {
        let Some(a) = self.analysis.clone() else {
            self.task_order.clear();
            return;
        };
        self.task_order = super::tasks::order(
            &a,
            &self.page,
            self.task_col,
            self.task_invert,
            &self.filter.to_lowercase(),
        );
        self.tasks_pos.clamp(self.task_order.len(), self.page_rows);
    }

    /// Space: holds the whole view still (the groups and the open screen's
    /// rows), or resumes it with the newest data.
    pub fn toggle_freeze(&mut self) {
        self.frozen = !self.frozen;
        if !self.frozen
            && let Some(v) = self.pending.take()
        {
            self.show(v);
            if !self.page_ready() {
                // A screen opened while frozen: its live rows.
                self.lens_sent = Lens::Groups;
                self.sync_lens();
            }
        }
    }

    /// Analyses the local models here (tests, benches and the offline
    /// views; live, the session does it), with the open screen's rows.
    pub fn recompute(&mut self) {
        let states: Vec<&State> = self.local.iter().collect();
        let analysis = match states.as_slice() {
            [st] => {
                let Some(target_now) = st.log.now else {
                    return;
                };
                Analysis::run(st, target_now, &self.params)
            }
            all => {
                let labels = self
                    .fleet
                    .iter()
                    .map(|m| Arc::<str>::from(m.label.as_str()));
                let Some(a) = crate::analysis::fleet::Merger::default().analyse(
                    true,
                    labels.zip(all.iter().copied()),
                    &self.params,
                ) else {
                    return;
                };
                a
            }
        };
        let a = Arc::new(analysis);
        self.page = Arc::new(Page::build(self.lens(), &a, &states));
        self.lens_sent = self.lens();
        self.set_analysis(a);
    }

    /// Re-applies filter and sort, keeping the selected group selected.
    pub fn rebuild_visible(&mut self, keep: Option<GroupKey>) {
        let Some(a) = &self.analysis else {
            self.visible.clear();
            return;
        };
        let needle = self.filter.to_lowercase();
        let mut idx: Vec<usize> = (0..a.groups.len())
            .filter(|&i| a.groups[i].live > 0 || !needle.is_empty())
            .filter(|&i| needle.is_empty() || group_matches(&a.groups[i], &needle))
            .collect();
        let key = self.sort;
        idx.sort_by(|&x, &y| {
            let (g, h) = (&a.groups[x], &a.groups[y]);
            let ord = match key {
                SortKey::Tasks => h.live.cmp(&g.live),
                SortKey::Delta => h.delta.cmp(&g.delta),
                SortKey::Oldest => h.oldest.cmp(&g.oldest),
                SortKey::Idle => h.longest_idle.cmp(&g.longest_idle),
                SortKey::Reason => {
                    let main = |x: &Group| x.main_reason().map(|r| r.reason.short());
                    main(g).cmp(&main(h)).then(h.live.cmp(&g.live))
                }
                SortKey::Location => g.location.cmp(&h.location),
            };
            ord.then_with(|| g.location.cmp(&h.location))
        });
        if self.invert {
            idx.reverse();
        }
        // Suspects always lead, whatever the sort.
        idx.sort_by_key(|&i| a.groups[i].suspect.is_none());
        self.visible = idx;
        if let Some(k) = keep.filter(|_| self.selection_moved)
            && let Some(pos) = self.visible.iter().position(|&i| a.groups[i].key == k)
        {
            self.groups_pos.selected = pos;
        }
        self.groups_pos.clamp(self.visible.len(), self.page_rows);
    }

    pub fn selected_group(&self) -> Option<&Group> {
        let a = self.analysis.as_ref()?;
        let i = *self.visible.get(self.groups_pos.selected)?;
        a.groups.get(i)
    }

    /// The group the detail view shows.
    pub fn detail_group(&self) -> Option<&Group> {
        let Screen::Detail(key) = self.screen else {
            return None;
        };
        self.analysis.as_ref()?.groups.iter().find(|g| g.key == key)
    }

    pub fn notify(&mut self, msg: impl Into<String>, now: Instant) {
        self.notice = Some((msg.into(), now));
    }
}

/// Filter match on location, kind and task names (case-insensitive).
fn group_matches(g: &Group, needle: &str) -> bool {
    g.location.to_lowercase().contains(needle)
        || g.kind.label().contains(needle)
        || g.names
            .iter()
            .any(|(n, _)| n.to_lowercase().contains(needle))
        || g.reasons.iter().any(|r| r.reason.short().contains(needle))
}
