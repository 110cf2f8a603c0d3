//! The viewer's integration tests, as one test binary (the way ripgrep
//! keeps its own): each file under `tests/` is a module here, so the
//! viewer is linked once rather than once per file. Run one file's tests
//! with a filter on its module: `cargo test --test tests render::`.
//!
//! All of them share one process and run on parallel threads, so a test
//! may not change what the process holds for the others (environment
//! variables, the working directory, a global tracing subscriber): the
//! tests that need a process of their own run the `taskscope` binary
//! (`common::BIN`), with the environment and directory they need.
//!
//! `hostile.rs` is a binary of its own (`hostile_input`): its counting
//! allocator is not this binary's.

mod common;

mod access_e2e;
mod advice_e2e;
mod classification;
mod cli_errors;
mod console_sleepers;
mod console_state;
mod demo_groups;
mod fleet_e2e;
mod fleet_tools;
mod hooks_e2e;
mod hostile_hooks;
mod hostile_server;
mod lints;
mod looping_sleepers;
// glibc's tunables exist only there.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc_tuning;
mod reconnect;
mod render;
mod report_e2e;
mod resources_e2e;
mod schemas;
mod snapshot_diff_e2e;
mod snapshot_errors;
mod snapshot_roundtrip;
// Captures: Linux with tokio_unstable.
#[cfg(all(target_os = "linux", tokio_unstable))]
mod stack_rules;
mod suspects;
mod task_details;
mod tmux_e2e;
mod verdicts;
mod web_e2e;
