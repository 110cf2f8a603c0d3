//! A runtime's live tasks as the agent's hooks record them, read in the
//! process itself: what a tool running beside the service's code needs of
//! them (the leak check, `taskscope-test`, reads them here).

use crate::Agent;
use crate::hooks::Recorder;
use std::panic::Location;

pub use crate::hooks::Site;

/// One live task.
#[derive(Clone)]
pub struct LiveTask {
    /// tokio's task id, as the number it displays (and the wire carries):
    /// see [`task_id`].
    pub id: u64,
    /// Where it counts: its spawn location, and its spawning task's for a
    /// line split by spawner (see [`Site::name`]).
    pub site: &'static Site,
    /// The task that spawned it (0: spawned outside any task).
    pub parent: u64,
    /// Where that task was spawned.
    pub parent_location: Option<&'static Location<'static>>,
    /// Whether its wait can be captured: spawned through the agent
    /// ([`spawn`](crate::spawn), [`traced`](crate::traced), the drop-in
    /// servers).
    pub reachable: bool,
    /// Inside a poll right now.
    pub running: bool,
}

impl std::fmt::Debug for LiveTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTask")
            .field("id", &self.id)
            .field("site", &self.site.name())
            .field("parent", &self.parent)
            .field("parent_location", &self.parent_location)
            .field("reachable", &self.reachable)
            .field("running", &self.running)
            .finish()
    }
}

/// tokio's task id as the number it displays, which [`LiveTask::id`],
/// [`LiveTask::parent`] and the wire's task ids carry.
pub fn task_id(id: tokio::task::Id) -> u64 {
    crate::hooks::task_id(id)
}

/// The live tasks of the runtimes an agent's hooks record (see
/// [`Agent::live_tasks`]). Cheap to clone.
#[derive(Clone)]
pub struct LiveTasks(Recorder);

/// Tasks read from the record at a time (each page is one walk of the
/// record under its lock).
const PAGE: usize = 4096;

impl LiveTasks {
    /// Every live task now, by spawn location. Made for a test's tasks
    /// (hundreds, thousands): each page of a place's 4 096 tasks walks the
    /// whole record, so a place of a million tasks would be walked some
    /// 250 times.
    pub fn list(&self) -> Vec<LiveTask> {
        let parts = |l: &'static Location<'static>| (l.file(), l.line(), l.column());
        let mut out = Vec::new();
        for g in self.0.groups().groups.iter().filter(|g| g.live > 0) {
            let site = g.site;
            let mut after = 0;
            loop {
                let page = self.0.tasks(
                    parts(site.location),
                    site.split,
                    site.spawner.map(parts),
                    after,
                    PAGE,
                );
                out.extend(page.tasks.iter().map(|t| LiveTask {
                    id: t.id,
                    site,
                    parent: t.parent,
                    parent_location: t.parent_location,
                    reachable: t.reachable,
                    running: t.running_since_unix_ns.is_some(),
                }));
                match page.next {
                    Some(next) => after = next,
                    None => break,
                }
            }
        }
        out
    }
}

impl Agent {
    /// The live tasks its hooks record, once
    /// [installed](Agent::install_hooks) on a runtime builder; `None`
    /// before.
    pub fn live_tasks(&self) -> Option<LiveTasks> {
        self.recorder().map(LiveTasks)
    }
}
