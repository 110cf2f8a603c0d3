//! The whole-test-binary mode: one hooked runtime for all of a binary's
//! tests, each test's leaks told from the others' by spawn ancestry, and
//! a last check of everything left on it when the binary ends.

use crate::ancestry::{Ancestry, RootSpawn};
use crate::check::Check;
use crate::error::Error;
use crate::report::Scope;
use std::future::Future;
use std::process::{ExitCode, Termination};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use taskscope_agent::Agent;
use taskscope_agent::hooks::{OtherHooks, task_id};
use tokio::runtime::{Builder, Runtime};

/// The binary's shared runtime and what watches it.
struct Shared {
    rt: Runtime,
    agent: Agent,
    ancestry: Arc<Ancestry>,
}

static SHARED: OnceLock<Result<Shared, Arc<std::io::Error>>> = OnceLock::new();

fn build() -> Result<Shared, Arc<std::io::Error>> {
    let agent = Agent::with_min_interval(Duration::ZERO);
    let ancestry = Arc::new(Ancestry::default());
    let mut b = Builder::new_multi_thread();
    b.enable_all().thread_name("taskscope-test-shared");
    let (on_spawn, on_end) = (ancestry.clone(), ancestry.clone());
    agent.install_hooks_with(
        &mut b,
        OtherHooks {
            on_spawn: Some(Box::new(move |m| on_spawn.spawned(m))),
            on_terminate: Some(Box::new(move |m| on_end.terminated(m))),
            ..OtherHooks::default()
        },
    );
    let rt = b.build().map_err(Arc::new)?;
    Ok(Shared {
        rt,
        agent,
        ancestry,
    })
}

fn shared() -> Result<&'static Shared, Error> {
    SHARED
        .get_or_init(build)
        .as_ref()
        .map_err(|e| Error::Runtime(e.clone()))
}

/// The test binary's shared runtime (`multi_thread`, a worker per core,
/// every driver), made on first use: for fixtures its tests share. Tasks
/// spawned on it from outside a test's tasks belong to no test; the
/// binary's last check ([`main`]) sees them.
pub fn shared_runtime() -> Result<&'static Runtime, Error> {
    shared().map(|s| &s.rt)
}

impl Check {
    /// Runs `body` as a task of the binary's shared runtime and checks the
    /// tasks it spawned, and theirs, down the generations: tests that run
    /// at once on the shared runtime each see only their own (what
    /// `#[taskscope_test::test(shared)]` does). Tasks alive before the test
    /// are not its own. A panic of the body is the test's, resumed here.
    ///
    /// A task spawned from outside the test's tasks (another thread with a
    /// `Handle`) belongs to no test: [`main`] sees it at the binary's end.
    #[track_caller]
    pub fn run_shared<F>(&self, body: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let shared = shared()?;
        let handle = {
            let _root = RootSpawn::begin();
            // Spawned from here, the body's task counts at the caller's
            // line (the test), not this crate's.
            shared.rt.spawn(body)
        };
        let root = task_id(handle.id());
        let out = match shared.rt.block_on(handle) {
            Ok(out) => out,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => return Err(Error::Cancelled),
            },
        };
        let ancestry = &shared.ancestry;
        let owned =
            |t: &crate::census::LiveTask| t.id != root && ancestry.root_of(t.id) == Some(root);
        shared
            .rt
            .block_on(self.settle(&shared.agent, owned, Scope::Test, Some(root)))?;
        Ok(out)
    }

    /// [`main`], with this check's ignores and grace period.
    pub fn main<T: Termination>(&self, tests: impl FnOnce() -> T) -> ExitCode {
        let code = tests().report();
        // No test ran on the shared runtime: nothing to check.
        let Some(Ok(shared)) = SHARED.get() else {
            return code;
        };
        let all = |_: &crate::census::LiveTask| true;
        match shared
            .rt
            .block_on(self.settle(&shared.agent, all, Scope::Binary, None))
        {
            Ok(()) => code,
            Err(leaks) => {
                eprintln!("{leaks}");
                ExitCode::FAILURE
            }
        }
    }
}

/// goleak's `VerifyTestMain`, for a test binary with `harness = false`:
/// runs `tests` (your harness: plain calls, or `libtest-mimic`), then
/// fails the binary when tasks are still alive on the shared runtime after
/// the grace period, with the report on stderr. Each test run through
/// [`Check::run_shared`] is checked on its own as well; this catches what
/// no test owns (tasks spawned on the shared runtime from other threads)
/// and what a test's own check was told to leave.
///
/// ```no_run
/// // tests/leaks.rs, with `[[test]] name = "leaks", harness = false`
/// fn main() -> std::process::ExitCode {
///     taskscope_test::main(|| {
///         let check = taskscope_test::Check::new();
///         check.run_shared(async { /* one test */ }).expect("no leaks");
///         check.run_shared(async { /* another */ }).expect("no leaks");
///     })
/// }
/// ```
pub fn main<T: Termination>(tests: impl FnOnce() -> T) -> ExitCode {
    Check::new().main(tests)
}
