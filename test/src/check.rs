//! A check: its options (places and functions to ignore, the grace
//! period), the runtime it watches, and the grace loop that tells a leaked
//! task from one that is ending.

use crate::census::{self, Captures, LiveTask};
use crate::error::Error;
use crate::ignore::Ignore;
use crate::report::{self, Leaks, Scope};
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use taskscope_agent::Agent;
use tokio::runtime::{Builder, Runtime};

/// How long tasks may take to end after the test, by default (goleak's
/// retries add up to about as much).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// The longest pause between two looks during the grace period (the
/// first is 1 ms, then each doubles).
const MAX_PAUSE: Duration = Duration::from_millis(50);

/// A leak check: what to leave alone and how long to wait, and, once its
/// hooks are installed on a runtime, that runtime's tasks.
///
/// ```no_run
/// # fn main() -> Result<(), taskscope_test::Error> {
/// use std::time::Duration;
/// let check = taskscope_test::Check::new()
///     .ignore("src/pool.rs")
///     .grace(Duration::from_millis(200));
/// let rt = check.runtime_current_thread()?;
/// rt.block_on(async {
///     // the test
/// });
/// check.verify(&rt)?;
/// # Ok(())
/// # }
/// ```
pub struct Check {
    ignore: Ignore,
    grace: Duration,
    /// Made when the hooks are installed (a check that never watches a
    /// runtime, as the shared mode's, makes none).
    agent: OnceLock<Agent>,
    /// Tasks alive when [`Check::ignore_current`] was called.
    before: Mutex<HashSet<u64>>,
}

impl Default for Check {
    fn default() -> Self {
        Check::new()
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("ignore", &self.ignore.patterns())
            .field("grace", &self.grace)
            .field("installed", &self.agent.get().is_some())
            .finish()
    }
}

impl Check {
    /// A check with no ignores and the default grace period (1 s).
    pub fn new() -> Check {
        Check {
            ignore: Ignore::default(),
            grace: DEFAULT_GRACE,
            agent: OnceLock::new(),
            before: Mutex::default(),
        }
    }

    /// Leaves alone the tasks spawned at a place or whose captured stack
    /// passes through a function (goleak's `IgnoreTopFunction` /
    /// `IgnoreAnyFunction`). `pattern` is matched against the spawn
    /// location on path boundaries (`src/pool.rs`, `pool.rs:88`) and
    /// against the stack's function paths on segment boundaries
    /// (`my_crate::background` matches that function, its closures and
    /// async blocks; `background::run` matches `my_crate::background::run`).
    /// Functions need the task's captured stack: only tasks spawned
    /// through `taskscope_agent::spawn` or `traced` have one, on Linux, and
    /// it holds the frames down to the tokio wait (a task waiting on a
    /// future outside tokio has none to match: name its place instead).
    pub fn ignore(mut self, pattern: impl AsRef<str>) -> Check {
        self.ignore.add(pattern.as_ref());
        self
    }

    /// How long the test's tasks may take to end after it (default 1 s):
    /// the check looks again and again, with short pauses, until none is
    /// left or this has passed. Tasks that are ending are not leaks.
    pub fn grace(mut self, grace: Duration) -> Check {
        self.grace = grace;
        self
    }

    /// The grace period.
    pub fn grace_period(&self) -> Duration {
        self.grace
    }

    /// The ignore patterns.
    pub fn ignored(&self) -> &[String] {
        self.ignore.patterns()
    }

    fn agent(&self) -> &Agent {
        self.agent
            .get_or_init(|| Agent::with_min_interval(Duration::ZERO))
    }

    /// Installs the check's hooks on a runtime builder of your own, and
    /// enables its time driver (the grace period's pauses need it). One
    /// check watches one runtime. Replaces hook callbacks set on the
    /// builder before.
    pub fn install(&self, builder: &mut Builder) {
        builder.enable_time();
        self.agent().install_hooks(builder);
    }

    /// A `current_thread` runtime with every driver, watched by this check
    /// (what `#[tokio::test]` builds).
    pub fn runtime_current_thread(&self) -> Result<Runtime, Error> {
        let mut b = Builder::new_current_thread();
        b.enable_all();
        self.install(&mut b);
        b.build().map_err(|e| Error::Runtime(Arc::new(e)))
    }

    /// A `multi_thread` runtime with `workers` worker threads (at least
    /// one) and every driver, watched by this check.
    pub fn runtime_multi_thread(&self, workers: usize) -> Result<Runtime, Error> {
        let mut b = Builder::new_multi_thread();
        b.enable_all().worker_threads(workers.max(1));
        self.install(&mut b);
        b.build().map_err(|e| Error::Runtime(Arc::new(e)))
    }

