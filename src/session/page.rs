//! What the open screen shows beyond the analysis, copied out of the
//! models on the session's thread: the tasks of the open group or of the
//! flat list, the open task with its details, the resources. A front end
//! draws from a [`Page`] and the [`Analysis`] it was built with, never
//! from the live models, so a frozen view holds every row still and a
//! frame never waits on a model being written.

use super::resources::{self, ResGroup, ResRow, Waiter};
use crate::analysis::{Analysis, TaskState};
use crate::model::captures::Trace;
use crate::model::counted::PagedTask;
use crate::model::details::TaskDetails;
use crate::model::{GroupKey, State, Task};
use std::collections::HashMap;
use std::sync::Arc;

/// What the front end is looking at, as far as the session needs to know:
/// which rows to copy, which group's tasks to fetch from a hooks target,
/// whose details to stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Lens {
    /// The groups table or the diff: the analysis is all they show.
    #[default]
    Groups,
    /// One group opened: its tasks.
    Group(GroupKey),
    /// Every live task, one per row.
    Tasks,
    /// One task (its group, target and id): its stats, stack and details.
    Task(GroupKey, usize, u64),
    /// Resources grouped by location, kind and type.
    Resources,
    /// Resources one per row, narrowed to one group or not.
    ResourceList(Option<resources::GroupKey>),
    /// One resource (target, id) and the tasks waiting on it.
    Resource(usize, u64),
}

impl Lens {
    /// The group whose tasks the hooks source pages in for this lens.
    pub fn open_group(&self) -> Option<GroupKey> {
        match self {
            Lens::Group(k) | Lens::Task(k, ..) => Some(*k),
            _ => None,
        }
    }

    /// The task whose details the console source streams for this lens.
    pub fn open_task(&self) -> Option<(usize, u64)> {
        match self {
            Lens::Task(_, t, id) => Some((*t, *id)),
            _ => None,
        }
    }
}

/// The rows a lens needs, copied from the targets' models (in the
/// targets' order). Tasks are keyed by (target, the model's own id), as
/// the analysis's rows name them.
#[derive(Debug, Default)]
pub struct Page {
    pub lens: Lens,
    /// The rows' tasks of the open group, or of every group (the flat
    /// list), aligned with the analysis's rows: `rows[group][row]`. Shared
    /// with the model (copy on write there).
    rows: Vec<Vec<Option<Arc<Task>>>>,
    /// Other tasks by (target, id): the open task, a resource's waiters.
    tasks: HashMap<(usize, u64), Arc<Task>>,
    paged: HashMap<(usize, u64), PagedTask>,
    traces: HashMap<(usize, u32), Arc<Trace>>,
    details: Option<(usize, TaskDetails)>,
    pub res_groups: Vec<ResGroup>,
    pub res_rows: Vec<ResRow>,
    pub res_one: Option<ResRow>,
    pub waiters: Vec<Waiter>,
}

impl Page {
    /// The rows `lens` needs of `states`, for the rows of `analysis`.
    pub fn build(lens: Lens, analysis: &Analysis, states: &[&State]) -> Page {
        let mut page = Page {
            lens: lens.clone(),
            ..Page::default()
        };
        match &lens {
            Lens::Groups => {}
            Lens::Group(key) => {
                if let Some(gi) = analysis.groups.iter().position(|g| g.key == *key) {
                    page.copy_rows(analysis, gi, states, true);
                }
            }
            Lens::Tasks => {
                for gi in 0..analysis.groups.len() {
                    page.copy_rows(analysis, gi, states, false);
                }
            }
            Lens::Task(key, target, id) => {
                let row = analysis
                    .groups
                    .iter()
                    .find(|g| g.key == *key)
                    .and_then(|g| {
                        g.tasks
                            .iter()
                            .find(|r| r.id == *id && usize::from(r.target) == *target)
                    });
                page.copy_task(states, *target, *id, row.and_then(|r| r.verdict.trace()));
                page.details = states
                    .get(*target)
                    .and_then(|s| s.console.details.as_ref())
                    .filter(|d| d.task == *id)
                    .map(|d| (*target, d.clone()));
            }
            Lens::Resources => page.res_groups = resources::groups(states),
            Lens::ResourceList(only) => page.res_rows = resources::rows(states, only.as_ref()),
            Lens::Resource(target, id) => {
                page.res_one = resources::one(states, *target, *id);
                page.waiters = resources::waiters(states, *target, *id);
                let waiting: Vec<(usize, u64)> =
                    page.waiters.iter().map(|w| (w.target, w.task)).collect();
                for (t, task) in waiting {
                    page.copy_task(states, t, task, None);
                }
            }
        }
        page
    }

    /// Copies group `gi`'s rows (finished ones only with `finished`): the
    /// console's records, the hooks source's paged rows, their stacks.
    fn copy_rows(&mut self, analysis: &Analysis, gi: usize, states: &[&State], finished: bool) {
        let g = &analysis.groups[gi];
        if self.rows.len() <= gi {
            self.rows.resize_with(gi + 1, Vec::new);
        }
        let mut rows = Vec::with_capacity(g.tasks.len());
        for r in &g.tasks {
            let target = usize::from(r.target);
            let Some(st) = states.get(target) else {
                rows.push(None);
                continue;
            };
            if !finished && r.verdict.state == TaskState::Completed {
                rows.push(None);
                continue;
            }
            let task = st.console.tasks.get(&r.id).cloned();
            if task.is_none() {
                self.copy_paged(st, target, r.id);
            }
            if finished && let Some(i) = r.verdict.trace() {
                self.copy_trace(st, target, i);
            }
            rows.push(task);
        }
        self.rows[gi] = rows;
    }

