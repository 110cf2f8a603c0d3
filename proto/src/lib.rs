//! The wire messages of taskscope-agent's task-dump service (protobuf via
//! prost, written by hand so that neither side needs `protoc`). Service
//! `taskscope.agent.v1.TaskDumps`, served beside console-subscriber's
//! `Instrument` service on its port. The agent serves them; the taskscope
//! viewer calls them without linking the agent.
#![forbid(unsafe_code)]

pub mod names;

/// The gRPC service name.
pub const SERVICE: &str = "taskscope.agent.v1.TaskDumps";
/// Unary `Info(InfoRequest) -> InfoReply`: cheap, used to detect the agent.
pub const INFO_PATH: &str = "/taskscope.agent.v1.TaskDumps/Info";
/// Unary `Dump(DumpRequest) -> DumpReply`: the tasks' waits. The agent
/// asks a round of per-task captures and replies with every capture that
/// holds; it never pauses the runtime.
pub const DUMP_PATH: &str = "/taskscope.agent.v1.TaskDumps/Dump";

#[derive(Clone, PartialEq, prost::Message)]
pub struct InfoRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InfoReply {
    /// The agent crate's version.
    #[prost(string, tag = "1")]
    pub agent_version: String,
    /// Whether this build can take task dumps at all.
    #[prost(bool, tag = "2")]
    pub dumps_supported: bool,
    /// Why not, when it cannot (platform, cfg, no runtime attached).
    #[prost(string, tag = "3")]
    pub why_not: String,
    /// Least time the agent keeps between two dumps (it refuses sooner).
    #[prost(uint64, tag = "4")]
    pub min_interval_ms: u64,
    /// The most recent dumps (for any client): a dump polls and wakes every
    /// task, which console data shows as the tasks' own activity.
    #[prost(message, repeated, tag = "5")]
    pub recent_dumps: Vec<DumpWindow>,
    /// The agent serves console-subscriber too, and holds the waker of
    /// each wrapped task it has not captured yet: console-subscriber counts
    /// that waker among the task's own (`DumpReply::agent_wakers` names
    /// the tasks).
    #[prost(bool, tag = "6")]
    pub holds_wakers: bool,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct DumpWindow {
    /// When the capture began and ended, ns since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub start_unix_ns: i64,
    #[prost(int64, tag = "2")]
    pub end_unix_ns: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DumpRequest {
    /// Give up after this long (the dump waits for every worker to park);
    /// 0 means the agent's default (5 s).
    #[prost(uint64, tag = "1")]
    pub timeout_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DumpReply {
    /// Distinct traces; tasks refer to them by index.
    #[prost(message, repeated, tag = "1")]
    pub traces: Vec<Trace>,
    #[prost(message, repeated, tag = "2")]
    pub tasks: Vec<TaskTrace>,
    /// How long the runtime's workers were held for the capture (0 from
    /// an agent that captures one task at a time: it never pauses).
    #[prost(uint64, tag = "3")]
    pub capture_ns: u64,
    /// How long resolving symbols took (on the agent's own thread, not on
    /// the target's runtime).
    #[prost(uint64, tag = "4")]
    pub resolve_ns: u64,
    /// Wall clock when the capture began, ns since the Unix epoch.
    #[prost(int64, tag = "5")]
    pub taken_unix_ns: i64,
    /// Distinct spawn locations; tasks refer to them (`TaskTrace::location`).
    #[prost(message, repeated, tag = "6")]
    pub locations: Vec<Loc>,
    /// Captures that hold but were left out of this reply (its size is
    /// bounded).
    #[prost(uint64, tag = "7")]
    pub unlisted: u64,
    /// How long the capture round took, from the request to the reply
    /// (the tasks capture themselves on their next polls; nothing waits
    /// for them). The polls the round caused fall in this span.
    #[prost(uint64, tag = "8")]
    pub round_ns: u64,
    /// Console mode: the wrapped tasks (tokio ids). The agent holds such a
    /// task's waker, to wake it for a capture, whenever no capture of it
    /// holds; console-subscriber counts that waker among the task's own
    /// (one more live waker than the task has).
    #[prost(uint64, repeated, tag = "9")]
    pub agent_wakers: Vec<u64>,
}

/// One task's async stack: for each leaf future the task was waiting in
/// (several under `select!`/`join!`), the chain of `poll` frames from the
/// task's own future (first) down to the tokio leaf (last).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Trace {
    #[prost(message, repeated, tag = "1")]
    pub leaves: Vec<Leaf>,
}

/// One leaf future's chain of frames. (Tag 1 carried the frames as
/// `name (file:line)` strings before they were structured; it is not
/// reused.)
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Leaf {
    /// Outermost first.
    #[prost(message, repeated, tag = "2")]
    pub frames: Vec<Frame>,
}

/// One `poll` frame of an async stack.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Frame {
    /// The function, demangled, without its hash (release builds name
    /// inlined frames without their module path: `poll_elapsed`).
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its source file, empty when unknown. Files in the cargo registry or
    /// the standard library start at the crate's directory
    /// (`tokio-1.54.1/src/time/sleep.rs`, `library/core/src/…`).
    #[prost(string, tag = "2")]
    pub file: String,
    /// Its line, 0 when unknown.
    #[prost(uint32, tag = "3")]
    pub line: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskTrace {
    /// tokio's task id: the console's `task.id` field.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Index into `DumpReply::traces`.
    #[prost(uint32, tag = "2")]
    pub trace: u32,
    /// Where the task was spawned, when the agent records tasks itself
    /// (the hooks source): 1 + an index into `DumpReply::locations`, 0 when
    /// unknown. Lets a client of that source, which has no per-task
    /// stream, put the dump's waits in their groups.
    #[prost(uint32, tag = "3")]
    pub location: u32,
    /// When this task's stack was captured (ns since the Unix epoch). The
    /// agent captures one task at a time, by the task itself, and lists a
    /// capture only while it holds (the task has not run since); 0 from
    /// an agent that took whole-runtime dumps (`DumpReply::taken_unix_ns`).
    #[prost(int64, tag = "4")]
    pub captured_unix_ns: i64,
}

/// Service `taskscope.agent.v1.Tasks`: the hooks source (the agent's own
/// record of every task, from tokio's runtime hooks), made for scale: the
/// target groups its tasks by spawn location and streams the groups; a
/// group's tasks are fetched a page at a time when someone opens it.
pub const TASKS_SERVICE: &str = "taskscope.agent.v1.Tasks";
/// Server streaming `Watch(WatchRequest) -> stream Groups`: every spawn
/// location's aggregate, every interval. Each message is complete, so a
/// client that falls behind gets the latest and skips the rest (the agent
/// keeps one message per client at most).
pub const WATCH_PATH: &str = "/taskscope.agent.v1.Tasks/Watch";
/// Unary `Page(PageRequest) -> TaskPage`: a group's live tasks.
pub const PAGE_PATH: &str = "/taskscope.agent.v1.Tasks/Page";

#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Groups {
    /// The target's wall clock when the groups were taken.
    #[prost(int64, tag = "1")]
    pub now_unix_ns: i64,
    #[prost(message, repeated, tag = "2")]
    pub groups: Vec<GroupRow>,
    /// Per-location totals for each past second the agent kept (the first
    /// message of a stream only), so a trend shows at once.
    #[prost(message, repeated, tag = "3")]
    pub history: Vec<SiteHistory>,
    /// When the agent started recording (the runtime's start, near enough).
    #[prost(int64, tag = "4")]
    pub since_unix_ns: i64,
}

/// A source location.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Loc {
    #[prost(string, tag = "1")]
    pub file: String,
    #[prost(uint32, tag = "2")]
    pub line: u32,
    #[prost(uint32, tag = "3")]
    pub column: u32,
}

