//! The wire messages of taskscope-agent's task-dump service (protobuf via
//! prost, written by hand so that neither side needs `protoc`). Service
//! `taskscope.agent.v1.TaskDumps`, served beside console-subscriber's
//! `Instrument` service on its port. The agent serves them; the taskscope
//! viewer calls them without linking the agent.
#![forbid(unsafe_code)]

/// The gRPC service name.
pub const SERVICE: &str = "taskscope.agent.v1.TaskDumps";
/// Unary `Info(InfoRequest) -> InfoReply`: cheap, used to detect the agent.
pub const INFO_PATH: &str = "/taskscope.agent.v1.TaskDumps/Info";
/// Unary `Dump(DumpRequest) -> DumpReply`: takes a task dump.
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
    /// How long the runtime's workers were held for the capture.
    #[prost(uint64, tag = "3")]
    pub capture_ns: u64,
    /// How long resolving symbols took (on the agent's own thread, not on
    /// the target's runtime).
    #[prost(uint64, tag = "4")]
    pub resolve_ns: u64,
    /// Wall clock when the capture began, ns since the Unix epoch.
    #[prost(int64, tag = "5")]
    pub taken_unix_ns: i64,
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

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct TaskTrace {
    /// tokio's task id: the console's `task.id` field.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Index into `DumpReply::traces`.
    #[prost(uint32, tag = "2")]
    pub trace: u32,
}
