//! The connection to a target: the only module that knows tonic and
//! console-api. It turns the wire stream into [`Event`]s carrying plain
//! [`crate::model::Update`]s, and owns reconnection.

pub mod addr;
pub mod agent;
pub mod calls;
pub mod capped;
pub mod chan;
pub mod client;
pub mod convert;
pub mod error;
pub mod hooks;

pub use addr::{AddrError, DEFAULT_PORT, Target};
pub use client::{Backoff, run};
pub use error::ConnError;

use crate::model::Update;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// How the connection behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest console-subscriber update accepted. tonic's default of
    /// 4 MiB is too small for large targets, whose first deltas run to
    /// tens of MiB.
    pub max_message_size: usize,
    /// Largest message accepted from taskscope-agent (its groups, a page
    /// of tasks, its waits), each decoded within the caps of
    /// [`crate::model::caps`]: sized for real agents (a million tasks: a
    /// few MiB), so that a hostile one cannot make the viewer hold more.
    pub max_agent_message_size: usize,
    /// Limit for TCP connect and for the first response to arrive.
    pub connect_timeout: Duration,
    /// A stream that sends nothing for this long is treated as stalled
    /// (the subscriber publishes every interval, even when idle).
    pub stall_timeout: Duration,
    /// HTTP/2 keepalive pings: how often, and how long to wait for the
    /// answer before the connection counts as dead.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Keep retrying after failures (the TUI); `false` stops at the first.
    pub reconnect: bool,
    /// When to take captures, if the target serves the agent.
    pub waits: WaitsOptions,
    /// Which source to read when the target serves both.
    pub source: hooks::SourceChoice,
    /// The agent's token, presented on every call (`--token-file`).
    pub token: Option<Credential>,
}

/// The token a target's agent asks of inspection requests: the contents
/// of a file (`--token-file`, or `TASKSCOPE_TOKEN_FILE`), without the
/// surrounding whitespace. Never printed. The file is read again when the
/// agent refuses it ([`Credential::reread`]): a rotated secret is taken up
/// without restarting the viewer.
#[derive(Clone)]
pub struct Credential {
    secret: Arc<str>,
    path: Option<Arc<std::path::Path>>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(…)")
    }
}

impl Credential {
    /// Reads the token from `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Credential, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
        let t = text.trim();
        if t.is_empty() {
            return Err(format!("the token file {} is empty", path.display()));
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the token in {} must be printable ASCII without spaces",
                path.display()
            ));
        }
        Ok(Credential {
            secret: Arc::from(t),
            path: Some(Arc::from(path)),
        })
    }

    /// The file's token if it now holds another one (the secret was
    /// rotated), else `None`.
    pub fn reread(&self) -> Option<Credential> {
        let now = Credential::from_file(self.path.as_deref()?).ok()?;
        (now.secret != self.secret).then_some(now)
    }

    /// `Bearer TOKEN`, marked sensitive (kept out of HTTP/2's header
    /// compression tables and of debug output).
    pub fn header(&self) -> tonic::codegen::http::HeaderValue {
        let mut v = tonic::codegen::http::HeaderValue::from_str(&format!("Bearer {}", self.secret))
            .expect("printable ASCII");
        v.set_sensitive(true);
        v
    }
}

/// When captures are taken (only with `taskscope-agent` in the target).
#[derive(Clone, Debug)]
pub struct WaitsOptions {
    /// Ask for captures at all (the agent is still detected).
    pub enabled: bool,
    /// One as soon as the agent is detected (after `first_after`).
    pub on_connect: bool,
    /// How long after connecting that first capture is taken.
    pub first_after: Duration,
    /// Then one every `interval` (never sooner than 100× the last capture
    /// took, nor than the agent allows); `None`: only on request.
    pub interval: Option<Duration>,
    /// How long the agent may wait for the runtime to pause.
    pub timeout: Duration,
}

impl Default for WaitsOptions {
    fn default() -> Self {
        WaitsOptions {
            enabled: true,
            on_connect: true,
            first_after: Duration::ZERO,
            interval: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_message_size: 256 << 20,
            max_agent_message_size: DEFAULT_MAX_AGENT_MESSAGE,
            connect_timeout: Duration::from_secs(5),
            stall_timeout: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(10),
            reconnect: true,
            waits: WaitsOptions::default(),
            source: hooks::SourceChoice::default(),
            token: None,
        }
    }
}

/// The default of `--max-agent-message-size`: a real agent's largest
/// message at 1 000 000 tasks (its reply for waits, 200 000 tasks listed)
/// is under a quarter of it (PERFORMANCE.md, "A hostile hooks source").
pub const DEFAULT_MAX_AGENT_MESSAGE: usize = 16 << 20;

