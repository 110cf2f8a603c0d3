//! The demo: a leaky target run as a child process, and its launcher.

#[cfg(tokio_unstable)]
pub mod target;

#[cfg(not(tokio_unstable))]
pub mod target {
    //! Without `--cfg tokio_unstable` tokio has no task instrumentation, so
    //! the demo target cannot exist; this says so instead of showing an
    //! empty screen.
    pub use super::options::{Options, Scenario};

    pub fn run(_opts: Options) -> anyhow::Result<()> {
        anyhow::bail!(super::NO_TOKIO_UNSTABLE)
    }
}

pub mod child;
pub mod options;

pub use child::{DemoChild, spawn_child};
pub use options::Scenario;

/// The one-line explanation when the binary lacks task instrumentation.
pub const NO_TOKIO_UNSTABLE: &str = "this taskscope was built without --cfg tokio_unstable, so the demo target cannot be instrumented: build from the repository (its .cargo/config.toml sets the flag) or set RUSTFLAGS=\"--cfg tokio_unstable\"";
