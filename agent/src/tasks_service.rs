//! `taskscope.agent.v1.Tasks`: the hooks recorder's groups, streamed, and a
//! group's tasks a page at a time. One producer computes the groups once
//! per interval while anyone watches and publishes them in a `watch`
//! channel: each client reads the latest, so a slow or stalled client
//! holds one message at most and never grows the target's memory.

use crate::hooks::{Aggregate, Budget, Recorder, Sample, Site};
use crate::proto::tasks_server::{Tasks, TasksServer};
use crate::proto::{
    self, GroupRow, Groups, Loc, PageRequest, ParentCount, SiteHistory, TaskPage, WatchRequest,
};
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// How often groups are computed while someone watches.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Most parents listed per group, and most tasks per page.
const PARENTS: usize = 8;
const MAX_PAGE: u32 = 10_000;

/// The generated `Tasks` server's implementation (`tasks_server::Tasks`).
pub struct TasksService {
    recorder: Recorder,
    latest: watch::Receiver<Option<Arc<Groups>>>,
    /// Open `Watch` streams: the producer works only while there are any
    /// (the service keeps a receiver of its own, so the channel's receiver
    /// count does not tell).
    watchers: Arc<AtomicUsize>,
    /// One walk over every task at a time on behalf of clients (a new
    /// stream's first message, a page): a client cannot make the agent walk
    /// a million tasks many times at once; the next one is refused
    /// (`RESOURCE_EXHAUSTED`) and tries again.
    walks: Arc<tokio::sync::Semaphore>,
}

impl TasksService {
    /// Runs `f` over the record on a blocking thread, unless another
    /// client's walk is running.
    async fn walk<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Recorder) -> T + Send + 'static,
    ) -> Result<T, Status> {
        // Moved into the walk: a client that gives up mid-walk leaves the
        // walk running, and the next request is busy until it ends.
        let Ok(permit) = self.walks.clone().try_acquire_owned() else {
            return Err(Status::resource_exhausted(
                "another client's request is walking the tasks: ask again in a moment",
            ));
        };
        let r = self.recorder.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&r)
        })
        .await
        .map_err(|e| Status::internal(format!("walking the tasks failed: {e}")))
    }
}

