//! The waits protocol: asking tasks for captures, and the reply.
//!
//! A request for waits asks a round of captures (unless one was asked less
//! than the minimum interval ago), waits a bounded time for the tasks asked
//! to answer on their own next poll, and replies with every capture that
//! still holds, each distinct stack once, named off the service's workers.
//! Nothing here pauses the runtime: a task that does not answer in time
//! (its worker is busy) keeps its last capture, or none. One request is
//! served at a time; the next fails at once ([`WaitsError::Busy`]) rather
//! than queue. On the wire this is v1's `TaskDumps` service (`Dump`,
//! `DumpReply`), kept for compatibility.

use crate::hooks::{self, Budget, Recorder, TaskWait};
use crate::proto;
use crate::resolve::Resolver;
use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The shortest and longest time a request for waits may wait for the
/// tasks it asked to answer, whatever a client asks.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(2);

/// Most tasks listed in one reply (the rest are counted as unlisted).
const MAX_REPLY_TASKS: usize = 200_000;

/// Why no waits were returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitsError {
    /// Another client's request is being served (or the walk of one that
    /// gave up still runs): ask again shortly. Served as gRPC
    /// `RESOURCE_EXHAUSTED`, which taskscope retries.
    #[error("another client's request for waits is being served: ask again in a moment")]
    Busy,
    /// This build cannot capture waits, and why (another platform, no
    /// `--cfg tokio_unstable`).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The agent's walk of the tasks ended without a reply (it panicked).
    #[error("the agent's walk of the tasks failed: {0}")]
    Walk(#[source] tokio::task::JoinError),
}

/// Whether this build can capture tasks' stacks, and if not, why.
pub(crate) fn support() -> Result<(), &'static str> {
    #[cfg(taskdumps)]
    {
        Ok(())
    }
    #[cfg(not(taskdumps))]
    {
        Err(
            "capturing waits needs Linux on x86, x86_64, aarch64 or s390x and a build with --cfg tokio_unstable",
        )
    }
}

/// Whose waits to ask for: the hooks source's tasks, else (console mode)
/// the wrapped tasks the capture registry knows by id.
pub(crate) struct Target {
    pub(crate) recorder: Option<Recorder>,
    /// console-subscriber is served beside the agent and counts the
    /// wakers the agent holds: the reply lists those tasks.
    pub(crate) holds_wakers: bool,
}

/// The protocol's state: one request at a time, the captures' budget and
/// interval, the names of the stacks, and what was answered.
pub(crate) struct Waits {
    budget: Budget,
    /// Least time between two capture rounds a client can cause.
    min_interval: Duration,
    /// One request at a time; when the last round was asked.
    last: tokio::sync::Mutex<Option<Instant>>,
    /// Held by a request's walk on a blocking thread (asking the captures,
    /// collecting the reply), not by the request: a client that gives up
    /// mid-walk frees `last`, and the next request is busy until the walk
    /// it left behind ends, instead of queueing another.
    walk: Arc<Semaphore>,
    resolver: Arc<Resolver>,
    replies: AtomicU64,
    refused: AtomicU64,
}

