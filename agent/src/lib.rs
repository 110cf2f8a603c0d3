//! # taskscope-agent
//!
//! The always-on source for taskscope (a live task inspector for tokio
//! services): exact live tasks per spawn location from tokio's runtime
//! hooks, and exact waits (socket read, channel send, `Sleep`, `Notify`…)
//! captured one task at a time, never by stopping the runtime.
//!
//! ```ignore
//! fn main() {
//!     taskscope_agent::run(serve())
//! }
//!
//! async fn serve() {
//!     // A task whose waits taskscope can name: spawn it like this.
//!     taskscope_agent::spawn(async { /* … */ });
//! }
//! ```
//!
//! `run` builds the runtime `#[tokio::main]` would, with the hooks
//! installed, and serves taskscope on `127.0.0.1:6669`
//! (`TASKSCOPE_AGENT_BIND`). It needs `--cfg tokio_unstable`; it does not
//! need tokio's `tracing` feature or console-subscriber.
//!
//! ## Waits, without harm
//! tokio's own `Handle::dump` stops every worker and, on tokio 1.54, can
//! hang the runtime for good under a burst of wake-ups
//! (`docs/upstream/tokio-taskdump-steal-all.md`). The agent never calls it.
//! A task spawned with [`spawn`] (or whose future is wrapped in
//! [`traced`], or spawned by [`TracedExecutor`] for hyper) is asked, now
//! and then, to poll itself once in tokio's tracing mode: see [`capture`]
//! for how, and what that can and cannot change for the task. A task
//! spawned otherwise (inside a library that spawns its own tasks) is
//! counted exactly, but its waits are not known: taskscope says so.
//! Captures need Linux on x86, x86_64, aarch64 or s390x, with
//! `--cfg tokio_unstable` (this crate turns on tokio's `taskdump` feature
//! there); elsewhere the wrapper only passes polls through.
//!
//! ## console-subscriber
//! With the `console` feature, [`init`] and [`Agent::spawn`] serve
//! console-subscriber's protocol on the same port, beside the agent's
//! `/metrics`. That feature turns on tokio's `tracing` for the whole
//! service (~250 B more per task); the hooks source does not need it.
//!
//! ## Running it in production
//! The port serves two kinds of access (see [`access`]): read-only
//! endpoints open to anyone who reaches it (`GET /metrics`, and
//! `GET /debug/pprof/tasks`, a pprof task profile of the counts per spawn
//! location), and inspection (the gRPC services: tasks, waits, stacks,
//! console data; the profile's stacks) for clients that present the token
//! (`TASKSCOPE_TOKEN_FILE`, [`Agent::set_token`]), or without a token on
//! loopback and Unix sockets only. The default bind is `127.0.0.1:6669`.
//! Every client is bounded (see [`limits`]): connections at once, silence
//! allowed, requests per connection; one walk of the tasks at a time, a
//! bounded number of captures per second, replies of bounded size.

pub mod access;
pub mod capture;
#[cfg(feature = "console")]
mod census;
mod dump;
pub mod hooks;
pub mod limits;
pub mod metrics;
mod profile;
mod resolve;
mod server;
mod service;
mod slot;
mod spawn;
mod stacks;
mod tasks_service;
mod untraced;

pub use capture::{Traced, traced};
pub use server::{axum, tonic};
pub use spawn::{TracedExecutor, spawn};

/// The wire messages (the `taskscope-proto` crate).
pub use taskscope_proto as proto;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Where the agent listens: a TCP address or a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddr {
    Tcp(std::net::SocketAddr),
    #[cfg(unix)]
    Unix(std::path::PathBuf),
}

impl From<std::net::SocketAddr> for ServerAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        ServerAddr::Tcp(a)
    }
}

#[cfg(unix)]
impl From<std::path::PathBuf> for ServerAddr {
    fn from(p: std::path::PathBuf) -> Self {
        ServerAddr::Unix(p)
    }
}

