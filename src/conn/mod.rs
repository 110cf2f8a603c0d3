//! The connection to a target: the only module that knows tonic and
//! console-api. It turns the wire stream into [`Event`]s carrying plain
//! [`crate::model::Update`]s, and owns reconnection.

pub mod addr;
pub mod agent;
pub mod client;
pub mod convert;
pub mod error;

pub use addr::{AddrError, DEFAULT_PORT, Target};
pub use agent::DumpTrigger;
pub use client::{Backoff, DumpOptions, Event, Options, Status, run};
pub use error::ConnError;

use tokio::sync::mpsc;

/// A running connection: its events, and a handle to ask for task dumps.
pub struct Connection {
    pub events: mpsc::Receiver<Event>,
    pub dumps: DumpTrigger,
}

/// Starts the connection task; events arrive on `events`.
pub fn spawn(target: Target, opts: Options) -> Connection {
    let (tx, rx) = mpsc::channel(16);
    let dumps = DumpTrigger::default();
    tokio::spawn(run(target, opts, tx, dumps.clone()));
    Connection { events: rx, dumps }
}

/// Folds an event's data into `state`; hands status changes back.
pub fn apply(state: &mut crate::model::State, ev: Event) -> Option<Status> {
    match ev {
        Event::Status(s) => return Some(s),
        Event::StreamStarted => state.begin_stream(),
        Event::Update(up) => state.apply(*up),
        Event::Agent(a, recent) => state.set_agent(a, &recent),
        Event::DumpStarted => state.dump_started(),
        Event::Dump(d) => state.apply_dump(d.map(|d| *d)),
    }
    None
}
