#![doc = include_str!("../README.md")]

// The modules, for a reader of the source: `agent` (the `Agent` and the
// state its parts share), `config` (the `Builder` and the environment),
// `port` (the agent's own listener: gRPC and plain HTTP), `waits` (asking
// tasks for captures, and the reply), `access` and `limits` (who may ask
// what, and how much), `metrics` and `profile` (`/metrics` and
// `/debug/pprof/tasks`), `hooks` (the record of every task), `capture`,
// `spawn`, `untraced` and `stacks` (the wrappers that make a task's wait
// capturable), `slot` (where a wrapper and the record meet), `server` (the drop-in servers), `live` (the live tasks,
// read in-process), `resolve` and `wire` (stacks to names, facts to the
// wire), `census` (console mode's counts).

mod access;
mod agent;
mod capture;
#[cfg(feature = "console")]
mod census;
mod config;
mod hooks;
mod limits;
pub mod live;
mod metrics;
mod port;
mod profile;
mod resolve;
mod server;
mod slot;
mod spawn;
mod stacks;
#[doc(hidden)]
pub mod testing;
mod untraced;
mod waits;
mod wire;

pub use access::TokenError;
pub use agent::Agent;
pub use capture::{Traced, traced};
pub use config::{Builder, ConfigError, ServerAddr};
#[cfg(tokio_unstable)]
pub use hooks::{Callback, OtherHooks};
pub use limits::Limits;
pub use port::ServeError;
pub use server::{axum, tonic};
pub use spawn::{TracedExecutor, spawn};
pub use waits::WaitsError;

/// The wire's messages and gRPC services (the `taskscope-proto` crate).
pub use taskscope_proto as proto;

/// Runs `future` to completion on the runtime `#[tokio::main]` would
/// build, with the agent's hooks source installed and served: the
/// always-on source in one call, configured from the environment
/// ([table](crate#environment)). Replace
///
/// ```no_run
/// # async fn serve() {}
/// #[tokio::main]
/// async fn main() {
///     serve().await
/// }
/// ```
///
/// with
///
/// ```no_run
/// # async fn serve() {}
/// fn main() {
///     taskscope_agent::run(serve())
/// }
/// ```
///
/// The runtime is multi-threaded with every driver enabled; `future` runs
/// as a task of it spawned with [`spawn`], so its waits are known too, and
/// its output is returned. The agent serves on `TASKSCOPE_AGENT_BIND`
/// (default `127.0.0.1:6669`) from a thread of its own. If it cannot (a
/// variable holds a value it does not take, the token file cannot be
/// read, the port is taken), it says why on standard error and the
/// service runs without it. For other runtime settings, build your own
/// runtime with [`Agent::install_hooks`] and call [`Agent::serve`].
///
/// Needs `--cfg tokio_unstable`.
///
/// # Panics
///
/// If the runtime cannot be built, as `#[tokio::main]` does; and with
/// `future`'s own panic, resumed here.
#[cfg(tokio_unstable)]
#[track_caller]
pub fn run<F>(future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let agent = Agent::builder().with_default_env().build();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Ok(agent) = &agent {
        agent.install_hooks(&mut builder);
    }
    let rt = builder
        .build()
        .expect("taskscope-agent: building the tokio runtime");
    let serving = match &agent {
        Ok(agent) => agent.serve().map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(why) = serving {
        // Without an agent, the default path: standard error.
        match &agent {
            Ok(agent) => agent.warn(&format!("taskscope-agent: not serving: {why}")),
            Err(_) => eprintln!("taskscope-agent: not serving: {why}"),
        }
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

/// `console_subscriber::init()` with the agent's `/metrics`, task profile
/// and waits on the same port: console-subscriber's layer as the global
/// `tracing` subscriber, configured from the environment (the agent's
/// [table](crate#environment), and console-subscriber's own variables,
/// `TOKIO_CONSOLE_PUBLISH_INTERVAL`, … for its layer). Call it inside the
/// runtime (e.g. first thing in `#[tokio::main]`). If the agent cannot be
/// built from the environment, it says why on standard error and
/// installs nothing. Needs the `console` feature.
///
/// # Panics
///
/// If a global `tracing` subscriber is already set, as
/// `console_subscriber::init()` does.
#[cfg(feature = "console")]
pub fn init() {
    use tracing_subscriber::prelude::*;
    let agent = match Agent::builder().with_default_env().build() {
        Ok(agent) => agent,
        Err(e) => {
            // Without an agent, the default path: standard error.
            eprintln!("taskscope-agent: not serving: {e}");
            return;
        }
    };
    let console = console_subscriber::ConsoleLayer::builder().with_default_env();
    match agent.serve_console(console) {
        Ok(layer) => tracing_subscriber::registry().with(layer).init(),
        Err(e) => agent.warn(&format!("taskscope-agent: not serving: {e}")),
    }
}