#[cfg(feature = "console")]
impl From<ServerAddr> for console_subscriber::ServerAddr {
    fn from(a: ServerAddr) -> Self {
        match a {
            ServerAddr::Tcp(a) => console_subscriber::ServerAddr::Tcp(a),
            #[cfg(unix)]
            ServerAddr::Unix(p) => console_subscriber::ServerAddr::Unix(p),
        }
    }
}

/// Most threads the agent's server runs blocking work on, beside its own
/// thread: one each for a scrape (`/metrics` or the task profile), a
/// request for waits' walk, a gRPC walk, the groups' publisher and the
/// token file's check. Each holds its slot until the work ends, even when
/// the client that asked has gone (the next one is busy meanwhile), so
/// they never queue behind each other. Idle ones end after tokio's 10 s.
pub const MAX_BLOCKING_THREADS: usize = 5;

/// The server thread's runtime: one thread, I/O and timers, and at most
/// [`MAX_BLOCKING_THREADS`] more for walks, however many clients ask.
fn server_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("taskscope-walk")
        .build()
}

/// The shortest and longest time a request for waits may wait for the
/// tasks it asked to answer, whatever a client asks. The tasks answer on
/// their next poll; a task that does not (its worker is busy) keeps its
/// last capture, or none.
pub const MIN_DUMP_TIMEOUT: Duration = Duration::from_millis(100);
pub const MAX_DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// Most tasks listed in one reply (the rest are counted as unlisted).
pub const MAX_REPLY_TASKS: usize = 200_000;

/// How long a task profile's scrape waits for the captures it asked.
const PROFILE_CAPTURE_WAIT: Duration = Duration::from_millis(500);

/// Why no waits were returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// Another client's request is being served: ask again shortly
    /// (served as gRPC `RESOURCE_EXHAUSTED`, which taskscope retries).
    Busy,
    /// No waits now, and why (unsupported platform, no hooks source).
    Refused(String),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Busy => f.write_str(BUSY),
            DumpError::Refused(why) => f.write_str(why),
        }
    }
}

impl From<String> for DumpError {
    fn from(why: String) -> Self {
        DumpError::Refused(why)
    }
}

impl From<&str> for DumpError {
    fn from(why: &str) -> Self {
        DumpError::Refused(why.to_string())
    }
}

const BUSY: &str = "another client's request for waits is being served: ask again in a moment";

/// The agent: the hooks recorder, the captures' budget, the server's state.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: OnceLock<Handle>,
    /// Least time between two capture rounds a client can cause.
    min_interval: Duration,
    /// One request for waits at a time; when the last round was asked.
    waits: tokio::sync::Mutex<Option<Instant>>,
    /// Held by a request for waits' walk on a blocking thread (asking the
    /// captures, collecting the reply), not by the request: a client that
    /// gives up mid-walk frees `waits`, and the next request is busy until
    /// the walk it left behind ends, instead of queueing another.
    dump_walk: Arc<tokio::sync::Semaphore>,
    /// Filled once the server is listening (the port, when 0 was asked).
    bound: Mutex<Option<String>>,
    /// The hooks source, once installed on a runtime builder.
    recorder: OnceLock<hooks::Recorder>,
    /// Per-location counts from the tasks' spans (console mode).
    #[cfg(feature = "console")]
    census: OnceLock<census::Census>,
    /// `/metrics`: the cap on locations and the counters' last values.
    exporter: metrics::Exporter,
    /// One scrape walks the tasks at a time: the permit goes with the
    /// walk to its blocking thread, so a client that gives up (resets the
    /// stream) does not free it while the walk still runs.
    scrape: Arc<tokio::sync::Semaphore>,
    resolver: resolve::Resolver,
    budget: hooks::Budget,
    replies: AtomicU64,
    refusals: AtomicU64,
    /// The inspection token, when set in code (else from the environment).
    token: Mutex<Option<access::Token>>,
    /// Inspection requests refused for want of the token.
    access_refused: AtomicU64,
    /// Bounds on clients, and what they did.
    limits: Mutex<limits::Limits>,
    connections: Arc<limits::Counters>,
}

impl Default for Agent {
    fn default() -> Self {
        Agent::new()
    }
}

