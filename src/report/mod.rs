//! Renderings of an analysis for people and machines outside the TUI.

pub mod diff;
pub mod text;
