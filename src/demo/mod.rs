//! The demo: a leaky target run as a child process, and its launcher.

#[cfg(all(tokio_unstable, feature = "demo"))]
mod launch;
#[cfg(all(tokio_unstable, feature = "demo"))]
mod leaks;
#[cfg(all(tokio_unstable, feature = "demo"))]
pub mod target;
#[cfg(all(tokio_unstable, feature = "demo"))]
mod traced;
#[cfg(all(tokio_unstable, feature = "demo"))]
mod web;

#[cfg(not(all(tokio_unstable, feature = "demo")))]
pub mod target {
    //! Without `--cfg tokio_unstable` tokio has no task instrumentation, and
    //! without the `demo` feature the target's console-subscriber and agent
    //! are not linked, so the demo target cannot exist; this says so
    //! instead of showing an empty screen.
    pub use super::options::{DemoSource, Options, Scenario};

    pub fn run(_opts: Options) -> anyhow::Result<()> {
        if cfg!(feature = "demo") {
            anyhow::bail!(super::NO_TOKIO_UNSTABLE)
        }
        anyhow::bail!(super::NO_DEMO_FEATURE)
    }
}

pub mod child;
pub mod options;

pub use child::{DemoChild, spawn_child};
pub use options::Scenario;

/// The one-line explanation when the binary was built without the demo.
pub const NO_DEMO_FEATURE: &str = "this taskscope was built without the `demo` feature, so it has no demo target: attach to your own service with `taskscope connect`, or build with default features";

/// The one-line explanation when the binary lacks task instrumentation.
pub const NO_TOKIO_UNSTABLE: &str = "this taskscope was built without --cfg tokio_unstable, so the demo target cannot be instrumented: build from the repository (its .cargo/config.toml sets the flag) or set RUSTFLAGS=\"--cfg tokio_unstable\"";
