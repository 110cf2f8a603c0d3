//! # taskscope-agent
//!
//! Serves tokio task dumps to taskscope (a live task inspector for tokio
//! services) on the same port as console-subscriber, so it can say exactly
//! what every idle task waits on (socket read, channel receive, `Notify`,
//! `JoinHandle`…), which console data alone cannot.
//!
//! One line replaces `console_subscriber::init()` inside the runtime:
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() {
//!     taskscope_agent::init();
//!     // …
//! }
//! ```
//!
//! Or, to keep your own subscriber stack, build the layer and attach the
//! runtime to dump:
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//! let agent = taskscope_agent::Agent::new();
//! let layer = agent.spawn(
//!     console_subscriber::ConsoleLayer::builder().with_default_env(),
//!     std::net::SocketAddr::from(([127, 0, 0, 1], 6669)).into(),
//! );
//! tracing_subscriber::registry().with(layer).init();
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! agent.attach(rt.handle().clone());
//! ```
//!
//! Dumps need Linux on x86, x86_64, aarch64 or s390x, `--cfg tokio_unstable`
//! and tokio's `taskdump` feature (this crate turns it on there). Elsewhere
//! the agent still serves the console and answers that dumps are
//! unavailable. A dump pauses the runtime's workers while every task is
//! polled once in tracing mode; symbols are resolved afterwards on the
//! agent's own thread. The agent refuses dumps closer together than its
//! minimum interval (10 s by default), runs one at a time, never cancels
//! one half way, and waits for the run queues to be short before it starts
//! one: tokio 1.54's dump can hang the runtime when many tasks are runnable
//! at once (tokio-rs/tokio#7478).
//!
//! ## Running it in production
//! The port serves every task's name and fields and lets a client pause
//! the runtime for a dump (at most one per 10 s, each clamped to 30 s of
//! waiting). Keep it private: the default bind is `127.0.0.1:6669`
//! (`TOKIO_CONSOLE_BIND`); reach it with `ssh -L 6669:127.0.0.1:6669 HOST`
//! or `kubectl port-forward`. Binding any other address prints a warning.
//! A second client asking while a dump runs is refused at once, and a
//! `current_thread` runtime is dumped from inside itself.

mod census;
mod dump;
pub mod hooks;
pub mod metrics;
mod service;
mod tasks_service;

/// The wire messages (the `taskscope-proto` crate).
pub use taskscope_proto as proto;

pub use console_subscriber::ServerAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;

/// The shortest and longest time a dump may wait for the runtime to pause,
/// whatever a client asks: a client cannot make the agent hold a capture
/// task, and its connection, for longer.
pub const MIN_DUMP_TIMEOUT: Duration = Duration::from_millis(100);
pub const MAX_DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no dump was returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// Another client's dump is being taken: ask again shortly (served as
    /// gRPC `RESOURCE_EXHAUSTED`, which taskscope retries).
    Busy,
    /// No dump now, and why (unsupported, refused, timed out, failed).
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

const BUSY: &str = "another client's dump is being taken: ask again in a moment";

/// The agent: which runtime to dump, and how often it may be dumped.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: OnceLock<Handle>,
    min_interval: Duration,
    /// Serialises dumps; remembers the last one and any still running.
    dumps: tokio::sync::Mutex<DumpState>,
    /// Filled once the server is listening (the port, when 0 was asked).
    bound: Mutex<Option<String>>,
    /// The last few dumps' capture windows.
    recent: Mutex<Vec<proto::DumpWindow>>,
    /// The hooks source, once installed on a runtime builder.
    recorder: OnceLock<hooks::Recorder>,
    /// Per-location counts from the tasks' spans (console mode).
    census: OnceLock<census::Census>,
    /// `/metrics`: the cap on locations and the counters' last values.
    exporter: metrics::Exporter,
    /// One scrape walks the tasks at a time.
    scrape: tokio::sync::Semaphore,
    dumps_taken: std::sync::atomic::AtomicU64,
    dump_failures: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct DumpState {
    /// When the last dump began.
    last: Option<Instant>,
    /// A capture in progress. tokio's `Handle::dump` must never be
    /// cancelled: dropped half-way it leaves the runtime's workers trying
    /// to trace forever (tokio-rs/tokio#7478), so it runs in a task of its
    /// own that finishes even when the client gives up.
    running: Option<tokio::task::JoinHandle<Result<dump::Captured, String>>>,
    /// The reply to the last dump, served again to requests within the
    /// minimum interval.
    cached: Option<std::sync::Arc<proto::DumpReply>>,
}

impl Default for Agent {
    fn default() -> Self {
        Agent::new()
    }
}

impl Agent {
    /// An agent that takes at most one dump per 10 s: a dump wakes every
    /// task, and a second dump before those wake-ups drain is what hangs
    /// tokio (see `dump::queued`).
    pub fn new() -> Agent {
        Agent::with_min_interval(Duration::from_secs(10))
    }

    /// An agent that refuses dumps closer together than `min_interval`.
    pub fn with_min_interval(min_interval: Duration) -> Agent {
        Agent {
            inner: Arc::new(Inner {
                runtime: OnceLock::new(),
                min_interval,
                dumps: tokio::sync::Mutex::new(DumpState::default()),
                bound: Mutex::new(None),
                recent: Mutex::new(Vec::new()),
                recorder: OnceLock::new(),
                census: OnceLock::new(),
                exporter: metrics::Exporter::from_env(),
                scrape: tokio::sync::Semaphore::new(1),
                dumps_taken: Default::default(),
                dump_failures: Default::default(),
            }),
        }
    }

    /// Sets the runtime whose tasks are dumped (the first call wins).
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

    /// The hooks recorder, once installed.
    pub fn recorder(&self) -> Option<hooks::Recorder> {
        self.inner.recorder.get().cloned()
    }

    /// Serves the hooks source and the dumps on `addr` from a thread of its
    /// own (no console-subscriber). Returns once the port is bound, with
    /// the address it is bound to.
    pub fn serve(&self, addr: ServerAddr) -> std::io::Result<String> {
        let agent = self.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("taskscope-agent".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let bound = agent.clone();
                let res = rt.block_on(async move {
                    let watch = async {
                        // Report the address once bound.
                        loop {
                            if let Some(b) = bound.bound() {
                                let _ = tx.send(Ok(b));
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        std::future::pending::<()>().await;
                    };
                    tokio::select! {
                        r = service::serve_hooks(addr, agent) => r,
                        () = watch => Ok(()),
                    }
                });
                if let Err(e) = res {
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

    /// Whether dumps can be taken, and if not, why.
    pub fn ready(&self) -> Result<(), &'static str> {
        dump::support()?;
        if self.inner.runtime.get().is_none() {
            return Err("no runtime attached to the agent (call Agent::attach)");
        }
        Ok(())
    }

    /// console-subscriber's layer, with a background thread serving the
    /// console API and the agent's dumps on `addr` (like
    /// `console_subscriber::Builder::spawn`, whose own address setting is
    /// not used).
    pub fn spawn<S>(
        &self,
        builder: console_subscriber::Builder,
        addr: ServerAddr,
    ) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let (layer, server) = builder.build();
        let agent = self.clone();
        std::thread::Builder::new()
            .name("console_subscriber".into())
            .spawn(move || {
                // The server's own spans must not feed the console.
                let _guard =
                    tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                    .expect("taskscope-agent: runtime for the console server");
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
                    location: format!(
                        "{}:{}:{}",
                        g.site.location.file(),
                        g.site.location.line(),
                        g.site.location.column()
                    ),
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
        self.inner
            .census
            .get()
            .map(census::Census::stats)
            .unwrap_or_default()
    }

    /// The agent's own state, for `/metrics`.
    pub fn health(&self) -> metrics::AgentHealth {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.recent_dumps().last().copied();
        metrics::AgentHealth {
            source: if self.recorder().is_some() {
                "hooks"
            } else {
                "console"
            },
            dumps: self.inner.dumps_taken.load(Relaxed),
            dump_failures: self.inner.dump_failures.load(Relaxed),
            last_dump_pause: last.map(|w| {
                Duration::from_nanos(w.end_unix_ns.saturating_sub(w.start_unix_ns).max(0) as u64)
            }),
        }
    }

    /// The `/metrics` exposition (OpenMetrics or the Prometheus text
    /// format) and its content type. Walks the live tasks on a blocking
    /// thread, one scrape at a time.
    pub async fn metrics(&self, openmetrics: bool) -> (String, &'static str) {
        let _permit = self.inner.scrape.acquire().await;
        let agent = self.clone();
        tokio::task::spawn_blocking(move || {
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

    /// Takes a dump, unless one ran less than the minimum interval ago.
    /// `timeout` is clamped to [`MIN_DUMP_TIMEOUT`]..[`MAX_DUMP_TIMEOUT`]
    /// whatever a client asks. A request while another is being served
    /// fails at once rather than queueing: every queued request would hold
    /// a connection and memory in the service for as long as the dump.
    pub async fn dump(&self, timeout: Duration) -> Result<proto::DumpReply, DumpError> {
        self.ready()?;
        let timeout = timeout.clamp(MIN_DUMP_TIMEOUT, MAX_DUMP_TIMEOUT);
        let handle = self.inner.runtime.get().cloned().ok_or("no runtime")?;
        let Ok(mut st) = self.inner.dumps.try_lock() else {
            return Err(DumpError::Busy);
        };
        if let Some(running) = &st.running {
            if !running.is_finished() {
                return Err(
                    "the previous dump has not finished: the runtime has not paused for it (tokio-rs/tokio#7478?)"
                        .into(),
                );
            }
            // Finished after its client gave up: too old to serve.
            st.running = None;
        }
        if let Some(t) = st.last {
            let since = t.elapsed();
            if since < self.inner.min_interval {
                // Several clients at once share one dump.
                if let Some(reply) = &st.cached {
                    return Ok((**reply).clone());
                }
                return Err(format!(
                    "the agent takes at most one dump per {:?} (last {:?} ago)",
                    self.inner.min_interval, since
                )
                .into());
            }
        }
        // Wait for the run queues to be short (see `dump::queued`).
        let start = Instant::now();
        loop {
            let queued = dump::queued(&handle);
            if queued <= dump::SAFE_QUEUED {
                break;
            }
            if start.elapsed() >= timeout {
                return Err(format!(
                    "the runtime stayed busy ({queued} tasks queued to run): a dump now could hang it (tokio-rs/tokio#7478), so none was taken"
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        st.last = Some(Instant::now());
        st.cached = None;
        let recorder = self.recorder();
        st.running = Some(tokio::spawn(async move {
            // The dump polls every task once and wakes it for another poll
            // right after: those polls are not the tasks' own.
            if let Some(r) = &recorder {
                r.dump_begins();
            }
            let captured = dump::capture(&handle).await;
            if let Some(r) = &recorder {
                r.dump_ends();
            }
            captured
        }));
        let Some(running) = st.running.as_mut() else {
            return Err("no dump".into());
        };
        let captured = tokio::time::timeout(timeout, running).await;
        let counter = match &captured {
            Ok(Ok(Ok(_))) => &self.inner.dumps_taken,
            _ => &self.inner.dump_failures,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let captured = match captured {
            Err(_) => {
                return Err(format!(
                    "the runtime did not pause for the dump within {timeout:?}: a worker is busy or blocked, or tokio hangs in the dump (tokio-rs/tokio#7478); no other dump until it ends"
                )
                .into());
            }
            Ok(Err(e)) => {
                st.running = None;
                return Err(format!("the dump failed: {e}").into());
            }
            Ok(Ok(Err(e))) => {
                st.running = None;
                return Err(e.into());
            }
            Ok(Ok(Ok(c))) => {
                st.running = None;
                c
            }
        };
        {
            let mut recent = self.inner.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.push(captured.window());
            if recent.len() > 8 {
                recent.remove(0);
            }
        }
        // Resolving symbols is CPU work: off the server's thread. The lock
        // stays held, so requests meanwhile get this reply from the cache.
        let recorder = self.recorder();
        let reply = tokio::task::spawn_blocking(move || {
            let mut reply = dump::resolve(captured);
            if let Some(r) = recorder {
                r.locate(&mut reply);
            }
            reply
        })
        .await
        .map_err(|e| format!("resolving the dump failed: {e}"))?;
        st.cached = Some(std::sync::Arc::new(reply.clone()));
        Ok(reply)
    }

    /// The last few dumps' capture windows, oldest first.
    pub fn recent_dumps(&self) -> Vec<proto::DumpWindow> {
        self.inner
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn min_interval(&self) -> Duration {
        self.inner.min_interval
    }
}

/// What console-subscriber's own `spawn` lets through to its layer.
fn console_filter(meta: &tracing::Metadata<'_>) -> bool {
    if meta.is_event() {
        return meta.target().starts_with("runtime") || meta.target().starts_with("tokio");
    }
    meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
}

/// `console_subscriber::init()` with task dumps: call it inside the runtime
/// (e.g. first thing in `#[tokio::main]`). Honours console-subscriber's
/// environment (`TOKIO_CONSOLE_BIND`, `TOKIO_CONSOLE_PUBLISH_INTERVAL`, …).
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
/// drivers enabled), with the hooks source installed, serves it with the
/// dumps on [`bind_address`], and runs `future` to completion. For other
/// runtime settings, build your own runtime and call
/// [`Agent::install_hooks`], [`Agent::attach`] and [`Agent::serve`].
#[cfg(tokio_unstable)]
pub fn run<F: std::future::Future>(future: F) -> F::Output {
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
    rt.block_on(future)
}
