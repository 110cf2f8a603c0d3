//! taskscope: a live task inspector for tokio services instrumented with
//! `console-subscriber`.
//!
//! Data flows one way: [`conn`] (gRPC, reconnects) produces plain
//! [`model::Update`]s; [`model::State`] accumulates them; [`analysis`] turns
//! the state into groups, reasons and trends; [`ui`] draws them.
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
