//! The agent's own port: one listener, bounded by `limits` and guarded by
//! `access`, serving gRPC (the hooks source's `Tasks`, the waits, and
//! console-subscriber's `Instrument` in console mode) and plain HTTP
//! (`/metrics`, `/debug/pprof/tasks`, `/`), from a thread and a
//! current-thread runtime of its own: never on the service's workers.

mod http;
mod tasks_service;
mod waits_service;

use crate::Agent;
use crate::access::{Policy, TOKEN_RECHECK, Token};
use crate::config::ServerAddr;
use crate::limits::{Admitted, MAX_BLOCKING_THREADS};
use http::{HttpLayer, PolicyCell};
use std::io;
use std::sync::mpsc;
use std::time::Duration;
use tasks_service::TasksService;
use tower_layer::{Identity, Stack};
use waits_service::WaitsService;

pub(crate) use http::{exposition, task_profile};

/// How long [`Agent::serve`] waits for its server to listen.
const BIND_WAIT: Duration = Duration::from_secs(10);

/// Why the agent is not serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No runtime has the agent's hooks: the hooks source, which the
    /// server serves, records nothing yet.
    #[error("no hooks recorder: call Agent::install_hooks on the runtime builder first")]
    NoHooks,
    /// The address could not be listened on (in use, not this host's, a
    /// Unix socket's directory missing).
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: ServerAddr,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// The server's thread or its runtime could not be made.
    #[error("cannot start the agent's server thread: {0}")]
    Thread(#[source] io::Error),
    /// The server did not listen within 10 s.
    #[error("the agent's server did not listen within 10 s")]
    NotListening,
}

/// The server thread's runtime: one thread, I/O and timers, and at most
/// [`MAX_BLOCKING_THREADS`] more for walks, however many clients ask.
fn server_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("taskscope-walk")
        .build()
}

/// Told once the server listens, or why it does not.
type Announce = mpsc::Sender<Result<ServerAddr, ServeError>>;

impl Agent {
    /// Serves the hooks source and the waits on the agent's
    /// [address](crate::Builder::bind), from a thread of its own (named
    /// `taskscope-agent`, with a current-thread runtime and at most 5
    /// threads more for walks, `taskscope-walk`: never the service's
    /// workers), for the rest of the process's life. Returns once the port
    /// is listening, with the address it listens on (the port, when 0 was
    /// asked). It blocks the calling thread until then, a few
    /// milliseconds: call it before the service's runtime runs, as
    /// [`run`](crate::run) does, or from a blocking context.
    ///
    /// A token is required of inspection wherever one is set; without one,
    /// an address other than loopback serves read-only, and the agent
    /// says so through its [warnings](crate::Builder::on_warning).
    ///
    /// # Errors
    ///
    /// [`ServeError::NoHooks`] before [`install_hooks`](Agent::install_hooks);
    /// [`ServeError::Listen`] when the address cannot be listened on;
    /// [`ServeError::Thread`] when the server's thread or runtime cannot be
    /// made; [`ServeError::NotListening`] when it does not listen within
    /// 10 s.
    pub fn serve(&self) -> Result<ServerAddr, ServeError> {
        if self.recorder().is_none() {
            return Err(ServeError::NoHooks);
        }
        let agent = self.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("taskscope-agent".into())
            .spawn(move || {
                let rt = match server_runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(ServeError::Thread(e)));
                        return;
                    }
                };
                if let Err(e) = rt.block_on(serve_hooks(agent, tx.clone())) {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(ServeError::Thread)?;
        match rx.recv_timeout(BIND_WAIT) {
            Ok(res) => res,
            Err(_) => Err(ServeError::NotListening),
        }
    }

    /// console-subscriber's layer, built from `builder`, with a thread of
    /// its own serving console-subscriber's protocol beside the agent's
    /// `/metrics`, task profile and waits on the agent's
    /// [address](crate::Builder::bind) (console-subscriber's own address
    /// setting is not used), as `console_subscriber::Builder::spawn` does.
    /// Add the layer to your subscriber stack. Needs the `console`
    /// feature, and tokio's `tracing` (`--cfg tokio_unstable`).
    ///
    /// It does not wait for the port: a failure to listen is said through
    /// the agent's [warnings](crate::Builder::on_warning).
    ///
    /// # Errors
    ///
    /// [`ServeError::Thread`] when the server's thread cannot be made.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tracing_subscriber::prelude::*;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let agent = taskscope_agent::Agent::builder().with_default_env().build()?;
    /// let console = console_subscriber::ConsoleLayer::builder().with_default_env();
    /// tracing_subscriber::registry()
    ///     .with(agent.serve_console(console)?)
    ///     .init();
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "console")]
    pub fn serve_console<S>(
        &self,
        builder: console_subscriber::Builder,
    ) -> Result<impl tracing_subscriber::Layer<S> + use<S>, ServeError>
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
                let res = match server_runtime() {
                    Ok(rt) => rt.block_on(serve_console(server, agent.clone())),
                    Err(e) => Err(ServeError::Thread(e)),
                };
                if let Err(e) = res {
                    agent.warn(&format!("taskscope-agent: not serving: {e}"));
                }
            })
            .map_err(ServeError::Thread)?;
        let census = self
            .inner
            .census
            .get_or_init(crate::census::Census::default)
            .layer();
        Ok(layer
            .with_filter(FilterFn::new(console_filter))
            .and_then(census.with_filter(FilterFn::new(|m| {
                m.name() == "runtime.spawn" && m.target() == "tokio::task"
            }))))
    }
}

