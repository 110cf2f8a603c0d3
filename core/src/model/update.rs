//! The plain-data form of one message from the target.
//!
//! `conn` converts each wire `Update` into this type; nothing in the model
//! knows about protobuf or gRPC. Every `new_*` list is an upsert: the
//! subscriber re-sends entities it has not marked clean yet.

use super::time::Ts;

/// One update from the target, in wire order.
#[derive(Clone, Debug, Default)]
pub struct Update {
    /// The target's clock when it built this update.
    pub now: Option<Ts>,
    /// True when the update carried metadata registrations: the first
    /// message of a stream does when it is the subscriber's full state.
    pub has_metadata: bool,
    pub tasks: Vec<NewTask>,
    pub task_stats: Vec<(u64, TaskStats)>,
    pub resources: Vec<NewResource>,
    pub resource_stats: Vec<(u64, ResourceStats)>,
    pub async_ops: Vec<NewAsyncOp>,
    pub async_op_stats: Vec<(u64, AsyncOpStats)>,
    pub poll_ops: Vec<PollOp>,
    pub dropped_events: DroppedEvents,
    /// Encoded size on the wire, for the health display.
    pub wire_bytes: usize,
    /// Strings the conversion cut to its length cap (hostile or broken
    /// targets only).
    pub strings_cut: u32,
}

/// Events the target's instrumentation dropped because its buffer was full
/// (per update, as sent). Non-zero means counts are lower bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DroppedEvents {
    pub tasks: u64,
    pub resources: u64,
    pub async_ops: u64,
}

impl DroppedEvents {
    pub fn total(&self) -> u64 {
        self.tasks
            .saturating_add(self.resources)
            .saturating_add(self.async_ops)
    }
}

/// A source location as the target reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SourceLoc {
    pub file: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// A key-value field of a task span or a resource attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: FieldValue,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Str(String),
    Debug(String),
    U64(u64),
    I64(i64),
    Bool(bool),
}

