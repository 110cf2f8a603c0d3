//! taskscope: a live task inspector for tokio services, fed by
//! taskscope-agent's hooks source or by tokio-console's `console-subscriber`.
//!
//! Data flows one way (ARCHITECTURE.md walks it): [`conn`] (gRPC,
//! reconnects) produces plain updates; [`model::State`] (taskscope-core)
//! accumulates them; [`analysis`] (taskscope-core) turns the state into
//! groups, reasons, trends and suspects; the [`session`] publishes views of
//! it that [`ui`] draws and [`headless`] commands gather.
#![forbid(unsafe_code)]

pub mod atomic_file;
pub mod cli;
pub mod commands;
pub mod conn;
pub mod demo;
pub mod headless;
pub mod malloc;
pub mod report;
pub mod schemas;
pub mod session;
pub mod snapshot;
pub mod ui;
pub mod wording;

/// The model and the analysis (the `taskscope-core` crate, pure: no
/// network, no terminal), and its text helpers.
pub use taskscope_core::{analysis, model, text};