/// One spawn location's live tasks.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupRow {
    #[prost(message, optional, tag = "1")]
    pub location: Option<Loc>,
    #[prost(uint64, tag = "2")]
    pub live: u64,
    /// Inside a poll now.
    #[prost(uint64, tag = "3")]
    pub running: u64,
    #[prost(uint64, tag = "4")]
    pub idle: u64,
    /// Totals since the agent started.
    #[prost(uint64, tag = "5")]
    pub spawned: u64,
    #[prost(uint64, tag = "6")]
    pub terminated: u64,
    #[prost(uint64, tag = "7")]
    pub polls: u64,
    #[prost(uint64, tag = "8")]
    pub busy_ns: u64,
    /// The oldest live task's creation (0: none live).
    #[prost(int64, tag = "9")]
    pub oldest_created_unix_ns: i64,
    /// The longest-idle task's last poll end, or creation if never polled
    /// (0: none idle).
    #[prost(int64, tag = "10")]
    pub earliest_idle_unix_ns: i64,
    /// The longest poll in progress.
    #[prost(uint64, tag = "11")]
    pub longest_poll_ns: u64,
    /// Where the tasks that spawned these were spawned, most first (at most
    /// 8).
    #[prost(message, repeated, tag = "12")]
    pub parents: Vec<ParentCount>,
    /// Live tasks spawned from outside any task.
    #[prost(uint64, tag = "13")]
    pub unparented: u64,
    /// Live tasks by age: entry 0 counts those under 1 s old, entry i
    /// those of 2^(i-1) to 2^i s, the last one everything older.
    #[prost(uint64, repeated, tag = "14")]
    pub ages: Vec<u64>,
    /// The summed lifetimes of the terminated tasks (with `terminated`,
    /// their mean lifetime).
    #[prost(uint64, tag = "15")]
    pub terminated_lifetime_ns: u64,
    /// Live tasks whose waits the agent can capture (spawned with
    /// `taskscope_agent::spawn` or wrapped in `traced`); the others'
    /// waits are not known.
    #[prost(uint64, tag = "16")]
    pub reachable: u64,
    /// Live tasks with a capture that still holds (not run since).
    #[prost(uint64, tag = "17")]
    pub waits_held: u64,
    /// The newest of those captures (0: none).
    #[prost(int64, tag = "18")]
    pub newest_wait_unix_ns: i64,
    /// The terminated tasks by lifetime, in the buckets of `ages`: how
    /// long this site's tasks can live, tail included.
    #[prost(uint64, repeated, tag = "19")]
    pub lifetimes: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ParentCount {
    #[prost(message, optional, tag = "1")]
    pub location: Option<Loc>,
    #[prost(uint64, tag = "2")]
    pub tasks: u64,
}

