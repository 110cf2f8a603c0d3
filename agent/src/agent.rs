//! The agent: its settings, the hooks source it installs on a runtime, and
//! the state its server, its waits and its metrics share. How it serves is
//! `port`'s (`Agent::serve`); the waits protocol is `waits`'.

use crate::config::{Builder, Config, ConfigError, ServerAddr};
use crate::hooks::{Budget, Recorder};
use crate::limits::{Counters, Gate};
use crate::metrics::{AgentHealth, Exporter, SiteStat};
use crate::proto;
use crate::waits::{Target, Waits, WaitsError};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The agent: the hooks source's record of a runtime's tasks, the
/// captures' budget, and the server that serves them to taskscope.
///
/// Made with [`Agent::builder`]; cheap to clone (one `Arc`), every clone
/// the same agent. [`run`](crate::run) makes one from the environment and
/// does everything else; with a runtime of your own, install its hooks
/// with [`install_hooks`](Agent::install_hooks) and
/// [`serve`](Agent::serve) it.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let agent = taskscope_agent::Agent::builder().with_default_env().build()?;
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// builder.enable_all();
/// agent.install_hooks(&mut builder);
/// let runtime = builder.build()?;
/// let bound = agent.serve()?;
/// println!("taskscope connect {bound}");
/// runtime.block_on(async {
///     // the service
/// });
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Agent {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    /// The hooks source, once installed on a runtime builder.
    recorder: OnceLock<Recorder>,
    /// Per-location counts from the tasks' spans (console mode).
    #[cfg(feature = "console")]
    pub(crate) census: OnceLock<crate::census::Census>,
    /// The waits protocol's state.
    pub(crate) waits: Waits,
    /// `/metrics`: the cap on locations and the counters' last values.
    pub(crate) exporter: Exporter,
    /// One scrape walks the tasks at a time: the permit goes with the
    /// walk to its blocking thread, so a client that gives up (resets the
    /// stream) does not free it while the walk still runs.
    pub(crate) scrape: Arc<tokio::sync::Semaphore>,
    /// Inspection requests refused for want of the token.
    access_refused: AtomicU64,
    /// What the bounds on clients did.
    pub(crate) connections: Arc<Counters>,
    /// Filled once the server is listening (the port, when 0 was asked).
    bound: Mutex<Option<ServerAddr>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("bind", &self.inner.config.bind)
            .field("hooks", &self.inner.recorder.get().is_some())
            .field("serving", &*self.inner.bound.lock())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The agent, with these settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Env`] when an environment variable read by
    /// [`with_default_env`](Builder::with_default_env) holds a value it
    /// does not take; [`ConfigError::Token`] when the token is not one the
    /// agent accepts (shorter than 16 bytes, not printable ASCII) or its
    /// file cannot be read. The agent never falls back to serving without
    /// a token that was asked for.
    pub fn build(self) -> Result<Agent, ConfigError> {
        Ok(Agent::with_config(self.config()?))
    }
}

impl Agent {
    /// A [`Builder`] with every setting at its default; see there.
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn with_config(config: Config) -> Agent {
        crate::slot::enable();
        Agent {
            inner: Arc::new(Inner {
                waits: Waits::new(config.budget, config.min_interval),
                exporter: Exporter::new(config.metrics_max_locations),
                config,
                recorder: OnceLock::new(),
                #[cfg(feature = "console")]
                census: OnceLock::new(),
                scrape: Arc::new(tokio::sync::Semaphore::new(1)),
                access_refused: AtomicU64::new(0),
                connections: Arc::default(),
                bound: Mutex::new(None),
            }),
        }
    }

    /// Installs the hooks source on a runtime builder: from then on the
    /// agent keeps an exact record of every task of the runtimes it builds
    /// (spawn location, spawning task, polls, busy time, poll state). It
    /// sets the four task hooks and `on_thread_park` (where a worker with
    /// nothing to run folds the agent's event logs), replacing callbacks
    /// set on the builder before; to keep yours, use
    /// [`install_hooks_with`](Agent::install_hooks_with).
    ///
    /// Needs `--cfg tokio_unstable` (tokio's runtime hooks), not tokio's
    /// `tracing` feature.
    #[cfg(tokio_unstable)]
    pub fn install_hooks(&self, builder: &mut tokio::runtime::Builder) {
        self.install_hooks_with(builder, crate::OtherHooks::default());
    }

    /// [`install_hooks`](Agent::install_hooks), calling `other`'s
    /// callbacks after the agent's own on each event (a service's own
    /// hooks, or another tool's: tokio-metrics' task monitor, a flight
    /// recorder).
    #[cfg(tokio_unstable)]
    pub fn install_hooks_with(
        &self,
        builder: &mut tokio::runtime::Builder,
        other: crate::OtherHooks,
    ) {
        let recorder = self
            .inner
            .recorder
            .get_or_init(|| Recorder::with_split(self.inner.config.split.clone()));
        recorder.install_with(builder, other);
    }

    /// The waits the agent knows: asks the tasks it can reach (those
    /// spawned with [`spawn`](crate::spawn), [`traced`](crate::traced), the
    /// drop-in servers) for a round of captures, unless one was asked less
    /// than the [minimum interval](Builder::min_interval) ago, waits up to
    /// `timeout` (clamped to 100 ms..2 s) for them to answer on their own
    /// next poll, and returns every capture that holds. Nothing here
    /// pauses the runtime: a task that does not answer in time is simply
    /// not in this round. This is what taskscope's waits request gets.
    ///
    /// Call it from any runtime but the one watched, or from a task of it:
    /// the tasks answer on their next poll, so the runtime must be running.
    ///
    /// # Errors
    ///
    /// [`WaitsError::Busy`] at once while another request is served (or
    /// the walk of one whose caller gave up still runs): ask again
    /// shortly. [`WaitsError::Unsupported`] on a build that cannot
    /// capture (not Linux on x86, x86_64, aarch64 or s390x, or without
    /// `--cfg tokio_unstable`). [`WaitsError::Walk`] if the walk of the
    /// tasks panicked.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future ends the request. A walk of the
    /// tasks it already started on a blocking thread runs to its end, and
    /// requests until then get [`WaitsError::Busy`].
    pub async fn waits(&self, timeout: Duration) -> Result<proto::DumpReply, WaitsError> {
        let target = Target {
            recorder: self.recorder(),
            holds_wakers: self.serves_console(),
        };
        self.inner.waits.reply(target, timeout).await
    }

    /// The hooks recorder, once installed.
    pub(crate) fn recorder(&self) -> Option<Recorder> {
        self.inner.recorder.get().cloned()
    }

    /// How many tasks a capture round asks, per location and in all.
    pub(crate) fn budget(&self) -> Budget {
        self.inner.waits.budget()
    }

    /// Whether console-subscriber is served beside the agent (whose waker
    /// counts then include the wakers the agent holds for captures).
    pub(crate) fn serves_console(&self) -> bool {
        #[cfg(feature = "console")]
        {
            self.inner.census.get().is_some()
        }
        #[cfg(not(feature = "console"))]
        {
            false
        }
    }

    /// Says `line` to the service's owner (see `Builder::on_warning`).
    pub(crate) fn warn(&self, line: &str) {
        (self.inner.config.warn)(line)
    }

    /// The connection gate for a server about to listen.
    pub(crate) fn gate(&self) -> Gate {
        Gate::new(self.inner.config.limits, self.inner.connections.clone())
    }

    pub(crate) fn refused_access(&self) {
        self.inner.access_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The address the server listens on, once it does.
    pub(crate) fn bound(&self) -> Option<ServerAddr> {
        self.inner.bound.lock().clone()
    }

    pub(crate) fn set_bound(&self, addr: ServerAddr) {
        *self.inner.bound.lock() = Some(addr);
    }

    /// Every spawn location's counts now, from the hooks source if it is
    /// installed, else from the tasks' spans (console mode), else none.
    pub(crate) fn site_stats(&self) -> Vec<SiteStat> {
        if let Some(r) = self.recorder() {
            let agg = r.groups();
            let now = agg.now_unix_ns.saturating_sub(agg.epoch_unix_ns).max(0) as u64;
            return agg
                .groups
                .iter()
                .map(|g| SiteStat {
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
    pub(crate) fn health(&self) -> AgentHealth {
        let (waits_replies, waits_refused) = self.inner.waits.counts();
        let c = &self.inner.connections;
        AgentHealth {
            source: if self.recorder().is_some() {
                "hooks"
            } else {
                "console"
            },
            waits_replies,
            waits_refused,
            inspection_refused: self.inner.access_refused.load(Ordering::Relaxed),
            connections: c.open.load(Ordering::Relaxed),
            connections_refused: c.refused.load(Ordering::Relaxed),
            connections_timed_out: c.timed_out.load(Ordering::Relaxed),
            accept_failed: c.accept_failed.load(Ordering::Relaxed),
            captures: self
                .recorder()
                .map(|r| r.capture_stats())
                .unwrap_or_default(),
        }
    }
}