impl FieldValue {
    /// The value as text, the way a person reads it (no Debug quoting).
    pub fn to_text(&self) -> String {
        match self {
            FieldValue::Str(s) | FieldValue::Debug(s) => s.clone(),
            FieldValue::U64(v) => v.to_string(),
            FieldValue::I64(v) => v.to_string(),
            FieldValue::Bool(v) => v.to_string(),
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            FieldValue::U64(v) => Some(*v),
            FieldValue::I64(v) => u64::try_from(*v).ok(),
            FieldValue::Str(s) | FieldValue::Debug(s) => s.parse().ok(),
            FieldValue::Bool(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewTask {
    pub id: u64,
    pub location: Option<SourceLoc>,
    pub fields: Vec<Field>,
}

/// A task's statistics; the subscriber sends the full set whenever any
/// changed. Kept compact (80 bytes): every live task holds one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskStats {
    pub created_at: Option<Ts>,
    pub dropped_at: Option<Ts>,
    pub last_wake: Option<Ts>,
    pub polls: u64,
    pub first_poll: Option<Ts>,
    pub last_poll_started: Option<Ts>,
    pub last_poll_ended: Option<Ts>,
    /// Time spent inside polls, and scheduled but not running, in ns.
    pub busy_ns: u64,
    pub scheduled_ns: u64,
    /// Wakers cloned and dropped, modulo 2^32: only their difference
    /// matters, and it stays exact while under 2^32.
    pub waker_clones: u32,
    pub waker_drops: u32,
    /// Wakes, and wakes by the task itself (saturating at 2^32 - 1).
    pub wakes: u32,
    pub self_wakes: u32,
}

impl TaskStats {
    /// Wakers cloned and not yet dropped: how many things could wake the task.
    pub fn live_wakers(&self) -> u64 {
        let live = self.waker_clones.wrapping_sub(self.waker_drops);
        // More drops than clones (a stats race): none live.
        if live > u32::MAX / 2 {
            0
        } else {
            u64::from(live)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewResource {
    pub id: u64,
    pub concrete_type: String,
    pub kind: ResourceKind,
    pub location: Option<SourceLoc>,
    pub parent: Option<u64>,
    pub internal: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Timer,
    Other(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceStats {
    pub created_at: Option<Ts>,
    pub dropped_at: Option<Ts>,
    pub attributes: Vec<Attribute>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub field: Field,
    pub unit: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAsyncOp {
    pub id: u64,
    pub source: OpSource,
    pub parent: Option<u64>,
    pub resource: Option<u64>,
}

/// Which tokio call an async op is: the op's `source` text, read once where
/// it enters. tokio names the calls it instruments (`Mutex::lock`,
/// `Semaphore::acquire_owned`, `Receiver::await`, …); the classification
/// needs only the type and, for two of them, the exact call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpSource {
    /// `Mutex::…` (lock, lock_owned).
    Mutex,
    /// `RwLock::…` (read, write, and their owned forms).
    RwLock,
    /// `Semaphore::…` (acquire, acquire_many, owned forms).
    Semaphore,
    /// `Receiver::await` (a oneshot receive) or `Sender::closed`.
    Oneshot,
    /// `Barrier::wait`.
    Barrier,
    /// `Interval::tick`.
    Interval,
    /// `Sleep::new_timeout` or `Sleep::reset`: a `Sleep`'s own op, on the
    /// sleep, whose task is the sleeper. tokio before 1.53 keeps one for
    /// every sleep; later ones only after a `reset`.
    Sleep,
    /// `Acquire::new`: a batch semaphore acquire with no named caller (the
    /// bounded mpsc channel's send, or a semaphore's inner acquire).
    Acquire,
    /// Anything else (newer tokio calls, other instrumented libraries).
    Other,
}

impl OpSource {
    pub fn parse(source: &str) -> OpSource {
        let ty = source.split_once("::").map_or(source, |(t, _)| t);
        match (ty, source) {
            ("Mutex", _) => OpSource::Mutex,
            ("RwLock", _) => OpSource::RwLock,
            ("Semaphore", _) => OpSource::Semaphore,
            (_, "Receiver::await" | "Sender::closed") => OpSource::Oneshot,
            ("Barrier", _) => OpSource::Barrier,
            ("Interval", _) => OpSource::Interval,
            ("Sleep", _) => OpSource::Sleep,
            (_, "Acquire::new") => OpSource::Acquire,
            _ => OpSource::Other,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncOpStats {
    pub created_at: Option<Ts>,
    pub dropped_at: Option<Ts>,
    pub task: Option<u64>,
    pub polls: u64,
}

/// A poll of a resource by a task. Sent once, only while someone watches.
#[derive(Clone, Debug, PartialEq)]
pub struct PollOp {
    pub task: Option<u64>,
    pub resource: Option<u64>,
    pub async_op: Option<u64>,
    pub name: String,
    pub ready: bool,
}

#[cfg(test)]
mod tests {
    use super::OpSource;

    #[test]
    fn op_sources_are_read_by_type_and_call() {
        for (text, want) in [
            ("Mutex::lock", OpSource::Mutex),
            ("Mutex::lock_owned", OpSource::Mutex),
            ("RwLock::write", OpSource::RwLock),
            ("Semaphore::acquire_many_owned", OpSource::Semaphore),
            ("Receiver::await", OpSource::Oneshot),
            ("Sender::closed", OpSource::Oneshot),
            ("Barrier::wait", OpSource::Barrier),
            ("Interval::tick", OpSource::Interval),
            ("Sleep::new_timeout", OpSource::Sleep),
            ("Sleep::reset", OpSource::Sleep),
            ("Acquire::new", OpSource::Acquire),
            ("Receiver::recv", OpSource::Other),
            ("Mutexes::lock", OpSource::Other),
            ("", OpSource::Other),
            ("\u{1b}[2J", OpSource::Other),
        ] {
            assert_eq!(OpSource::parse(text), want, "{text:?}");
        }
    }
}
