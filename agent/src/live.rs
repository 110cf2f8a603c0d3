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

impl LiveTasks {
    /// Every live task now, in id order: one walk of the record, and a
    /// sort.
    pub fn list(&self) -> Vec<LiveTask> {
        self.0
            .every_task()
            .into_iter()
            .map(|(site, t)| LiveTask {
                id: t.id,
                site,
                parent: t.parent,
                parent_location: t.parent_location,
                reachable: t.reachable,
                running: t.running_since_unix_ns.is_some(),
            })
            .collect()
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
