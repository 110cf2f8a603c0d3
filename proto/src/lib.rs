//! The wire contract of taskscope-agent, package `taskscope.agent.v1`:
//! services `TaskDumps` (the tasks' waits) and `Tasks` (the hooks source),
//! served beside console-subscriber's `Instrument` service on its port.
//! The agent serves them; the taskscope viewer calls them without linking
//! the agent.
//!
//! The contract is `proto/taskscope/agent/v1/agent.proto` (in this crate's
//! package). The messages, the servers (`task_dumps_server`,
//! `tasks_server`) and the clients (`task_dumps_client`, `tasks_client`) are
//! generated from it by tonic-prost-build and committed
//! (`src/generated/`), so that building this crate needs no `protoc`; the
//! crate's `bootstrap` test fails when they differ from what the `.proto`
//! generates, and `TASKSCOPE_BLESS=1 cargo test -p taskscope-proto --test
//! bootstrap` writes them anew. No tonic transport is linked here: whoever
//! serves or connects brings it.
//!
//! Beside it, `names` (how a stack frame is named, for people and for
//! pprof) and, behind the `pprof` feature, `pprof` (pprof's
//! `profile.proto` messages and a task profile's tables), both shared by
//! the agent's profiles and the viewer's.
#![forbid(unsafe_code)]

pub mod names;
#[cfg(feature = "pprof")]
pub mod pprof;

/// The code generated from `proto/taskscope/agent/v1/agent.proto`, also
/// re-exported at the crate root.
#[cfg(feature = "grpc")]
pub mod v1 {
    include!("generated/taskscope.agent.v1.rs");
}

#[cfg(feature = "grpc")]
pub use v1::*;

/// The gRPC service name of the waits.
#[cfg(feature = "grpc")]
pub const SERVICE: &str = task_dumps_server::SERVICE_NAME;
/// `TaskDumps.Info`, unary: cheap, used to detect the agent.
pub const INFO_PATH: &str = "/taskscope.agent.v1.TaskDumps/Info";
/// `TaskDumps.Dump`, unary: the tasks' waits.
pub const DUMP_PATH: &str = "/taskscope.agent.v1.TaskDumps/Dump";

/// The gRPC service name of the hooks source.
#[cfg(feature = "grpc")]
pub const TASKS_SERVICE: &str = tasks_server::SERVICE_NAME;
/// `Tasks.Watch`, server streaming: every spawn location's aggregate,
/// every interval.
pub const WATCH_PATH: &str = "/taskscope.agent.v1.Tasks/Watch";
/// `Tasks.Page`, unary: a group's live tasks.
pub const PAGE_PATH: &str = "/taskscope.agent.v1.Tasks/Page";

#[cfg(all(test, feature = "grpc"))]
mod tests {
    use super::*;

    /// The paths are the ones the generated servers route and the
    /// generated clients call.
    #[test]
    fn the_paths_are_the_generated_services_methods() {
        let generated = include_str!("generated/taskscope.agent.v1.rs");
        for (service, path, method) in [
            (SERVICE, INFO_PATH, "Info"),
            (SERVICE, DUMP_PATH, "Dump"),
            (TASKS_SERVICE, WATCH_PATH, "Watch"),
            (TASKS_SERVICE, PAGE_PATH, "Page"),
        ] {
            assert_eq!(path, format!("/{service}/{method}"));
            let quoted = format!("\"{path}\"");
            // The server's match arm and the client's request path.
            assert_eq!(generated.matches(&quoted).count(), 2, "{path}");
        }
        assert_eq!(SERVICE, "taskscope.agent.v1.TaskDumps");
        assert_eq!(TASKS_SERVICE, "taskscope.agent.v1.Tasks");
    }
}
