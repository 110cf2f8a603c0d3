//! Which test a task of the shared runtime belongs to: each test's body
//! runs as a root task, and every task spawned from a task inherits its
//! root, at spawn time (so a task whose parent has ended still knows its
//! test). Kept by two more callbacks on the agent's hooks.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use taskscope_agent::hooks::task_id;
use tokio::runtime::TaskMeta;

/// Live tasks of the shared runtime spawned by a test, and the root task
/// (the test body) each descends from.
#[derive(Default)]
pub struct Ancestry {
    root_of: Mutex<HashMap<u64, u64>>,
}

thread_local! {
    /// Set around the spawn of a test body: the task spawned is a root.
    static NEXT_IS_ROOT: Cell<bool> = const { Cell::new(false) };
}

/// While alive, the next task spawned on this thread is a test's root.
pub struct RootSpawn(());

impl RootSpawn {
    pub fn begin() -> RootSpawn {
        NEXT_IS_ROOT.set(true);
        RootSpawn(())
    }
}

impl Drop for RootSpawn {
    fn drop(&mut self) {
        NEXT_IS_ROOT.set(false);
    }
}

impl Ancestry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.root_of.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The spawn hook: runs on the spawning thread, inside the spawn, with
    /// the spawning task (if any) as the current one.
    pub fn spawned(&self, meta: &TaskMeta<'_>) {
        let id = task_id(meta.id());
        if NEXT_IS_ROOT.replace(false) {
            self.map().insert(id, id);
            return;
        }
        let Some(parent) = tokio::task::try_id() else {
            return;
        };
        let parent = task_id(parent);
        let mut map = self.map();
        if let Some(&root) = map.get(&parent) {
            map.insert(id, root);
        }
    }

    pub fn terminated(&self, meta: &TaskMeta<'_>) {
        self.map().remove(&task_id(meta.id()));
    }

    /// The root task `id` descends from, while it is alive.
    pub fn root_of(&self, id: u64) -> Option<u64> {
        self.map().get(&id).copied()
    }
}
