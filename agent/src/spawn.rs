//! Spawning tasks whose waits the agent can capture, each placed at a line
//! that means something to the service's authors: their own call, or the
//! library line that spawned it on their behalf, never the agent's source.

use crate::capture::traced;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `tokio::spawn`, with the task's waits visible to the agent. The spawn
/// location is the caller's, as with `tokio::spawn`.
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(traced(future))
}

/// Spawns `future`, wrapped for captures, placed at `at`: the task counts
/// at `at` (split by spawner when `split`), and the tasks it spawns count
/// `at` as their spawner's location. For the agent's servers and executor,
/// whose own `tokio::spawn` line would otherwise be every such task's.
pub(crate) fn spawn_at<F>(
    at: &'static Location<'static>,
    split: bool,
    future: F,
) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let placed = Placed {
        at,
        inner: traced(future),
    };
    crate::hooks::spawn_as(at, split, || tokio::spawn(placed))
}

pin_project_lite::pin_project! {
    /// A future polled as a task placed at `at` (see `spawn_at`).
    struct Placed<F> {
        at: &'static Location<'static>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Placed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        crate::hooks::polling_as(this.at, || inner.poll(cx))
    }
}

/// An executor for hyper (`hyper::server::conn::http2::Builder::new`,
/// `hyper_util::client::legacy::Client::builder`, `hyper_util`'s
/// `server::conn::auto::Builder`, tonic's `Endpoint::executor`) that
/// spawns its connection and stream tasks wrapped for captures.
///
/// Each task counts at the line that handed it to the executor when hyper
/// calls it directly (its HTTP/2 streams: `hyper-…/src/rt/bounds.rs`),
/// else at the line that made the executor (hyper-util's client calls it
/// through a trait object), and either way split by the spawning task's
/// site: one client used from two places is two groups, each saying where
/// its connections came from.
///
/// ```no_run
/// # fn main() {
/// let client = hyper_util::client::legacy::Client::builder(taskscope_agent::TracedExecutor::new())
///     .build_http::<String>();
/// # let _ = client;
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TracedExecutor {
    at: &'static Location<'static>,
}

impl TracedExecutor {
    /// An executor whose tasks count at the line that calls this, when
    /// hyper does not say which of its lines spawned them.
    #[track_caller]
    pub fn new() -> TracedExecutor {
        TracedExecutor::at(Location::caller())
    }

    pub(crate) fn at(at: &'static Location<'static>) -> TracedExecutor {
        TracedExecutor { at }
    }
}

impl Default for TracedExecutor {
    #[track_caller]
    fn default() -> Self {
        TracedExecutor::new()
    }
}

impl<F> hyper::rt::Executor<F> for TracedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    #[track_caller]
    fn execute(&self, future: F) {
        // Called by hyper's own generic code, the caller is hyper's line;
        // through a trait object (hyper-util's client), it is this
        // function's own: then the executor's maker's.
        let caller = Location::caller();
        let at = if caller.file() == file!() {
            self.at
        } else {
            caller
        };
        let placed = traced(future);
        crate::hooks::spawn_as(at, true, || tokio::spawn(placed));
    }
}
