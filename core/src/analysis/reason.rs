//! The vocabulary of what a task is doing or waiting on: one set of
//! words for the TUI, reports, snapshots and the CLI. How a task gets its
//! reason is in `blocked.rs` (console data) and `stack.rs` (captures).

/// Coarse scheduler state of a live task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskState {
    Running,
    Scheduled,
    Idle,
    Completed,
}

impl TaskState {
    pub const ALL: [TaskState; 4] = [
        TaskState::Running,
        TaskState::Scheduled,
        TaskState::Idle,
        TaskState::Completed,
    ];

    pub fn key(self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Scheduled => "scheduled",
            TaskState::Idle => "idle",
            TaskState::Completed => "completed",
        }
    }

    pub fn from_key(key: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|s| s.key() == key)
    }
}

crate::keyed::keyed!(TaskState, key, "task state");

/// Why a task is where it is: one vocabulary for TUI, report and CLI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Inside a poll right now, or polled again and again (CPU-bound).
    Running,
    /// Woken, waiting for a worker thread.
    Scheduled,
    /// One poll started long ago and never ended: a blocking call on a worker.
    StuckInPoll,
    /// A `spawn_blocking` task in its closure.
    BlockingCall,
    /// `mpsc::Sender::send` on a full bounded channel.
    ChannelSend,
    /// Awaiting a `oneshot::Receiver` (a reply that has not come).
    Oneshot,
    Mutex,
    RwLock,
    Semaphore,
    Barrier,
    /// `Interval::tick`.
    Interval,
    /// A `sleep` linked to the task by time.
    Sleep,
    /// A tracked op of a kind taskscope has no name for.
    OtherResource,
    // From captures (the agent): waits console data cannot see.
    /// Reading a socket (TCP, Unix, UDP receive).
    SocketRead,
    /// Writing or flushing a socket.
    SocketWrite,
    /// `accept` on a listener.
    Accept,
    /// `mpsc` (or unbounded) `recv`.
    ChannelRecv,
    /// `Notify::notified`.
    Notify,
    /// `watch::Receiver::changed`.
    Watch,
    /// `broadcast::Receiver::recv`.
    Broadcast,
    /// Awaiting another task's `JoinHandle`.
    JoinHandle,
    /// A tokio leaf future taskscope has no name for (fs, process, signal…).
    OtherLeaf,
    /// Waiting on a future outside tokio (no tokio leaf in its stack).
    NotTokio,
    /// Idle, a waker outstanding, no tracked op: socket I/O, mpsc recv,
    /// Notify, watch, broadcast, JoinHandle, or a sleep we could not link.
    Untracked,
    /// As `Untracked`, with two wakers outstanding: a timeout around a wait.
    UntrackedWithTimeout,
    /// Idle and nothing holds its waker: it can never be woken.
    NoWaker,
    /// Idle, on a source that does not say on what (an older release's
    /// files; taskscope no longer reads a wait as `idle`).
    #[default]
    Idle,
    Completed,
    // Named waits of the HTTP and gRPC stack (from captures, or inferred
    // from a library's known shape: `sites.rs`).
    /// A server connection waiting to read a request: an idle keep-alive
    /// connection, or a client that never sends.
    RequestRead,
    /// A client connection reading from its server: a response not yet
    /// come, or idle in its pool.
    ResponseRead,
    /// Awaiting the response of a reqwest call.
    ReqwestResponse,
    /// Awaiting the response of a hyper (or hyper-util) client call.
    HyperResponse,
    /// Awaiting the response of a tonic (gRPC) call.
    GrpcResponse,
    /// Awaiting a child process.
    Process,
    /// Awaiting a signal.
    Signal,
    /// Idle, and the agent can capture the task but has not yet (it asks
    /// each second while someone watches).
    Uncaptured,
    /// Idle, and its wait is out of the agent's reach: a library spawned
    /// the task itself, unwrapped. Counted exactly; its wait unknown.
    OutOfReach,
}

