//! The connection to a target: the only module that knows tonic and
//! console-api. It turns the wire stream into [`Event`]s carrying plain
//! [`crate::model::Update`]s, and owns reconnection.

pub mod addr;
pub mod client;
mod convert;
pub mod error;

pub use addr::{AddrError, DEFAULT_PORT, Target};
pub use client::{Backoff, Event, Options, Status, run};
pub use error::ConnError;

use tokio::sync::mpsc;

/// Starts the connection task; events arrive on the returned channel.
pub fn spawn(target: Target, opts: Options) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(run(target, opts, tx));
    rx
}
