//! taskscope: a live task inspector for tokio services instrumented with
//! `console-subscriber`.
//!
//! Data flows one way: [`conn`] (gRPC, reconnects) produces plain
//! [`model::Update`]s; [`model::State`] accumulates them; [`analysis`] turns
//! the state into groups, reasons and trends; [`ui`] draws them.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod atomic_file;
pub mod cli;
pub mod commands;
pub mod conn;
pub mod demo;
pub mod headless;
mod keyed;
pub mod malloc;
pub mod model;
pub mod report;
pub mod schemas;
pub mod session;
pub mod snapshot;
pub mod text;
pub mod ui;