    /// Leaves alone the tasks alive now on the watched runtime (goleak's
    /// `IgnoreCurrent`): call it after the fixtures a test does not own
    /// are up.
    pub fn ignore_current(&self) {
        let Some(r) = self.agent.get().and_then(Agent::recorder) else {
            return;
        };
        let ids = census::live_tasks(&r).into_iter().map(|t| t.id);
        self.before
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ids);
    }

    /// Fails when tasks of the watched runtime `rt` are still alive once
    /// the grace period has passed (those alive at [`Check::ignore_current`]
    /// and the ignored ones aside), with the report naming them. Call it
    /// after `rt.block_on(test)`, outside any runtime.
    pub fn verify(&self, rt: &Runtime) -> Result<(), Error> {
        let agent = match self.agent.get() {
            Some(a) if a.recorder().is_some() => a,
            _ => return Err(Error::NotInstalled),
        };
        let before = self
            .before
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let owned = |t: &LiveTask| !before.contains(&t.id);
        rt.block_on(self.settle(agent, owned, Scope::Test, None))
            .map_err(Error::Leaks)
    }

    /// [`Check::verify`], panicking with the report: the test fails, as
    /// with goleak's `VerifyNone`.
    #[track_caller]
    pub fn verify_none(&self, rt: &Runtime) {
        if let Err(e) = self.verify(rt) {
            panic!("{e}");
        }
    }

    /// Runs `body` on a new `current_thread` runtime watched by this check,
    /// then verifies: what `#[taskscope_test::test]` does, as a function.
    pub fn run<F: Future>(&self, body: F) -> Result<F::Output, Error> {
        let rt = self.runtime_current_thread()?;
        let out = rt.block_on(body);
        self.verify(&rt)?;
        Ok(out)
    }

    /// The grace loop, on the watched runtime: looks at the tasks `owned`
    /// (minus the ignored ones) until none is left or the grace period has
    /// passed, then names those left. `root`: the test body's task on a
    /// shared runtime.
    pub(crate) async fn settle(
        &self,
        agent: &Agent,
        owned: impl Fn(&LiveTask) -> bool,
        scope: Scope,
        root: Option<u64>,
    ) -> Result<(), Leaks> {
        let Some(recorder) = agent.recorder() else {
            return Ok(());
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        // The last captures taken for function ignores, and of which tasks.
        let mut caps: Option<(Vec<u64>, Captures)> = None;
        loop {
            let mut left: Vec<LiveTask> = census::live_tasks(&recorder)
                .into_iter()
                .filter(|t| owned(t) && !self.ignore.place(&t.site.name()))
                .collect();
            if !left.is_empty() && self.ignore.has_functions() {
                let mut ids: Vec<u64> = left.iter().map(|t| t.id).collect();
                ids.sort_unstable();
                if caps.as_ref().is_none_or(|(seen, _)| *seen != ids) {
                    caps = Some((ids, census::captures(agent).await));
                }
                if let Some((_, Ok(m))) = &caps {
                    left.retain(|t| !m.get(&t.id).is_some_and(|tr| self.ignore.stack(tr)));
                }
            }
            if left.is_empty() {
                return Ok(());
            }
            let elapsed = started.elapsed();
            if elapsed >= self.grace {
                return match self.name(agent, &recorder, left, scope, root).await {
                    Some(leaks) => Err(leaks),
                    None => Ok(()),
                };
            }
            tokio::time::sleep(pause.min(self.grace - elapsed)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// The report on the tasks `left`: their waits captured now, those
    /// that ended meanwhile left out (`None`: all of them ended).
    async fn name(
        &self,
        agent: &Agent,
        recorder: &taskscope_agent::hooks::Recorder,
        left: Vec<LiveTask>,
        scope: Scope,
        root: Option<u64>,
    ) -> Option<Leaks> {
        let caps = census::captures(agent).await;
        let ids: HashSet<u64> = left.iter().map(|t| t.id).collect();
        let left: Vec<LiveTask> = census::live_tasks(recorder)
            .into_iter()
            .filter(|t| ids.contains(&t.id))
            .filter(|t| match &caps {
                Ok(m) => !m.get(&t.id).is_some_and(|tr| self.ignore.stack(tr)),
                Err(_) => true,
            })
            .collect();
        (!left.is_empty()).then(|| report::build(&left, &caps, scope, self.grace, root))
    }
}