/// Connection state, as the status line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Connecting {
        attempt: u32,
    },
    Connected,
    Reconnecting {
        at: Instant,
        error: ConnError,
        attempt: u32,
    },
    Failed(ConnError),
}

/// What the connection task reports.
#[derive(Debug)]
pub enum Event {
    Status(Status),
    /// A new stream began: the next update may be a full state.
    StreamStarted,
    Update(Box<Update>),
    /// The target's own groups (the hooks source).
    Groups(Box<crate::model::counted::GroupsUpdate>),
    /// A page of an open group's tasks (the hooks source).
    Page(Box<crate::model::counted::TaskPage>),
    /// What the target's capture agent can do (once per stream), and the
    /// capture windows of its recent captures (by any client).
    Agent(
        crate::model::Agent,
        Vec<(crate::model::Ts, crate::model::Ts)>,
    ),
    /// A capture was asked for (its polls are on their way).
    WaitsAsked,
    /// A capture, or why it failed.
    Captures(Result<Box<crate::model::Captures>, String>),
    /// The target's console aggregator was paused (true) or resumed by
    /// some client (console-subscriber's `WatchState`).
    ConsolePaused(bool),
    /// The watched task's details (`WatchTaskDetails`).
    Details(Box<crate::model::details::TaskDetails>),
    /// What a page or a reply for waits held beyond the viewer's caps.
    Capped(crate::model::caps::Capped),
}

impl Event {
    /// Data from the target (either source), as opposed to news about the
    /// connection or the agent.
    pub fn is_data(&self) -> bool {
        matches!(self, Event::Update(_) | Event::Groups(_))
    }
}

/// What the view asks of the connection: a capture now (the `t` key; at
/// most one pending), and the tasks of the group it has open (the hooks
/// source fetches them a page at a time).
#[derive(Clone, Debug, Default)]
pub struct Requests(Arc<RequestsInner>);

#[derive(Debug, Default)]
struct RequestsInner {
    captures: Notify,
    open: std::sync::Mutex<Option<crate::model::counted::RawPlace>>,
    opened: Notify,
    /// The task whose details the view shows (console span id).
    details: std::sync::Mutex<Option<u64>>,
    details_changed: Notify,
}

impl Requests {
    pub fn request(&self) {
        self.0.captures.notify_one();
    }

    /// Resolves at the next capture request (or at once for one already made).
    pub(crate) async fn notified(&self) {
        self.0.captures.notified().await;
    }

    /// The group whose tasks the view shows (`None`: none open).
    pub fn open(&self, at: Option<crate::model::counted::RawPlace>) {
        *self.0.open.lock().unwrap_or_else(|e| e.into_inner()) = at;
        self.0.opened.notify_one();
    }

    pub(crate) fn opened(&self) -> Option<crate::model::counted::RawPlace> {
        self.0
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves when the open group changes.
    pub(crate) async fn open_changed(&self) {
        self.0.opened.notified().await;
    }

    /// The task whose details (histograms) the view shows, by its console
    /// id (`None`: none).
    pub fn details(&self, task: Option<u64>) {
        let mut cur = self.0.details.lock().unwrap_or_else(|e| e.into_inner());
        if *cur != task {
            *cur = task;
            self.0.details_changed.notify_one();
        }
    }

    pub(crate) fn details_of(&self) -> Option<u64> {
        *self.0.details.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn details_changed(&self) {
        self.0.details_changed.notified().await;
    }
}

/// A running connection: its events, and a handle to ask for captures.
pub struct Connection {
    pub events: mpsc::Receiver<Event>,
    pub waits: Requests,
}

/// Starts the connection task; events arrive on `events`.
pub fn spawn(target: Target, opts: Options) -> Connection {
    // Small: an update can be megabytes, and a model that falls behind
    // should hold the stream back (the target buffers), not queue copies.
    let (tx, rx) = mpsc::channel(4);
    let waits = Requests::default();
    tokio::spawn(run(target, opts, tx, waits.clone()));
    Connection { events: rx, waits }
}

/// Folds an event's data into `state`; hands status changes back.
pub fn apply(state: &mut crate::model::State, ev: Event) -> Option<Status> {
    match ev {
        Event::Status(s) => return Some(s),
        Event::StreamStarted => state.begin_stream(),
        Event::Update(up) => state.apply(*up),
        Event::Groups(up) => state.apply_groups(*up),
        Event::Page(p) => state.apply_page(*p),
        Event::Agent(a, recent) => state.set_agent(a, &recent),
        Event::WaitsAsked => state.waits_asked(),
        Event::Captures(d) => state.apply_captures(d.map(|d| *d)),
        Event::ConsolePaused(p) => state.log.health.console_paused = p,
        Event::Details(d) => state.console.details = Some(*d),
        Event::Capped(c) => state.log.health.capped.add(&c),
    }
    None
}
