//! Where a task counts: its spawn location, or, when that line only spawns
//! on someone else's behalf (a generic executor), the line together with
//! the site of the task that spawned it.
//!
//! A generic executor's line is not a place: hyper-util's
//! `TokioExecutor::execute` spawns every client connection and HTTP/2
//! stream of every client and server that uses it, so its one group would
//! merge a leaking client's connections with a healthy one's. Such a line
//! is split by spawner: one [`Site`] per (line, spawning task's site), so
//! "connections opened by the tasks of `src/fetch.rs:40`" and "by those of
//! `src/health.rs:12`" are two groups, each with its own counts and
//! history. The lines split are hyper-util's and hyper's executor lines,
//! the agent's own source (which never names a task's place: see
//! [`spawn_as`]), the lines the agent's executor and servers spawn for, and
//! the lines a service names in `TASKSCOPE_SPLIT_SITES`.

use std::cell::Cell;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counts for one place tasks are spawned (see the module doc), made once
/// and kept for the process's life (there are as many as the code has
/// spawn sites, times the spawners of its generic lines).
pub struct Site {
    pub location: &'static Location<'static>,
    /// When `location` is split by spawner: the spawn location of the
    /// tasks that spawned these (none: spawned outside any task).
    pub spawner: Option<&'static Location<'static>>,
    /// Whether `location` is split by spawner (then `spawner` says by
    /// which, `None` for tasks spawned outside any task).
    pub split: bool,
    /// Its counters, kept by the fold (one writer at a time, under the
    /// fold lock; readers fold first).
    pub(super) counts: Counts,
}

/// Age buckets per group: under 1 s, then powers of two up to 2^18 s
/// (three days), then older.
pub const AGE_BUCKETS: usize = 20;

pub(super) fn age_bucket(age_ns: u64) -> usize {
    let secs = age_ns / 1_000_000_000;
    if secs == 0 {
        0
    } else {
        ((64 - secs.leading_zeros()) as usize).min(AGE_BUCKETS - 1)
    }
}

#[derive(Default)]
pub(super) struct Counts {
    pub(super) spawned: AtomicU64,
    pub(super) terminated: AtomicU64,
    /// Summed lifetimes of the terminated tasks.
    pub(super) lifetime_ns: AtomicU64,
    /// Summed time in poll of the terminated tasks.
    pub(super) busy_ns: AtomicU64,
    /// The terminated tasks by lifetime, in the age buckets: how long
    /// this site's tasks can live, tail included (a mean hides the tail).
    pub(super) lifetimes: [AtomicU64; AGE_BUCKETS],
}

impl Site {
    pub(super) fn new(
        location: &'static Location<'static>,
        split: bool,
        spawner: Option<&'static Location<'static>>,
    ) -> Site {
        Site {
            location,
            spawner: if split { spawner } else { None },
            split,
            counts: Counts::default(),
        }
    }

    fn read(&self, f: impl Fn(&Counts) -> &AtomicU64) -> u64 {
        f(&self.counts).load(Ordering::Relaxed)
    }

    /// Tasks spawned here since the recorder began.
    pub(crate) fn spawned(&self) -> u64 {
        self.read(|s| &s.spawned)
    }

    pub(crate) fn terminated(&self) -> u64 {
        self.read(|s| &s.terminated)
    }

    /// Summed lifetimes of the terminated tasks.
    pub(crate) fn lifetime_ns(&self) -> u64 {
        self.read(|s| &s.lifetime_ns)
    }

    /// The terminated tasks by lifetime (see [`AGE_BUCKETS`]).
    pub(crate) fn lifetimes(&self) -> [u64; AGE_BUCKETS] {
        std::array::from_fn(|i| self.read(|s| &s.lifetimes[i]))
    }

    /// Summed time in poll of the terminated tasks.
    pub(crate) fn terminated_busy_ns(&self) -> u64 {
        self.read(|s| &s.busy_ns)
    }

    /// The place's name as `/metrics`, the task profile and the viewer
    /// show it: `file:line:col`, and for a split line ` ← ` and the
    /// spawners' location (`taskscope_proto::names::split_location`).
    pub fn name(&self) -> String {
        let at = self.location.to_string();
        match (self.split, self.spawner) {
            (true, Some(s)) => taskscope_proto::names::split_location(&at, &s.to_string()),
            (true, None) => taskscope_proto::names::split_location(&at, ""),
            (false, _) => at,
        }
    }

    /// Whether this is the place a client names: `location`, and for a
    /// split line (`split`) its `spawner`.
    pub(crate) fn is(
        &self,
        location: (&str, u32, u32),
        split: bool,
        spawner: Option<(&str, u32, u32)>,
    ) -> bool {
        let parts = |l: &'static Location<'static>| (l.file(), l.line(), l.column());
        parts(self.location) == location
            && self.split == split
            && (!split || self.spawner.map(parts) == spawner)
    }
}

thread_local! {
    /// Set by [`spawn_as`] around one spawn: the location the hooks
    /// record for the task spawned inside, and whether to split it by
    /// spawner.
    static SPAWN_AS: Cell<Option<(&'static Location<'static>, bool)>> = const { Cell::new(None) };
}

/// Runs `spawn` (which spawns one task) so that the hooks record that task
/// at `at` rather than where `tokio::spawn` was called (the agent's own
/// source), split by spawner when `split`. The hooks' spawn callback runs
/// inside `tokio::spawn`, on this thread, and takes the value.
pub(crate) fn spawn_as<R>(
    at: &'static Location<'static>,
    split: bool,
    spawn: impl FnOnce() -> R,
) -> R {
    struct Restore(Option<(&'static Location<'static>, bool)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            SPAWN_AS.set(self.0);
        }
    }
    let _restore = Restore(SPAWN_AS.replace(Some((at, split))));
    spawn()
}

