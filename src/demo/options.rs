//! What the demo target runs, as flags choose it.

use std::time::Duration;

/// A workload the demo can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scenario {
    /// A TCP server without read timeouts; a client opens connections and never sends.
    IdleConn,
    /// Producers sending into a full bounded channel nobody drains.
    FullChannel,
    /// Worker loops with no exit path, sleeping forever.
    Sleepers,
    /// Requests awaiting a oneshot reply that never comes.
    Oneshot,
    /// Short-lived requests with steady churn and a fixed worker pool.
    Healthy,
    /// Tasks queued on a Mutex that one task holds forever.
    MutexWait,
    /// A CPU-busy task that yields often.
    Busy,
    /// Tasks waiting to receive on a channel whose sender is idle.
    Recv,
    /// Tasks waiting on a `Notify` nobody signals.
    Notify,
    /// Tasks awaiting another task's `JoinHandle`.
    Join,
    /// Worker loops that sleep a few seconds per round, forever (each round
    /// makes a new `Sleep`): the looping sleepers a lagging console links
    /// late.
    LoopSleepers,
    /// Tasks whose future returns `Pending` without keeping its waker:
    /// nothing can wake them again (a lost waker).
    LostWaker,
    /// tokio-console's warnings: large futures (1.5 KiB), futures tokio boxed
    /// (64 KiB), a task that mostly wakes itself, and one that never yields
    /// (it blocks a worker thread for good).
    Lints,
    /// Tasks whose names and fields carry escape sequences, HTML and 100 KB strings.
    Hostile,
    /// Very high churn: `--churn-rate` short-lived tasks a second.
    Churn,
    /// Scale: `--idle-tasks` sleeping tasks over ten spawn locations,
    /// spawned at `--idle-rate` a second.
    Idle,
    /// Six leaks at their own sites, from two a `--leak-every` to one
    /// every 60 (with the default 1s: 2/s down to 1/min), each waiting on
    /// another kind of thing: run it beside `healthy` to see slow leaks
    /// flagged in churn, however long you watch.
    SlowLeaks,
    /// An axum server (through taskscope-agent's drop-in) with no
    /// header-read timeout, and clients that ask once and keep their
    /// keep-alive connections open, quiet.
    AxumIdle,
    /// A tonic server (through taskscope-agent's drop-in) with a streaming
    /// RPC (the health service's `Watch`), and a client that opens calls
    /// and never closes one.
    GrpcStreams,
    /// reqwest calls with no timeout to an upstream that never answers
    /// (each call's task, and reqwest's connection task under it, wait
    /// forever), beside a healthy poller of a plain axum server.
    HttpNoTimeout,
    /// The service's own heartbeat: a task ticking every 5 ms that prints
    /// `heartbeat_gap_ms=N` on standard error each second (the longest gap
    /// between two ticks in that second): how long the runtime stopped.
    Heartbeat,
}

impl Scenario {
    pub const LEAKS: [Scenario; 7] = [
        Scenario::IdleConn,
        Scenario::FullChannel,
        Scenario::Sleepers,
        Scenario::Oneshot,
        Scenario::AxumIdle,
        Scenario::GrpcStreams,
        Scenario::HttpNoTimeout,
    ];
}

/// What the demo target serves taskscope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoSource {
    /// console-subscriber (tokio-console's protocol), with the agent's
    /// captures unless `--no-agent`.
    #[default]
    Console,
    /// taskscope-agent's hooks source alone (no console-subscriber).
    Hooks,
    /// Both on one port.
    Both,
}

/// How the demo target runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Console port; 0 picks a free one.
    pub port: u16,
    /// Serve the console on this Unix socket instead of a TCP port.
    pub unix: Option<std::path::PathBuf>,
    pub scenarios: Vec<Scenario>,
    /// One new leaked task per leak scenario this often.
    pub leak_every: Duration,
    /// Stop leaking after this many tasks per scenario.
    pub max_per_leak: usize,
    /// Healthy requests started per second.
    pub healthy_rate: u32,
    /// Short-lived tasks started per second by the churn scenario.
    pub churn_rate: u32,
    /// How many idle tasks the scale scenario holds, and how fast it spawns them.
    pub idle_tasks: usize,
    pub idle_rate: u32,
    /// Each `loop-sleepers` task's sleep per round.
    pub loop_sleep: Duration,
    pub publish_interval: Duration,
    pub retention: Duration,
    /// Exit when standard input closes (the parent went away).
    pub exit_on_stdin_close: bool,
    /// Serve captures with `taskscope-agent` beside the console.
    pub agent: bool,
    pub source: DemoSource,
}
