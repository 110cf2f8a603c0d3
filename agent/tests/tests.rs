//! The agent's integration tests, as one test binary: each file is a
//! module here, so the agent and tokio are linked once. Run one file's
//! tests with a filter on its module: `cargo test -p taskscope-agent
//! --test tests metrics::`.
//!
//! Three files stay binaries of their own (`Cargo.toml`): `hooks_alloc`
//! installs a counting global allocator, `never_harm` measures the
//! service's pauses to 250 ms on two cores, which other tests running in
//! the same process would take their share of, and `hostile_clients`
//! counts the process's threads and memory under attack.

mod common;

// The hooks source needs tokio_unstable; the waits' captures, Linux too.
#[cfg(tokio_unstable)]
mod access;
#[cfg(tokio_unstable)]
mod hooks;

#[cfg(all(target_os = "linux", tokio_unstable))]
mod metrics;
#[cfg(all(target_os = "linux", tokio_unstable))]
mod production;
#[cfg(all(target_os = "linux", tokio_unstable))]
mod servers;
#[cfg(all(target_os = "linux", tokio_unstable))]
mod strand;
#[cfg(all(target_os = "linux", tokio_unstable))]
mod waits;
#[cfg(all(target_os = "linux", tokio_unstable))]
mod wire;