impl Agent {
    /// An agent whose clients can cause a capture round at most every
    /// 250 ms (the server's own rounds, while someone watches, are once a
    /// second).
    pub fn new() -> Agent {
        Agent::with_min_interval(Duration::from_millis(250))
    }

    /// An agent whose clients can cause a capture round at most every
    /// `min_interval`; requests in between get the captures that hold.
    pub fn with_min_interval(min_interval: Duration) -> Agent {
        capture::enable();
        Agent {
            inner: Arc::new(Inner {
                runtime: OnceLock::new(),
                min_interval,
                waits: tokio::sync::Mutex::new(None),
                dump_walk: Arc::new(tokio::sync::Semaphore::new(1)),
                bound: Mutex::new(None),
                recorder: OnceLock::new(),
                #[cfg(feature = "console")]
                census: OnceLock::new(),
                exporter: metrics::Exporter::from_env(),
                scrape: Arc::new(tokio::sync::Semaphore::new(1)),
                resolver: resolve::Resolver::default(),
                budget: budget_from_env(),
                replies: AtomicU64::new(0),
                refusals: AtomicU64::new(0),
                token: Mutex::new(None),
                access_refused: AtomicU64::new(0),
                limits: Mutex::new(limits::Limits::default()),
                connections: Arc::default(),
            }),
        }
    }

    /// Remembers the runtime the agent serves (the first call wins). The
    /// agent never pauses it; waits come from the tasks themselves.
    pub fn attach(&self, handle: Handle) -> bool {
        self.inner.runtime.set(handle).is_ok()
    }

    /// Installs the hooks source on a runtime builder: from then on the
    /// agent keeps an exact record of every task of that runtime (see
    /// [`hooks`]). Replaces hook callbacks set on the builder before; to
    /// keep yours, use [`Agent::install_hooks_with`].
    #[cfg(tokio_unstable)]
    pub fn install_hooks(&self, builder: &mut tokio::runtime::Builder) {
        self.install_hooks_with(builder, hooks::OtherHooks::default());
    }

    /// [`Agent::install_hooks`], calling `other`'s callbacks too.
    #[cfg(tokio_unstable)]
    pub fn install_hooks_with(
        &self,
        builder: &mut tokio::runtime::Builder,
        other: hooks::OtherHooks,
    ) {
        let recorder = self.inner.recorder.get_or_init(hooks::Recorder::new);
        recorder.install_with(builder, other);
    }

    /// Requires `token` of every inspection request (every gRPC method:
    /// tasks, waits, stacks, console data) wherever the agent listens;
    /// `GET /metrics` stays open. Without this, `TASKSCOPE_TOKEN_FILE` (a
    /// file holding the token, followed as it changes: see
    /// [`access::Token::from_file`]) or `TASKSCOPE_TOKEN` is read when the
    /// server starts; with neither, inspection is served on loopback and
    /// Unix sockets only (see [`access`]). Set it before serving.
    pub fn set_token(&self, token: &str) -> Result<(), String> {
        let t = access::Token::new(token)?;
        *self.inner.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
        Ok(())
    }

    /// The token in force: set in code, else from the environment.
    pub(crate) fn token(&self) -> Result<Option<access::Token>, String> {
        let set = self
            .inner
            .token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match set {
            Some(t) => Ok(Some(t)),
            None => access::Token::from_env(),
        }
    }

