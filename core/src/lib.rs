//! taskscope's core: the model and the analysis, pure.
//!
//! [`model`] holds what the targets sent, as plain data: the console
//! source's tasks, resources and ops, the hooks source's counted groups,
//! the agent's captured waits, one stream log of clocks, health and count
//! histories. [`analysis`] turns a model into what every front end shows:
//! groups by spawn location, what each task and group waits on, trends,
//! suspects, their likely cause and fix, diffs. No network, no terminal,
//! no clock read (time is passed in): every rule is tested with fabricated
//! data, and the crate's dependencies say so.
#![forbid(unsafe_code)]

pub mod analysis;
mod keyed;
pub mod model;
pub mod text;