/// Counts a stream as watching until it is dropped.
struct Watching(Arc<AtomicUsize>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl TasksService {
    /// The service (the generated server, its messages bounded like the
    /// waits', `MAX_REPLY`), and the producer to run beside the server: it
    /// samples the history every second and, while anyone watches,
    /// computes the groups and asks a round of captures (within `budget`),
    /// so every group's waits stay current without anyone asking.
    pub fn new(
        recorder: Recorder,
        budget: Budget,
    ) -> (TasksServer<TasksService>, impl Future<Output = ()> + Send) {
        let (tx, latest) = watch::channel(None);
        let watchers = Arc::new(AtomicUsize::new(0));
        let producer = {
            let recorder = recorder.clone();
            let watchers = watchers.clone();
            async move {
                let mut tick = tokio::time::interval(INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    recorder.sample();
                    if watchers.load(Ordering::Relaxed) > 0 {
                        let r = recorder.clone();
                        let groups = tokio::task::spawn_blocking(move || {
                            r.request_captures(budget);
                            groups(&r.groups())
                        })
                        .await
                        .ok();
                        if let Some(g) = groups {
                            tx.send_replace(Some(Arc::new(g)));
                        }
                    }
                }
            }
        };
        let svc = TasksService {
            recorder,
            latest,
            watchers,
            walks: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        let server = TasksServer::new(svc).max_encoding_message_size(crate::service::MAX_REPLY);
        (server, producer)
    }
}

pub(crate) fn loc(l: &'static Location<'static>) -> Loc {
    Loc {
        file: l.file().to_string(),
        line: l.line(),
        column: l.column(),
    }
}

fn groups(a: &Aggregate) -> Groups {
    let unix = |at: u64| a.unix_ns(at).unwrap_or(0);
    Groups {
        now_unix_ns: a.now_unix_ns,
        since_unix_ns: a.epoch_unix_ns,
        history: Vec::new(),
        groups: a
            .groups
            .iter()
            .map(|g| {
                let mut parents: Vec<(&&'static Location<'static>, &u64)> =
                    g.parents.iter().collect();
                parents.sort_by(|x, y| y.1.cmp(x.1).then_with(|| x.0.file().cmp(y.0.file())));
                GroupRow {
                    location: Some(loc(g.site.location)),
                    split: g.site.split,
                    spawner: g.site.spawner.map(loc),
                    live: g.live,
                    running: g.running,
                    idle: g.idle,
                    spawned: g.spawned,
                    terminated: g.terminated,
                    polls: g.polls,
                    busy_ns: g.busy_ns,
                    oldest_created_unix_ns: unix(g.oldest_created),
                    earliest_idle_unix_ns: unix(g.earliest_idle),
                    longest_poll_ns: g.longest_poll_ns,
                    parents: parents
                        .into_iter()
                        .take(PARENTS)
                        .map(|(l, n)| ParentCount {
                            location: Some(loc(l)),
                            tasks: *n,
                        })
                        .collect(),
                    unparented: g.unparented,
                    ages: g.ages.to_vec(),
                    terminated_lifetime_ns: g.lifetime_ns,
                    lifetimes: g.lifetimes.to_vec(),
                    reachable: g.waits.reachable,
                    waits_held: g.waits.held,
                    newest_wait_unix_ns: g.waits.newest.unwrap_or(0),
                }
            })
            .collect(),
    }
}

fn history(h: Vec<(&'static Site, Vec<Sample>)>) -> Vec<SiteHistory> {
    h.into_iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(site, s)| SiteHistory {
            location: Some(loc(site.location)),
            split: site.split,
            spawner: site.spawner.map(loc),
            first_unix_sec: s[0].unix_sec,
            spawned: s.iter().map(|x| x.spawned).collect(),
            terminated: s.iter().map(|x| x.terminated).collect(),
        })
        .collect()
}

type GroupStream = Pin<Box<dyn Stream<Item = Result<Groups, Status>> + Send>>;

#[tonic::async_trait]
impl Tasks for TasksService {
    type WatchStream = GroupStream;

    async fn watch(&self, _: Request<WatchRequest>) -> Result<Response<GroupStream>, Status> {
        let mut latest = self.latest.clone();
        // The first message at once, with the kept history.
        let first = self
            .walk(|r| {
                let mut g = groups(&r.groups());
                g.history = history(r.history());
                g
            })
            .await?;
        latest.mark_unchanged();
        self.watchers.fetch_add(1, Ordering::Relaxed);
        let watching = Watching(self.watchers.clone());
        let stream = async_stream(first, latest, watching);
        Ok(Response::new(Box::pin(stream) as GroupStream))
    }

    async fn page(&self, req: Request<PageRequest>) -> Result<Response<TaskPage>, Status> {
        let req = req.into_inner();
        let Some(l) = req.location else {
            return Err(Status::invalid_argument("no location"));
        };
        let limit = req.limit.clamp(1, MAX_PAGE) as usize;
        let (split, spawner) = (req.split, req.spawner);
        let page = self
            .walk(move |r| {
                let at = (l.file.as_str(), l.line, l.column);
                let by = spawner
                    .as_ref()
                    .map(|s| (s.file.as_str(), s.line, s.column));
                r.tasks(at, split, by, req.after_id, limit)
            })
            .await?;
        Ok(Response::new(TaskPage {
            next_after_id: page.next.unwrap_or(0),
            tasks: page
                .tasks
                .into_iter()
                .map(|t| proto::TaskRow {
                    id: t.id,
                    reachable: t.reachable,
                    parent_id: t.parent,
                    parent_location: t.parent_location.map(loc),
                    created_unix_ns: t.created_unix_ns,
                    polls: t.polls,
                    busy_ns: t.busy_ns,
                    running_since_unix_ns: t.running_since_unix_ns.unwrap_or(0),
                    idle_since_unix_ns: t.idle_since_unix_ns.unwrap_or(0),
                })
                .collect(),
        }))
    }
}

/// The first message, then each newly published one (the latest only).
fn async_stream(
    first: Groups,
    latest: watch::Receiver<Option<Arc<Groups>>>,
    watching: Watching,
) -> impl Stream<Item = Result<Groups, Status>> + Send {
    use tokio_stream::StreamExt;
    let rest = tokio_stream::wrappers::WatchStream::from_changes(latest)
        .filter_map(|g| g)
        .map(move |g| {
            // Held by the stream: dropped when the client goes away.
            let _ = &watching;
            Ok((*g).clone())
        });
    tokio_stream::once(Ok(first)).chain(rest)
}