impl Reason {
    pub const ALL: [Reason; 37] = [
        Reason::Running,
        Reason::Scheduled,
        Reason::StuckInPoll,
        Reason::BlockingCall,
        Reason::ChannelSend,
        Reason::Oneshot,
        Reason::Mutex,
        Reason::RwLock,
        Reason::Semaphore,
        Reason::Barrier,
        Reason::Interval,
        Reason::Sleep,
        Reason::OtherResource,
        Reason::SocketRead,
        Reason::SocketWrite,
        Reason::Accept,
        Reason::ChannelRecv,
        Reason::Notify,
        Reason::Watch,
        Reason::Broadcast,
        Reason::JoinHandle,
        Reason::OtherLeaf,
        Reason::NotTokio,
        Reason::Untracked,
        Reason::UntrackedWithTimeout,
        Reason::NoWaker,
        Reason::Idle,
        Reason::Completed,
        Reason::RequestRead,
        Reason::ResponseRead,
        Reason::ReqwestResponse,
        Reason::HyperResponse,
        Reason::GrpcResponse,
        Reason::Process,
        Reason::Signal,
        Reason::Uncaptured,
        Reason::OutOfReach,
    ];

    /// A stable identifier for files (snapshots, JSON reports).
    pub fn key(self) -> &'static str {
        match self {
            Reason::Running => "running",
            Reason::Scheduled => "scheduled",
            Reason::StuckInPoll => "stuck_in_poll",
            Reason::BlockingCall => "blocking_call",
            Reason::ChannelSend => "channel_send",
            Reason::Oneshot => "oneshot",
            Reason::Mutex => "mutex",
            Reason::RwLock => "rwlock",
            Reason::Semaphore => "semaphore",
            Reason::Barrier => "barrier",
            Reason::Interval => "interval",
            Reason::Sleep => "sleep",
            Reason::OtherResource => "other_resource",
            Reason::SocketRead => "socket_read",
            Reason::SocketWrite => "socket_write",
            Reason::Accept => "accept",
            Reason::ChannelRecv => "channel_recv",
            Reason::Notify => "notify",
            Reason::Watch => "watch",
            Reason::Broadcast => "broadcast",
            Reason::JoinHandle => "join_handle",
            Reason::OtherLeaf => "other_leaf",
            Reason::NotTokio => "not_tokio",
            Reason::Untracked => "untracked",
            Reason::UntrackedWithTimeout => "untracked_with_timeout",
            Reason::NoWaker => "no_waker",
            Reason::Idle => "idle",
            Reason::Completed => "completed",
            Reason::RequestRead => "request_read",
            Reason::ResponseRead => "response_read",
            Reason::ReqwestResponse => "reqwest_response",
            Reason::HyperResponse => "hyper_response",
            Reason::GrpcResponse => "grpc_response",
            Reason::Process => "process",
            Reason::Signal => "signal",
            Reason::Uncaptured => "uncaptured",
            Reason::OutOfReach => "out_of_reach",
        }
    }

    pub fn from_key(key: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.key() == key)
    }

    /// A short label for tables and mixes ("97% send").
    pub fn short(self) -> &'static str {
        match self {
            Reason::Running => "running",
            Reason::Scheduled => "scheduled",
            Reason::StuckInPoll => "stuck in poll",
            Reason::BlockingCall => "blocking call",
            Reason::ChannelSend => "chan send",
            Reason::Oneshot => "oneshot",
            Reason::Mutex => "mutex",
            Reason::RwLock => "rwlock",
            Reason::Semaphore => "semaphore",
            Reason::Barrier => "barrier",
            Reason::Interval => "interval",
            Reason::Sleep => "sleep",
            Reason::OtherResource => "resource",
            Reason::SocketRead => "socket read",
            Reason::SocketWrite => "socket write",
            Reason::Accept => "accept",
            Reason::ChannelRecv => "chan recv",
            Reason::Notify => "notify",
            Reason::Watch => "watch",
            Reason::Broadcast => "broadcast",
            Reason::JoinHandle => "join handle",
            Reason::OtherLeaf => "tokio wait",
            Reason::NotTokio => "non-tokio wait",
            Reason::Untracked => "untracked",
            Reason::UntrackedWithTimeout => "untracked+timeout",
            Reason::NoWaker => "lost waker",
            Reason::Idle => "idle",
            Reason::Completed => "completed",
            Reason::RequestRead => "request read",
            Reason::ResponseRead => "response read",
            Reason::ReqwestResponse => "reqwest response",
            Reason::HyperResponse => "hyper response",
            Reason::GrpcResponse => "gRPC response",
            Reason::Process => "child process",
            Reason::Signal => "signal",
            Reason::Uncaptured => "not captured yet",
            Reason::OutOfReach => "out of reach",
        }
    }

    /// The phrase used in sentences: "blocked on channel send for 7m12s".
    pub fn phrase(self) -> &'static str {
        match self {
            Reason::Running => "running",
            Reason::Scheduled => "scheduled (woken, waiting for a worker)",
            Reason::StuckInPoll => "stuck inside one poll (blocking call on a worker thread?)",
            Reason::BlockingCall => "running a spawn_blocking closure",
            Reason::ChannelSend => "blocked on channel send (bounded channel full)",
            Reason::Oneshot => "waiting on a oneshot reply",
            Reason::Mutex => "waiting for a Mutex lock",
            Reason::RwLock => "waiting for an RwLock",
            Reason::Semaphore => "waiting for a Semaphore permit",
            Reason::Barrier => "waiting at a Barrier",
            Reason::Interval => "waiting for an Interval tick",
            Reason::Sleep => "sleeping",
            Reason::OtherResource => "waiting on a tracked resource",
            Reason::SocketRead => "blocked on socket read",
            Reason::SocketWrite => "blocked on socket write",
            Reason::Accept => "waiting to accept a connection",
            Reason::ChannelRecv => "waiting to receive on a channel",
            Reason::Notify => "waiting on a Notify",
            Reason::Watch => "waiting for a watch change",
            Reason::Broadcast => "waiting on a broadcast receive",
            Reason::JoinHandle => "waiting for another task to finish (JoinHandle)",
            Reason::OtherLeaf => "waiting in a tokio future (see its stack)",
            Reason::NotTokio => "waiting on a future outside tokio",
            Reason::Untracked => "untracked wait (socket I/O, channel recv, Notify, JoinHandle…)",
            Reason::UntrackedWithTimeout => {
                "untracked wait with a timeout (socket I/O, channel recv…)"
            }
            Reason::NoWaker => "idle with no waker: a lost waker, nothing can wake it again",
            Reason::Idle => "idle (on what, this file does not say)",
            Reason::Completed => "completed",
            Reason::RequestRead => {
                "a server connection waiting to read a request (idle keep-alive, or a client that never sends)"
            }
            Reason::ResponseRead => {
                "a client connection reading from its server (a response not come, or idle in its pool)"
            }
            Reason::ReqwestResponse => "awaiting an HTTP response (a reqwest call)",
            Reason::HyperResponse => "awaiting an HTTP response (a hyper client call)",
            Reason::GrpcResponse => "awaiting a gRPC response (a tonic call)",
            Reason::Process => "waiting for a child process",
            Reason::Signal => "waiting for a signal",
            Reason::Uncaptured => {
                "idle; its wait is not captured yet (the agent asks each second while someone watches)"
            }
            Reason::OutOfReach => {
                "idle; its wait is out of the agent's reach (a library spawned it, not wrapped for captures)"
            }
        }
    }

    /// Whether the two name the same wait, one more precisely: an untracked
    /// wait and what a capture shows it to be, or a bare semaphore and the
    /// channel send or lock built on one. A diff between a snapshot with a
    /// capture and one without does not call that a change.
    pub fn same_wait(self, other: Reason) -> bool {
        let untracked = |r: Reason| {
            matches!(
                r,
                Reason::Untracked
                    | Reason::UntrackedWithTimeout
                    | Reason::Idle
                    | Reason::Uncaptured
                    | Reason::OutOfReach
            )
        };
        let seen_only_in_captures = |r: Reason| {
            matches!(
                r,
                Reason::SocketRead
                    | Reason::SocketWrite
                    | Reason::Accept
                    | Reason::ChannelRecv
                    | Reason::Notify
                    | Reason::Watch
                    | Reason::Broadcast
                    | Reason::JoinHandle
                    | Reason::OtherLeaf
                    | Reason::NotTokio
                    | Reason::Sleep
                    | Reason::RequestRead
                    | Reason::ResponseRead
                    | Reason::ReqwestResponse
                    | Reason::HyperResponse
                    | Reason::GrpcResponse
                    | Reason::Process
                    | Reason::Signal
            )
        };
        // A read named by what it reads, a response by its client.
        let socket = |r: Reason| {
            matches!(
                r,
                Reason::SocketRead | Reason::RequestRead | Reason::ResponseRead
            )
        };
        let response = |r: Reason| {
            matches!(
                r,
                Reason::Oneshot
                    | Reason::ReqwestResponse
                    | Reason::HyperResponse
                    | Reason::GrpcResponse
            )
        };
        let on_semaphore =
            |r: Reason| matches!(r, Reason::ChannelSend | Reason::Mutex | Reason::RwLock);
        self == other
            || (untracked(self) && seen_only_in_captures(other))
            || (untracked(other) && seen_only_in_captures(self))
            || (self == Reason::Semaphore && on_semaphore(other))
            || (other == Reason::Semaphore && on_semaphore(self))
            || (socket(self) && socket(other))
            || (response(self) && response(other))
    }

    /// True when the task is waiting rather than working.
    pub fn is_wait(self) -> bool {
        !matches!(
            self,
            Reason::Running | Reason::Scheduled | Reason::BlockingCall | Reason::Completed
        )
    }
}