    fn copy_paged(&mut self, st: &State, target: usize, id: u64) {
        let paged = st
            .hooks
            .as_ref()
            .and_then(|a| a.page.as_ref())
            .and_then(|(_, p)| p.tasks.iter().find(|t| t.id == id));
        if let Some(p) = paged {
            self.paged.insert((target, id), p.clone());
        }
    }

    fn copy_trace(&mut self, st: &State, target: usize, i: u32) {
        if let Some(tr) = st.captures.as_ref().and_then(|d| d.traces.get(i as usize)) {
            self.traces.insert((target, i), tr.clone());
        }
    }

    /// Copies one task: the console's record, or the hooks source's paged
    /// row; and its stack from the capture.
    fn copy_task(&mut self, states: &[&State], target: usize, id: u64, trace: Option<u32>) {
        let Some(st) = states.get(target) else {
            return;
        };
        match st.console.tasks.get(&id) {
            Some(t) => {
                self.tasks.insert((target, id), t.clone());
            }
            None => self.copy_paged(st, target, id),
        }
        if let Some(i) = trace {
            self.copy_trace(st, target, i);
        }
    }

    /// The task of row `row` of group `group` (indexes into the analysis
    /// the page was built with), as the console source records it.
    pub fn row(&self, group: usize, row: usize) -> Option<&Task> {
        self.rows.get(group)?.get(row)?.as_deref()
    }

    /// Target `target`'s task `id`, as the console source records it.
    pub fn task(&self, target: usize, id: u64) -> Option<&Task> {
        self.tasks.get(&(target, id)).map(|t| &**t)
    }

    /// Target `target`'s task `id`, as a hooks target's page of the open
    /// group has it.
    pub fn paged(&self, target: usize, id: u64) -> Option<&PagedTask> {
        self.paged.get(&(target, id))
    }

    /// Trace `index` of target `target`'s capture.
    pub fn trace(&self, target: usize, index: u32) -> Option<&Trace> {
        self.traces.get(&(target, index)).map(|t| &**t)
    }

    /// The details (histograms) of target `target`'s task `id`, once the
    /// target has sent them.
    pub fn details(&self, target: usize, id: u64) -> Option<&TaskDetails> {
        self.details
            .as_ref()
            .filter(|(t, d)| *t == target && d.task == id)
            .map(|(_, d)| d)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::Params;
    use crate::model::Ts;
    use crate::model::update::{NewTask, SourceLoc, TaskStats, Update};

    /// New tasks `ids`, created at second `at_secs` of a fixed day, at
    /// `file_of(id)`.
    pub(crate) fn update(
        at_secs: i64,
        ids: std::ops::Range<u64>,
        file_of: impl Fn(u64) -> &'static str,
    ) -> Update {
        let at = Ts::from_nanos(1_800_000_000_000_000_000 + at_secs * 1_000_000_000);
        let mut up = Update {
            now: Some(at),
            has_metadata: true,
            ..Update::default()
        };
        for id in ids {
            up.tasks.push(NewTask {
                id,
                location: Some(SourceLoc {
                    file: file_of(id).into(),
                    line: Some(1),
                    column: Some(1),
                }),
                fields: Vec::new(),
            });
            let stats = TaskStats {
                created_at: Some(at),
                ..TaskStats::default()
            };
            up.task_stats.push((id, stats));
        }
        up
    }

    fn model(n: u64) -> State {
        let up = update(0, 1..n + 1, |id| {
            if id % 2 == 0 { "src/a.rs" } else { "src/b.rs" }
        });
        let mut st = State::default();
        st.begin_stream();
        st.apply(up);
        st
    }

    #[test]
    fn a_page_holds_the_lens_rows_and_stays_as_built() {
        let mut st = model(6);
        let a = Analysis::run(&st, st.log.now.unwrap(), &Params::default());
        let g = a
            .groups
            .iter()
            .find(|g| g.location.contains("src/a.rs"))
            .expect("group a");
        let gi = a.groups.iter().position(|x| x.key == g.key).unwrap();
        let page = Page::build(Lens::Group(g.key), &a, &[&st]);
        assert_eq!(g.tasks.len(), 3);
        for (ri, r) in g.tasks.iter().enumerate() {
            assert_eq!(page.row(gi, ri).map(|t| t.id), Some(r.id), "row {ri}");
        }
        // Only the open group's tasks are copied.
        assert!(page.row(1 - gi, 0).is_none());
        // The model moves on; the page does not.
        st.console.tasks.clear();
        assert!(page.row(gi, 0).is_some());

        let st = model(6);
        let all = Page::build(Lens::Tasks, &a, &[&st]);
        let listed = (0..a.groups.len())
            .flat_map(|gi| (0..a.groups[gi].tasks.len()).map(move |ri| (gi, ri)))
            .filter(|&(gi, ri)| all.row(gi, ri).is_some())
            .count();
        assert_eq!(listed, 6);
        assert!(Page::build(Lens::Groups, &a, &[&st]).row(0, 0).is_none());
    }
}