impl Waits {
    pub(crate) fn new(budget: Budget, min_interval: Duration) -> Waits {
        Waits {
            budget,
            min_interval,
            last: tokio::sync::Mutex::new(None),
            walk: Arc::new(Semaphore::new(1)),
            resolver: Arc::default(),
            replies: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    pub(crate) fn budget(&self) -> Budget {
        self.budget
    }

    pub(crate) fn min_interval(&self) -> Duration {
        self.min_interval
    }

    /// The names of the captured stacks.
    pub(crate) fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Requests answered, and refused.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.replies.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Asks a round of captures of `target`'s tasks, waits up to `timeout`
    /// (clamped to 100 ms..2 s) for them, and returns every capture that
    /// holds; counted as answered or refused.
    pub(crate) async fn reply(
        &self,
        target: Target,
        timeout: Duration,
    ) -> Result<proto::DumpReply, WaitsError> {
        let res = self.reply_inner(target, timeout).await;
        let counter = match &res {
            Ok(_) => &self.replies,
            Err(_) => &self.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        res
    }

    async fn reply_inner(
        &self,
        target: Target,
        timeout: Duration,
    ) -> Result<proto::DumpReply, WaitsError> {
        support().map_err(WaitsError::Unsupported)?;
        let Ok(mut last) = self.last.try_lock() else {
            return Err(WaitsError::Busy);
        };
        let started = Instant::now();
        self.round(&mut last, target.recorder.clone(), timeout)
            .await?;
        let slot = self.walk_slot()?;
        let resolver = self.resolver.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            collect(&target, &resolver, started)
        })
        .await
        .map_err(WaitsError::Walk)
    }

    /// For a task profile's scrape: a round of captures of `recorder`'s
    /// tasks, as a request for waits would ask (bounded by the same
    /// interval and budget), waiting up to `wait`; skipped while another
    /// client's request is served, or where captures are not supported.
    pub(crate) async fn refresh(&self, recorder: Recorder, wait: Duration) {
        if support().is_err() {
            return;
        }
        if let Ok(mut last) = self.last.try_lock() {
            let _ = self.round(&mut last, Some(recorder), wait).await;
        }
    }

    /// Asks a round of captures, unless one was asked less than the
    /// minimum interval ago (`last`, held by the caller: one request at a
    /// time), and waits up to `timeout` (clamped) for the tasks asked to
    /// answer.
    async fn round(
        &self,
        last: &mut Option<Instant>,
        recorder: Option<Recorder>,
        timeout: Duration,
    ) -> Result<(), WaitsError> {
        let timeout = timeout.clamp(MIN_TIMEOUT, MAX_TIMEOUT);
        let started = Instant::now();
        if last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return Ok(());
        }
        let slot = self.walk_slot()?;
        *last = Some(started);
        let budget = self.budget;
        let asked = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match recorder {
                Some(r) => r.request_captures(budget),
                None => crate::capture::registry::request(budget.total),
            }
        })
        .await
        .map_err(WaitsError::Walk)?;
        while asked.iter().any(|s| s.wanted()) && started.elapsed() < timeout {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// The slot of a request's walk, or busy while a walk (one a client
    /// gave up on, too) still runs.
    fn walk_slot(&self) -> Result<OwnedSemaphorePermit, WaitsError> {
        self.walk
            .clone()
            .try_acquire_owned()
            .map_err(|_| WaitsError::Busy)
    }
}

/// Every capture that holds, as the wire's reply: each distinct stack
/// once, resolved to names here (off the service's workers). Under the
/// hooks source each task comes with its spawn location.
fn collect(target: &Target, resolver: &Resolver, started: Instant) -> proto::DumpReply {
    // Console mode: the wrapped tasks, whose waker the agent holds while
    // no capture of them holds (console-subscriber counts it).
    let (waits, agent_wakers) = match &target.recorder {
        Some(r) if target.holds_wakers => (r.waits(MAX_REPLY_TASKS), r.wrapped(MAX_REPLY_TASKS)),
        Some(r) => (r.waits(MAX_REPLY_TASKS), Vec::new()),
        None => (
            crate::capture::registry::waits(MAX_REPLY_TASKS),
            crate::capture::registry::wrapped(MAX_REPLY_TASKS),
        ),
    };
    let round = started.elapsed();
    let t = Instant::now();
    let mut traces: Vec<proto::Trace> = Vec::new();
    let mut trace_of: HashMap<u32, u32> = HashMap::new();
    let mut locations: Vec<proto::Loc> = Vec::new();
    let mut loc_of: HashMap<usize, u32> = HashMap::new();
    let mut tasks = Vec::with_capacity(waits.tasks.len());
    for w in waits.tasks {
        let TaskWait {
            id,
            site,
            stack,
            at_unix_ns: captured,
        } = w;
        let trace = match trace_of.get(&stack) {
            Some(&i) => i,
            None => {
                let Some(ips) = crate::stacks::get(stack) else {
                    continue;
                };
                traces.push((*resolver.trace(stack, &ips)).clone());
                let i = (traces.len() - 1) as u32;
                trace_of.insert(stack, i);
                i
            }
        };
        let mut index = |l: &'static Location<'static>| {
            let key = l as *const Location<'static> as usize;
            *loc_of.entry(key).or_insert_with(|| {
                locations.push(crate::wire::loc(l));
                locations.len() as u32
            })
        };
        let location = site.map_or(0, |s: &hooks::Site| index(s.location));
        let spawner = site.and_then(|s| s.spawner).map_or(0, &mut index);
        tasks.push(proto::TaskTrace {
            id,
            trace,
            location,
            captured_unix_ns: captured,
            spawner,
            split: site.is_some_and(|s| s.split),
        });
    }
    proto::DumpReply {
        traces,
        tasks,
        resolve_ns: t.elapsed().as_nanos() as u64,
        taken_unix_ns: crate::wire::unix_now_ns()
            - started.elapsed().as_nanos().min(i64::MAX as u128) as i64,
        locations,
        unlisted: waits.more,
        round_ns: round.as_nanos() as u64,
        agent_wakers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_can_capture_or_says_why_not() {
        let built_for_it = cfg!(taskdumps);
        match support() {
            Ok(()) => assert!(built_for_it),
            Err(why) => assert!(!built_for_it && why.contains("Linux"), "{why}"),
        }
    }
}