/// The location (and whether it is split) a spawn at `at` records: the one
/// [`spawn_as`] set, taken once, else `at`.
pub(super) fn spawned_as(at: &'static Location<'static>) -> (&'static Location<'static>, bool) {
    SPAWN_AS.take().unwrap_or((at, false))
}

/// The source files of this crate: no task is ever placed at one of its
/// lines (a task spawned there on someone's behalf goes through
/// [`spawn_as`]; should one slip through, its line is split by spawner).
fn is_agent_file(file: &str) -> bool {
    const HERE: &str = file!();
    let root = HERE.strip_suffix("hooks/site.rs").unwrap_or(HERE);
    file.starts_with(root)
}

/// Whether `file` is `rest` inside crate `krate` from the registry or a
/// git checkout (`…/hyper-util-0.1.21/src/rt/tokio.rs`, or a vendored
/// `…/hyper-util/src/rt/tokio.rs`).
fn in_crate(file: &str, krate: &str, rest: &str) -> bool {
    let Some(dir) = file.strip_suffix(rest) else {
        return false;
    };
    let dir = dir.strip_suffix('/').unwrap_or(dir);
    let last = dir.rsplit('/').next().unwrap_or(dir);
    last == krate
        || last
            .strip_prefix(krate)
            .and_then(|v| v.strip_prefix('-'))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

/// The lines that spawn for others and are split by spawner: the
/// executors of hyper-util (`TokioExecutor`) and hyper (its executor
/// bounds, where HTTP/2 streams are handed to an executor), the agent's
/// own source, and the service's own (`TASKSCOPE_SPLIT_SITES`).
#[derive(Clone, Debug, Default)]
pub struct SplitRules {
    /// `FILE` or `FILE:LINE`, `FILE` matched as a path suffix.
    own: Vec<(String, Option<u32>)>,
}

impl SplitRules {
    /// Comma-separated `FILE` or `FILE:LINE` (e.g.
    /// `src/spawn.rs,src/pool.rs:88`), for a service's own spawn helpers
    /// that only call `tokio::spawn` (`TASKSCOPE_SPLIT_SITES`, read by the
    /// agent's builder).
    pub fn parse(spec: &str) -> SplitRules {
        let own = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s.rsplit_once(':') {
                Some((f, l)) if l.parse::<u32>().is_ok() => (f.to_string(), l.parse().ok()),
                _ => (s.to_string(), None),
            })
            .collect();
        SplitRules { own }
    }

    /// Whether tasks spawned at `at` are counted per spawner.
    pub fn splits(&self, at: &Location<'_>) -> bool {
        self.splits_line(at.file(), at.line())
    }

    fn splits_line(&self, file: &str, line: u32) -> bool {
        in_crate(file, "hyper-util", "src/rt/tokio.rs")
            || in_crate(file, "hyper", "src/rt/bounds.rs")
            || is_agent_file(file)
            || self
                .own
                .iter()
                .any(|(f, l)| file.ends_with(f.as_str()) && l.is_none_or(|l| l == line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_in_power_of_two_buckets() {
        let s = 1_000_000_000;
        assert_eq!(age_bucket(0), 0);
        assert_eq!(age_bucket(s - 1), 0);
        assert_eq!(age_bucket(s), 1);
        assert_eq!(age_bucket(3 * s), 2);
        assert_eq!(age_bucket(4 * s), 3);
        assert_eq!(age_bucket(u64::MAX), AGE_BUCKETS - 1);
    }

    #[test]
    fn executors_lines_are_known_in_registry_and_vendored_paths() {
        let reg = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hyper-util-0.1.21/src/rt/tokio.rs";
        assert!(in_crate(reg, "hyper-util", "src/rt/tokio.rs"));
        assert!(in_crate(
            "vendor/hyper-util/src/rt/tokio.rs",
            "hyper-util",
            "src/rt/tokio.rs"
        ));
        assert!(in_crate(
            "hyper-1.12.0/src/rt/bounds.rs",
            "hyper",
            "src/rt/bounds.rs"
        ));
        // Not hyper's: another crate whose name starts the same, or
        // another file.
        assert!(!in_crate(
            "hyper-util-0.1.21/src/rt/bounds.rs",
            "hyper",
            "src/rt/bounds.rs"
        ));
        assert!(!in_crate(
            "tokio-1.54.1/src/rt/tokio.rs",
            "hyper-util",
            "src/rt/tokio.rs"
        ));
        assert!(!in_crate(
            "src/rt/tokio.rs",
            "hyper-util",
            "src/rt/tokio.rs"
        ));
    }

    #[test]
    fn a_service_names_its_own_helpers() {
        let rules = SplitRules::parse(" src/spawn.rs , src/pool.rs:88,,");
        assert!(rules.splits_line("src/spawn.rs", 3));
        assert!(rules.splits_line("/home/me/app/src/spawn.rs", 3));
        assert!(rules.splits_line("src/pool.rs", 88));
        assert!(!rules.splits_line("src/pool.rs", 89));
        assert!(!rules.splits_line("src/server.rs", 88));
        assert!(!SplitRules::default().splits_line("src/spawn.rs", 3));
        assert_eq!(
            rules.own,
            vec![
                ("src/spawn.rs".to_string(), None),
                ("src/pool.rs".to_string(), Some(88))
            ]
        );
    }

    /// The agent's own lines split: nothing is placed in its source.
    #[test]
    fn the_agents_own_lines_split() {
        assert!(SplitRules::default().splits(Location::caller()));
    }
}