    /// Sets the bounds on clients (connections at once, silence allowed);
    /// before serving.
    pub fn set_limits(&self, limits: limits::Limits) {
        *self.inner.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    /// The connection gate for a server about to listen.
    pub(crate) fn gate(&self) -> limits::Gate {
        let l = *self.inner.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits::Gate::new(l, self.inner.connections.clone())
    }

    pub(crate) fn refused_access(&self) {
        self.inner.access_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether console-subscriber is served beside the agent (whose waker
    /// counts then include the wakers the agent holds for captures).
    pub fn serves_console(&self) -> bool {
        #[cfg(feature = "console")]
        {
            self.inner.census.get().is_some()
        }
        #[cfg(not(feature = "console"))]
        {
            false
        }
    }

    /// The hooks recorder, once installed.
    pub fn recorder(&self) -> Option<hooks::Recorder> {
        self.inner.recorder.get().cloned()
    }

    /// How many tasks a capture round asks, per location and in all.
    pub fn budget(&self) -> hooks::Budget {
        self.inner.budget
    }

    /// Serves the hooks source and the waits on `addr` from a thread of
    /// its own (no console-subscriber). Returns once the port is bound,
    /// with the address it is bound to.
    pub fn serve(&self, addr: ServerAddr) -> std::io::Result<String> {
        let agent = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("taskscope-agent".into())
            .spawn(move || {
                let rt = match server_runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let res = rt.block_on(service::serve_hooks(addr, agent, tx.clone()));
                if let Err(e) = res {
                    let _ = tx.send(Err(e.to_string()));
                    eprintln!("taskscope-agent: server failed: {e}");
                }
            })?;
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(bound)) => Ok(bound),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Err(std::io::Error::other(
                "taskscope-agent: the server did not bind its port",
            )),
        }
    }

    /// Whether exact waits can be captured, and if not, why. They are
    /// the waits of tasks wrapped in [`traced`]: under the hooks source
    /// the recorder knows them with their spawn locations; without it (a
    /// console-mode runtime) the agent finds them by task id.
    pub fn ready(&self) -> Result<(), &'static str> {
        dump::support()
    }

