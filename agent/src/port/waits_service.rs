//! The waits on the wire: v1's `taskscope.agent.v1.TaskDumps` service
//! (`Info`, `Dump`), its names kept for compatibility, served by the
//! waits protocol (`crate::waits`).

use crate::Agent;
use crate::limits::MAX_REPLY;
use crate::proto::task_dumps_server::{TaskDumps, TaskDumpsServer};
use crate::proto::{DumpReply, DumpRequest, InfoReply, InfoRequest};
use crate::waits::WaitsError;
use std::time::Duration;
use tonic::{Request, Response, Status};

/// How long a request that names no timeout waits for its tasks.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The generated `TaskDumps` server's implementation.
pub(crate) struct WaitsService {
    agent: Agent,
}

impl WaitsService {
    /// The generated server, its replies bounded by [`MAX_REPLY`].
    pub(crate) fn server(agent: Agent) -> TaskDumpsServer<WaitsService> {
        TaskDumpsServer::new(WaitsService { agent }).max_encoding_message_size(MAX_REPLY)
    }
}

#[tonic::async_trait]
impl TaskDumps for WaitsService {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoReply>, Status> {
        let agent = &self.agent;
        let ready = crate::waits::support();
        Ok(Response::new(InfoReply {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            // Per-task captures: a client may ask as often as the agent's
            // interval allows.
            dumps_supported: ready.is_ok(),
            why_not: ready.err().unwrap_or_default().into(),
            min_interval_ms: agent.inner.waits.min_interval().as_millis() as u64,
            holds_wakers: agent.serves_console(),
        }))
    }

    async fn dump(&self, req: Request<DumpRequest>) -> Result<Response<DumpReply>, Status> {
        let timeout = match req.get_ref().timeout_ms {
            0 => DEFAULT_TIMEOUT,
            ms => Duration::from_millis(ms),
        };
        self.agent
            .waits(timeout)
            .await
            .map(Response::new)
            .map_err(|e| match e {
                WaitsError::Busy => Status::resource_exhausted(e.to_string()),
                e => Status::unavailable(e.to_string()),
            })
    }
}