/// A location's totals at each kept second, oldest first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SiteHistory {
    #[prost(message, optional, tag = "1")]
    pub location: Option<Loc>,
    #[prost(uint64, tag = "2")]
    pub first_unix_sec: u64,
    #[prost(uint64, repeated, tag = "3")]
    pub spawned: Vec<u64>,
    #[prost(uint64, repeated, tag = "4")]
    pub terminated: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PageRequest {
    #[prost(message, optional, tag = "1")]
    pub location: Option<Loc>,
    /// Tasks with ids above this (0: from the start).
    #[prost(uint64, tag = "2")]
    pub after_id: u64,
    /// At most this many (the agent caps it at 10 000).
    #[prost(uint32, tag = "3")]
    pub limit: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskPage {
    #[prost(message, repeated, tag = "1")]
    pub tasks: Vec<TaskRow>,
    /// Pass as `after_id` for the next page; 0 at the end.
    #[prost(uint64, tag = "2")]
    pub next_after_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskRow {
    /// tokio's task id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The spawning task's id (0: spawned from outside any task).
    #[prost(uint64, tag = "2")]
    pub parent_id: u64,
    #[prost(message, optional, tag = "3")]
    pub parent_location: Option<Loc>,
    #[prost(int64, tag = "4")]
    pub created_unix_ns: i64,
    #[prost(uint64, tag = "5")]
    pub polls: u64,
    #[prost(uint64, tag = "6")]
    pub busy_ns: u64,
    /// In a poll since then (0: not in a poll).
    #[prost(int64, tag = "7")]
    pub running_since_unix_ns: i64,
    /// Idle since then (0: running).
    #[prost(int64, tag = "8")]
    pub idle_since_unix_ns: i64,
}
