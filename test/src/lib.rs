//! # taskscope-test: a leak check for tokio tests
//!
//! What goleak is to Go tests: a test fails when tasks it spawned are
//! still alive at its end. Adopting it is one line, in place of
//! `#[tokio::test]`:
//!
//! ```no_run
//! #[taskscope_test::test]
//! async fn serves_one_request() {
//!     // … spawns tasks; each must be gone when the test ends
//! }
//! ```
//!
//! At the test's end the check looks at the runtime's live tasks, again and
//! again with short pauses for a grace period (1 s by default: tasks that
//! are ending are not leaks, as goleak retries), and fails the test with a
//! report that names each leaked group the way taskscope's view does: how
//! many tasks, where they were spawned, what they wait on, who spawned
//! them, and the likely cause and the fix when a rule fits:
//!
//! ```text
//! taskscope-test: 3 tasks leaked by this test (still alive 1s after it ended)
//!   2 tasks @ src/server.rs:88:9, blocked on socket read (captured), spawned by tasks of src/server.rs:60:5
//!     waits in: server::handle::{closure} → Read::poll
//!     likely cause: reads with no timeout on connections whose peer went quiet (or never sent)
//!     fix: bound each read: tokio::time::timeout(d, stream.read(&mut buf)), or an idle timer in a select! beside the read that closes the connection
//!   1 task @ src/jobs.rs:12:5, out of reach (spawned without taskscope_agent::spawn or traced: its wait is not known), spawned by the test body (outside any task)
//! ```
//!
//! A wait is known (`captured`) for tasks spawned with
//! [`taskscope_agent::spawn`] or whose future is wrapped in
//! [`taskscope_agent::traced`] (or spawned by its `TracedExecutor`): the
//! task captures its own async stack when asked, on Linux (x86, x86_64,
//! aarch64, s390x). Other tasks are named by place and ancestry, and said
//! to be out of reach rather than guessed at.
//!
//! ## Options
//!
//! ```no_run
//! #[taskscope_test::test(
//!     flavor = "multi_thread", worker_threads = 2, // as #[tokio::test]; default current_thread
//!     ignore = ["src/pool.rs", "my_crate::background"],
//!     grace = "200ms",
//! )]
//! async fn with_options() {}
//! ```
//!
//! - `ignore`: places (matched against the spawn location on path
//!   boundaries: `src/pool.rs`, `pool.rs:88`) and functions (matched
//!   against the frames of the task's captured stack on path-segment
//!   boundaries: `my_crate::background` covers that function, its closures
//!   and its async blocks), as goleak's `IgnoreTopFunction` /
//!   `IgnoreAnyFunction`.
//! - `grace`: how long tasks may take to end.
//! - `shared`: run on the binary's one shared runtime (below); tasks alive
//!   before the test are then never its own.
//!
//! ## Your own runtime: [`Check`]
//!
//! ```no_run
//! # fn main() -> Result<(), taskscope_test::Error> {
//! let check = taskscope_test::Check::new()
//!     .ignore("src/pool.rs")
//!     .grace(std::time::Duration::from_millis(200));
//! let rt = check.runtime_current_thread()?; // or runtime_multi_thread(n), or check.install(&mut builder)
//! rt.block_on(async { /* the test */ });
//! check.verify(&rt)?; // Err(Error::Leaks(report)); verify_none(&rt) panics with it
//! # Ok(())
//! # }
//! ```
//!
//! [`Check::ignore_current`] leaves alone the tasks alive when it is called
//! (goleak's `IgnoreCurrent`), for fixtures set up before the test proper.
//!
//! ## A whole test binary: `shared` and [`main`]
//!
//! `#[taskscope_test::test(shared)]` (or [`Check::run_shared`]) runs the
//! test's body as a task of one runtime shared by the binary's tests, and
//! checks only the tasks that descend from it: the agent's hooks note, at
//! each spawn, which test's task spawned it, so tests that run in parallel
//! never blame each other, and a task whose parent has ended still belongs
//! to its test. The body must be `Send`.
//!
//! goleak's `VerifyTestMain` checks a package once all its tests have run.
//! libtest has no hook at the end of a run, so the binary's own check needs
//! the binary's `main`: with `harness = false`, [`main`] runs your tests
//! and then fails the binary if anything is left on the shared runtime
//! (tasks spawned on it from other threads, which no test owns).
//!
//! ## What it needs, what it costs
//!
//! - `--cfg tokio_unstable` (tokio's task hooks): in `.cargo/config.toml`,
//!   `[build] rustflags = ["--cfg", "tokio_unstable"]`. Without it, this
//!   crate does not compile, and says so.
//! - Captured waits need Linux on x86, x86_64, aarch64 or s390x; elsewhere
//!   the report names places and ancestry, and says that waits are not
//!   known there.
//! - A test that leaks nothing pays for the hooks on its runtime and one
//!   look at its live tasks: +65 µs a test in the profile `cargo test`
//!   builds (45 µs with plain `#[tokio::test]`; PERFORMANCE.md, "The leak
//!   check for tests"). A leak costs the grace period and one round of
//!   captures (a few ms; the first in a process also loads the symbols).
//!
//! ## What it does not see
//!
//! - Tasks of a `LocalSet` (`spawn_local`): tokio's hooks do not cover
//!   them yet.
//! - `spawn_blocking` closures: not tasks the hooks see, and nothing could
//!   cancel them anyway.
//! - On the shared runtime, tasks spawned from outside the test's own tasks
//!   (another thread with a `Handle`): they belong to no test, and only
//!   [`main`]'s check at the binary's end sees them.
#![forbid(unsafe_code)]