    /// console-subscriber's layer, with a background thread serving the
    /// console API and the agent's `/metrics` on `addr` (like
    /// `console_subscriber::Builder::spawn`, whose own address setting is
    /// not used).
    #[cfg(feature = "console")]
    pub fn spawn<S>(
        &self,
        builder: console_subscriber::Builder,
        addr: ServerAddr,
    ) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer;
        use tracing_subscriber::filter::FilterFn;
        let (layer, server) = builder.build();
        let agent = self.clone();
        std::thread::Builder::new()
            .name("console_subscriber".into())
            .spawn(move || {
                // The server's own spans must not feed the console.
                let _guard =
                    tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
                let rt = server_runtime().expect("taskscope-agent: runtime for the console server");
                if let Err(e) = rt.block_on(service::serve(server, addr, agent)) {
                    eprintln!("taskscope-agent: console server failed: {e}");
                }
            })
            .expect("taskscope-agent: console server thread");
        let census = self
            .inner
            .census
            .get_or_init(census::Census::default)
            .layer();
        layer
            .with_filter(FilterFn::new(console_filter))
            .and_then(census.with_filter(FilterFn::new(|m| {
                m.name() == "runtime.spawn" && m.target() == "tokio::task"
            })))
    }

    /// Every spawn location's counts now, from the hooks source if it is
    /// installed, else from the tasks' spans (console mode), else none.
    pub fn site_stats(&self) -> Vec<metrics::SiteStat> {
        if let Some(r) = self.recorder() {
            let agg = r.groups();
            let now = agg.now_unix_ns.saturating_sub(agg.epoch_unix_ns).max(0) as u64;
            return agg
                .groups
                .iter()
                .map(|g| metrics::SiteStat {
                    // `file:line:col`, and its spawner's for a split line.
                    location: g.site.name(),
                    live: g.live,
                    running: g.running,
                    spawned: g.spawned,
                    terminated: g.terminated,
                    busy_ns: g.busy_ns.saturating_add(g.site.terminated_busy_ns()),
                    oldest_age_ns: if g.live > 0 {
                        now.saturating_sub(g.oldest_created)
                    } else {
                        0
                    },
                })
                .collect();
        }
        #[cfg(feature = "console")]
        if let Some(c) = self.inner.census.get() {
            return c.stats();
        }
        Vec::new()
    }

    /// The agent's own state, for `/metrics`.
    pub fn health(&self) -> metrics::AgentHealth {
        metrics::AgentHealth {
            source: if self.recorder().is_some() {
                "hooks"
            } else {
                "console"
            },
            dumps: self.inner.replies.load(Ordering::Relaxed),
            dump_failures: self.inner.refusals.load(Ordering::Relaxed),
            inspection_refused: self.inner.access_refused.load(Ordering::Relaxed),
            connections: self.inner.connections.open.load(Ordering::Relaxed),
            connections_refused: self.inner.connections.refused.load(Ordering::Relaxed),
            connections_timed_out: self.inner.connections.timed_out.load(Ordering::Relaxed),
            accept_failed: self.inner.connections.accept_failed.load(Ordering::Relaxed),
            // The agent never pauses the runtime.
            last_dump_pause: None,
            captures: self
                .recorder()
                .map(|r| r.capture_stats())
                .unwrap_or_default(),
        }
    }

    /// The `/metrics` exposition (OpenMetrics or the Prometheus text
    /// format) and its content type. Walks the live tasks on a blocking
    /// thread, one scrape at a time.
    pub async fn metrics(&self, openmetrics: bool) -> (String, &'static str) {
        let permit = self.inner.scrape.clone().acquire_owned().await;
        let agent = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let stats = agent.site_stats();
            agent
                .inner
                .exporter
                .render(stats, agent.health(), openmetrics)
        })
        .await
        .unwrap_or_else(|_| {
            (
                "# taskscope-agent: the scrape failed\n".into(),
                metrics::PROMETHEUS_TEXT,
            )
        })
    }

    /// The address the server listens on, once it does.
    pub fn bound(&self) -> Option<String> {
        self.inner
            .bound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_bound(&self, s: String) {
        *self.inner.bound.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// The waits the agent knows: asks a round of captures (unless one
    /// was asked less than the minimum interval ago), waits up to
    /// `timeout` (clamped to [`MIN_DUMP_TIMEOUT`]..[`MAX_DUMP_TIMEOUT`])
    /// for the tasks asked to answer, and returns every capture that still
    /// holds. Nothing here pauses the runtime: a task answers on its own
    /// next poll, and one that does not is simply not in this round. A
    /// request while another is being served fails at once
    /// ([`DumpError::Busy`]) rather than queue.
    pub async fn dump(&self, timeout: Duration) -> Result<proto::DumpReply, DumpError> {
        let res = self.dump_inner(timeout).await;
        let counter = match &res {
            Ok(_) => &self.inner.replies,
            Err(_) => &self.inner.refusals,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        res
    }

    async fn dump_inner(&self, timeout: Duration) -> Result<proto::DumpReply, DumpError> {
        self.ready()?;
        let recorder = self.recorder();
        let Ok(mut last) = self.inner.waits.try_lock() else {
            return Err(DumpError::Busy);
        };
        let started = Instant::now();
        self.round(&mut last, timeout).await?;
        let slot = self.dump_walk()?;
        let agent = self.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            agent.reply(recorder.as_ref(), started)
        })
        .await
        .map_err(|e| format!("collecting the waits failed: {e}").into())
    }

    /// Asks a round of captures, unless one was asked less than the
    /// minimum interval ago (`last`, held by the caller: one request at a
    /// time), and waits up to `timeout` (clamped) for the tasks asked to
    /// answer.
    async fn round(&self, last: &mut Option<Instant>, timeout: Duration) -> Result<(), DumpError> {
        let timeout = timeout.clamp(MIN_DUMP_TIMEOUT, MAX_DUMP_TIMEOUT);
        let started = Instant::now();
        if last.is_some_and(|t| t.elapsed() < self.inner.min_interval) {
            return Ok(());
        }
        let slot = self.dump_walk()?;
        *last = Some(started);
        let r = self.recorder();
        let budget = self.inner.budget;
        let asked = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match r {
                Some(r) => r.request_captures(budget),
                None => capture::registry::request(budget.total),
            }
        })
        .await
        .map_err(|e| format!("asking for captures failed: {e}"))?;
        while asked.iter().any(|s| s.wanted()) && started.elapsed() < timeout {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// The slot of a request for waits' walk, or busy while a walk (one a
    /// client gave up on, too) still runs.
    fn dump_walk(&self) -> Result<tokio::sync::OwnedSemaphorePermit, DumpError> {
        self.inner
            .dump_walk
            .clone()
            .try_acquire_owned()
            .map_err(|_| DumpError::Busy)
    }

    /// `GET /debug/pprof/tasks`: the live tasks per spawn location as a
    /// gzipped pprof profile (see [`profile`]). With `stacks` (the request
    /// may inspect), tasks whose capture holds come with their stack, and
    /// with `capture` a round of captures is asked first, as a request for
    /// waits would (bounded by the same interval and budget; skipped while
    /// another client's request is served). Walks the tasks on a blocking
    /// thread, one scrape at a time (shared with `/metrics`).
    pub async fn task_profile(&self, stacks: bool, capture: bool) -> Vec<u8> {
        // Only the hooks source puts captured stacks in the profile: a
        // console-mode agent asks no captures for it.
        if stacks
            && capture
            && self.recorder().is_some()
            && self.ready().is_ok()
            && let Ok(mut last) = self.inner.waits.try_lock()
        {
            let _ = self.round(&mut last, PROFILE_CAPTURE_WAIT).await;
        }
        let permit = self.inner.scrape.clone().acquire_owned().await;
        let agent = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            agent.profile_now(stacks)
        })
        .await
        .unwrap_or_default()
    }

    fn profile_now(&self, stacks: bool) -> Vec<u8> {
        let sites = self.site_stats();
        let held: Vec<profile::Held> = match self.recorder() {
            Some(r) if stacks => r
                .held_stacks()
                .into_iter()
                .filter_map(|(site, stack, tasks)| {
                    let ips = stacks::get(stack)?;
                    Some(profile::Held {
                        // As `site_stats` names it, to match its sites.
                        location: site.name(),
                        trace: self.inner.resolver.trace(stack, &ips),
                        tasks,
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        let version = env!("CARGO_PKG_VERSION");
        let note = if stacks && self.recorder().is_some() {
            format!(
                "taskscope-agent {version}: live tasks per spawn location, with the stacks of captured waits"
            )
        } else if stacks {
            format!(
                "taskscope-agent {version}: live tasks per spawn location (console mode: no captured stacks)"
            )
        } else {
            format!(
                "taskscope-agent {version}: live tasks per spawn location (stacks need the agent's token)"
            )
        };
        profile::encode(&sites, &held, dump::unix_now_ns(), &note)
    }

    /// Every capture that holds, as the wire's reply: each distinct stack
    /// once, resolved to names here (off the service's workers). Under the
    /// hooks source each task comes with its spawn location.
    fn reply(&self, r: Option<&hooks::Recorder>, started: Instant) -> proto::DumpReply {
        use std::collections::HashMap;
        // Console mode: the wrapped tasks, whose waker the agent holds
        // while no capture of them holds (console-subscriber counts it).
        let (waits, agent_wakers) = match r {
            Some(r) if self.serves_console() => {
                (r.waits(MAX_REPLY_TASKS), r.wrapped(MAX_REPLY_TASKS))
            }
            Some(r) => (r.waits(MAX_REPLY_TASKS), Vec::new()),
            None => (
                capture::registry::waits(MAX_REPLY_TASKS),
                capture::registry::wrapped(MAX_REPLY_TASKS),
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
            let hooks::TaskWait {
                id,
                site,
                stack,
                at_unix_ns: captured,
            } = w;
            let trace = match trace_of.get(&stack) {
                Some(&i) => i,
                None => {
                    let Some(ips) = stacks::get(stack) else {
                        continue;
                    };
                    traces.push((*self.inner.resolver.trace(stack, &ips)).clone());
                    let i = (traces.len() - 1) as u32;
                    trace_of.insert(stack, i);
                    i
                }
            };
            let mut index = |l: &'static std::panic::Location<'static>| {
                let key = l as *const std::panic::Location<'static> as usize;
                *loc_of.entry(key).or_insert_with(|| {
                    locations.push(tasks_service::loc(l));
                    locations.len() as u32
                })
            };
            let location = site.map_or(0, |s| index(s.location));
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
            // No pause: the tasks captured themselves.
            capture_ns: 0,
            resolve_ns: t.elapsed().as_nanos() as u64,
            taken_unix_ns: dump::unix_now_ns()
                - started.elapsed().as_nanos().min(i64::MAX as u128) as i64,
            locations,
            unlisted: waits.more,
            round_ns: round.as_nanos() as u64,
            agent_wakers,
        }
    }

    /// Kept for the wire (`InfoReply::recent_dumps`): the agent takes no
    /// whole-runtime dumps, so there are none.
    pub fn recent_dumps(&self) -> Vec<proto::DumpWindow> {
        Vec::new()
    }

    pub fn min_interval(&self) -> Duration {
        self.inner.min_interval
    }
}

/// The capture budget, from `TASKSCOPE_CAPTURES_PER_SITE` and
/// `TASKSCOPE_CAPTURES_PER_ROUND` when set.
fn budget_from_env() -> hooks::Budget {
    let mut b = hooks::Budget::default();
    let var = |name: &str| std::env::var(name).ok()?.parse::<usize>().ok();
    if let Some(n) = var("TASKSCOPE_CAPTURES_PER_SITE") {
        b.per_site = n.min(1024);
    }
    if let Some(n) = var("TASKSCOPE_CAPTURES_PER_ROUND") {
        b.total = n.min(65_536);
    }
    b
}

/// What console-subscriber's own `spawn` lets through to its layer.
#[cfg(feature = "console")]
fn console_filter(meta: &tracing::Metadata<'_>) -> bool {
    if meta.is_event() {
        return meta.target().starts_with("runtime") || meta.target().starts_with("tokio");
    }
    meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
}

/// `console_subscriber::init()` with the agent's `/metrics`: call it
/// inside the runtime (e.g. first thing in `#[tokio::main]`). Honours
/// console-subscriber's environment (`TOKIO_CONSOLE_BIND`,
/// `TOKIO_CONSOLE_PUBLISH_INTERVAL`, …). Needs the `console` feature.
#[cfg(feature = "console")]
pub fn init() {
    use tracing_subscriber::prelude::*;
    let agent = Agent::new();
    if let Ok(h) = Handle::try_current() {
        agent.attach(h);
    }
    let addr = std::env::var("TOKIO_CONSOLE_BIND")
        .ok()
        .and_then(|s| std::net::ToSocketAddrs::to_socket_addrs(&s).ok()?.next())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 6669)));
    let layer = agent.spawn(
        console_subscriber::ConsoleLayer::builder().with_default_env(),
        addr.into(),
    );
    tracing_subscriber::registry().with(layer).init();
}

/// The address from `TASKSCOPE_AGENT_BIND`, else `TOKIO_CONSOLE_BIND`,
/// else `127.0.0.1:6669`.
pub fn bind_address() -> ServerAddr {
    ["TASKSCOPE_AGENT_BIND", "TOKIO_CONSOLE_BIND"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|s| std::net::ToSocketAddrs::to_socket_addrs(&s).ok()?.next())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 6669)))
        .into()
}

