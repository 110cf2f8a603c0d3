//! The agent's internals, for its own tests and benches: not part of its
//! API, hidden from its docs, and free
//! to change in any release.

use crate::Agent;

pub use crate::access::{Policy, Token};
pub use crate::hooks::{Aggregate, Budget, Group, Recorder, coarse_ns, task_id};
pub use crate::limits::MAX_BLOCKING_THREADS;
pub use crate::metrics::{AgentHealth, Exporter, SiteStat};
pub use crate::waits::{MAX_TIMEOUT, MIN_TIMEOUT};

/// The agent's hooks recorder, once installed.
pub fn recorder(agent: &Agent) -> Option<Recorder> {
    agent.recorder()
}

/// How many tasks a capture round asks, per location and in all.
pub fn budget(agent: &Agent) -> Budget {
    agent.budget()
}

/// The agent's own state, as `/metrics` exports it.
pub fn health(agent: &Agent) -> AgentHealth {
    agent.health()
}

/// `GET /metrics`'s body and content type.
pub async fn metrics(agent: &Agent, openmetrics: bool) -> (String, &'static str) {
    crate::port::exposition(agent, openmetrics).await
}

/// `GET /debug/pprof/tasks`'s body (see the port's `task_profile`).
pub async fn task_profile(agent: &Agent, stacks: bool, capture: bool) -> Vec<u8> {
    crate::port::task_profile(agent, stacks, capture).await
}