include!("gate.rs");

#[cfg(tokio_unstable)]
mod ancestry;
#[cfg(tokio_unstable)]
mod census;
#[cfg(tokio_unstable)]
mod check;
#[cfg(tokio_unstable)]
mod error;
#[cfg(tokio_unstable)]
mod ignore;
#[cfg(tokio_unstable)]
mod report;
#[cfg(tokio_unstable)]
mod shared;

#[cfg(tokio_unstable)]
pub use check::{Check, DEFAULT_GRACE};
#[cfg(tokio_unstable)]
pub use error::Error;
#[cfg(tokio_unstable)]
pub use report::{LeakedGroup, Leaks, Scope, SpawnedBy, Wait};
#[cfg(tokio_unstable)]
pub use shared::{main, shared_runtime};
/// What a captured wait is (`Wait::Captured`), and a rule's advice.
#[cfg(tokio_unstable)]
pub use taskscope_core::analysis::{Reason, types::Advice};
#[cfg(tokio_unstable)]
pub use taskscope_test_macros::test;

/// What `#[taskscope_test::test]` expands to. Not a public API.
#[cfg(tokio_unstable)]
#[doc(hidden)]
pub mod __private {
    use crate::Check;
    use std::future::Future;

    #[track_caller]
    fn fail(e: crate::Error) -> ! {
        panic!("{e}")
    }

    #[track_caller]
    pub fn run_current_thread<T, F: Future<Output = T>>(check: Check, body: F) -> T {
        let rt = match check.runtime_current_thread() {
            Ok(rt) => rt,
            Err(e) => fail(e),
        };
        let out = rt.block_on(body);
        check.verify_none(&rt);
        out
    }

    #[track_caller]
    pub fn run_multi_thread<T, F: Future<Output = T>>(
        check: Check,
        workers: Option<usize>,
        body: F,
    ) -> T {
        let workers = workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let rt = match check.runtime_multi_thread(workers) {
            Ok(rt) => rt,
            Err(e) => fail(e),
        };
        let out = rt.block_on(body);
        check.verify_none(&rt);
        out
    }

    #[track_caller]
    pub fn run_shared<T, F>(check: Check, body: F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        match check.run_shared(body) {
            Ok(out) => out,
            Err(e) => fail(e),
        }
    }
}