/// The always-on source in one call, for services that use
/// `#[tokio::main]` today: replace
///
/// ```ignore
/// #[tokio::main]
/// async fn main() { serve().await }
/// ```
///
/// with
///
/// ```ignore
/// fn main() { taskscope_agent::run(serve()) }
/// ```
///
/// It builds the multi-threaded runtime `#[tokio::main]` would (all
/// drivers enabled), with the hooks source installed, serves it on
/// [`bind_address`], and runs `future` to completion as a task of that
/// runtime spawned with [`spawn`], so its waits are known too. For other
/// runtime settings, build your own runtime and call
/// [`Agent::install_hooks`] and [`Agent::serve`].
#[cfg(tokio_unstable)]
#[track_caller]
pub fn run<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let agent = Agent::new();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    agent.install_hooks(&mut builder);
    let rt = builder
        .build()
        .expect("taskscope-agent: building the tokio runtime");
    agent.attach(rt.handle().clone());
    if let Err(e) = agent.serve(bind_address()) {
        eprintln!("taskscope-agent: not serving: {e}");
    }
    let main = {
        let _enter = rt.enter();
        spawn(future)
    };
    match rt.block_on(main) {
        Ok(out) => out,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("taskscope-agent: the main task was cancelled: {e}"),
        },
    }
}