crate::keyed::keyed!(Reason, key, "blocked-on reason");

/// A reason and how many tasks of a group share it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReasonCount {
    pub reason: Reason,
    pub tasks: u32,
    /// The longest time any of them has been in it.
    pub longest: std::time::Duration,
    /// How many of them have this reason from a capture (a fact) rather
    /// than from console data.
    pub captured: u32,
    /// How many of them have it inferred (not seen): from their site's
    /// captured tasks, or from a library's known shape.
    pub inferred: u32,
}

/// `part` of `total` as a rounded percentage (0 when `total` is 0).
pub fn percent(part: u32, total: u32) -> u32 {
    if total == 0 {
        0
    } else {
        ((u64::from(part) * 100 + u64::from(total) / 2) / u64::from(total)) as u32
    }
}

/// Whether most of `tasks` have their reason from a capture (a fact)
/// rather than from console data: such a reason is marked `*`.
pub fn mostly_captured(captured: u32, tasks: u32) -> bool {
    u64::from(captured) * 2 > u64::from(tasks)
}

/// Whether most of `tasks` have their reason inferred (from their site's
/// captured tasks, or a library's known shape), not seen: marked `~`.
pub fn mostly_inferred(inferred: u32, tasks: u32) -> bool {
    u64::from(inferred) * 2 > u64::from(tasks)
}