/// What console-subscriber's own `spawn` lets through to its layer.
#[cfg(feature = "console")]
fn console_filter(meta: &tracing::Metadata<'_>) -> bool {
    if meta.is_event() {
        return meta.target().starts_with("runtime") || meta.target().starts_with("tokio");
    }
    meta.name().starts_with("runtime.") || meta.target().starts_with("tokio")
}

/// console-subscriber's `Instrument`, the waits and, with a hooks
/// recorder, the `Tasks` service, on one server.
#[cfg(feature = "console")]
async fn serve_console(server: console_subscriber::Server, agent: Agent) -> Result<(), ServeError> {
    let console_subscriber::ServerParts {
        instrument_server,
        aggregator,
        ..
    } = server.into_parts();
    let aggregator = tokio::spawn(aggregator.run());
    let (tasks, producer) = match agent.recorder() {
        Some(r) => {
            let (svc, producer) = TasksService::new(r, agent.budget());
            (Some(svc), Some(tokio::spawn(producer)))
        }
        None => (None, None),
    };
    let (mut server, policy) = grpc_server(&agent);
    let router = server
        .add_service(instrument_server)
        .add_service(WaitsService::server(agent.clone()))
        .add_optional_service(tasks);
    let res = listen(router, &agent, &policy, None).await;
    aggregator.abort();
    if let Some(p) = producer {
        p.abort();
    }
    res
}

/// The hooks source alone: the waits and the `Tasks` service, no console.
async fn serve_hooks(agent: Agent, announce: Announce) -> Result<(), ServeError> {
    let recorder = agent.recorder().ok_or(ServeError::NoHooks)?;
    let (tasks, producer) = TasksService::new(recorder, agent.budget());
    let producer = tokio::spawn(producer);
    let (mut server, policy) = grpc_server(&agent);
    let router = server
        .add_service(WaitsService::server(agent.clone()))
        .add_service(tasks);
    let res = listen(router, &agent, &policy, Some(announce)).await;
    producer.abort();
    res
}

/// tonic's server with `GET /metrics` (and HTTP/1.1, which scrapers
/// speak) and the access check in front of the gRPC services.
fn grpc_server(
    agent: &Agent,
) -> (
    tonic::transport::Server<Stack<HttpLayer, Identity>>,
    PolicyCell,
) {
    let policy = PolicyCell::default();
    let server = tonic::transport::Server::builder()
        .accept_http1(true)
        // Per connection: a few requests at once, and HTTP/2's own bounds
        // stated (rapid resets end the connection, dead peers are found).
        .concurrency_limit_per_connection(8)
        .max_concurrent_streams(Some(16))
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_local_error_reset_streams(Some(64))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(HttpLayer::new(agent.clone(), policy.clone()));
    (server, policy)
}

/// Looks at the token file again every [`TOKEN_RECHECK`], on a blocking
/// thread, one check at a time: a file system that hangs holds this check
/// only, never the server's thread or a request.
async fn follow_token_file(token: Token, agent: Agent) {
    let mut every = tokio::time::interval(TOKEN_RECHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let t = token.clone();
        match tokio::task::spawn_blocking(move || t.refresh()).await {
            Ok(Some(said)) => agent.warn(&said),
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

/// Listens on the agent's address, tells `announce` where (or why not),
/// and serves `router` until the server fails, which is then said through
/// the agent's warnings.
async fn listen(
    router: tonic::transport::server::Router<Stack<HttpLayer, Identity>>,
    agent: &Agent,
    policy: &PolicyCell,
    announce: Option<Announce>,
) -> Result<(), ServeError> {
    let token = agent.inner.config.token.clone();
    if let Some(t) = token.clone().filter(|t| t.follows_a_file()) {
        tokio::spawn(follow_token_file(t, agent.clone()));
    }
    let gate = agent.gate();
    let listening = |bound: ServerAddr, local: bool| {
        let p = Policy {
            token: token.clone(),
            local,
        };
        if let Some(line) = p.announcement(&bound.to_string()) {
            agent.warn(&line);
        }
        let _ = policy.set(p);
        agent.set_bound(bound.clone());
        if let Some(tx) = &announce {
            let _ = tx.send(Ok(bound));
        }
    };
    let addr = agent.inner.config.bind.clone();
    let cannot = |source: io::Error| ServeError::Listen {
        addr: addr.clone(),
        source,
    };
    let served = match &addr {
        ServerAddr::Tcp(a) => {
            let listener = tokio::net::TcpListener::bind(a).await.map_err(cannot)?;
            let bound = listener.local_addr().map_err(cannot)?;
            listening(ServerAddr::Tcp(bound), bound.ip().is_loopback());
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router
                .serve_with_incoming(Admitted::new(gate, incoming))
                .await
        }
        #[cfg(unix)]
        ServerAddr::Unix(path) => {
            let listener = tokio::net::UnixListener::bind(path).map_err(cannot)?;
            // Only the service's own user may connect.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(cannot)?;
            listening(addr.clone(), true);
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            router
                .serve_with_incoming(Admitted::new(gate, incoming))
                .await
        }
    };
    if let Err(e) = served {
        agent.warn(&format!("taskscope-agent: the server stopped: {e}"));
    }
    Ok(())
}