/// One part of a blocked-on mix.
pub struct MixPart<'a> {
    pub percent: u32,
    pub label: &'a str,
    /// Marked `*`: known from a capture.
    pub captured: bool,
    /// Marked `~`: inferred, not seen.
    pub inferred: bool,
}

/// "97% chan send*, 3% running": the first `max_parts` parts, then "…"
/// when `more` were left out.
pub fn mix<'a>(
    parts: impl IntoIterator<Item = MixPart<'a>>,
    max_parts: usize,
    more: bool,
) -> String {
    let mut out: Vec<String> = parts
        .into_iter()
        .take(max_parts)
        .map(|p| {
            let mark = match (p.captured, p.inferred) {
                (true, _) => "*",
                (false, true) => "~",
                _ => "",
            };
            format!("{}% {}{mark}", p.percent, p.label)
        })
        .collect();
    if more {
        out.push("…".into());
    }
    out.join(", ")
}

/// "97% chan send*, 3% running": a group's blocked-on mix, largest first,
/// the first `max_parts` parts (`*` from a capture, `~` inferred).
pub fn mix_text(reasons: &[ReasonCount], max_parts: usize) -> String {
    let total: u32 = reasons.iter().map(|r| r.tasks).sum();
    if total == 0 {
        return String::new();
    }
    let parts = reasons.iter().map(|r| MixPart {
        percent: percent(r.tasks, total),
        label: r.reason.short(),
        captured: mostly_captured(r.captured, r.tasks),
        inferred: mostly_inferred(r.inferred, r.tasks),
    });
    mix(parts, max_parts, reasons.len() > max_parts)
}
