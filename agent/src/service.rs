//! The gRPC side: the agent's `TaskDumps` (waits) and `Tasks` (the hooks
//! source) services, with console-subscriber's `Instrument` beside them in
//! console mode (the `console` feature), on one server.

use crate::access::Policy;
use crate::proto::task_dumps_server::{TaskDumps, TaskDumpsServer};
use crate::proto::{DumpReply, DumpRequest, InfoReply, InfoRequest};
use crate::{Agent, ServerAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::{Request, Response, Status};
use tower_layer::{Identity, Layer, Stack};

/// Dump replies can be large (100 000 tasks); the console's own limit
/// does not apply to them.
pub(crate) const MAX_REPLY: usize = 256 * 1024 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// console-subscriber's `Instrument`, the waits and, with a hooks
/// recorder, the `Tasks` service, on one server.
#[cfg(feature = "console")]
pub async fn serve(
    server: console_subscriber::Server,
    addr: ServerAddr,
    agent: Agent,
) -> Result<(), BoxError> {
    let console_subscriber::ServerParts {
        instrument_server,
        aggregator,
        ..
    } = server.into_parts();
    let aggregator = tokio::spawn(aggregator.run());
    let (tasks, producer) = match agent.recorder() {
        Some(r) => {
            let (svc, producer) = crate::tasks_service::TasksService::new(r, agent.budget());
            (Some(svc), Some(tokio::spawn(producer)))
        }
        None => (None, None),
    };
    let (mut server, policy) = grpc_server(&agent);
    let router = server
        .add_service(instrument_server)
        .add_service(DumpService::server(agent.clone()))
        .add_optional_service(tasks);
    let res = listen(router, addr, &agent, &policy, None).await;
    aggregator.abort();
    if let Some(p) = producer {
        p.abort();
    }
    res
}

/// The hooks source alone: the waits and the `Tasks` service, no console.
/// Sends the bound address on `bound` once listening.
pub async fn serve_hooks(
    addr: ServerAddr,
    agent: Agent,
    bound: std::sync::mpsc::Sender<Result<String, String>>,
) -> Result<(), BoxError> {
    let recorder = agent
        .recorder()
        .ok_or("no hooks recorder: call Agent::install_hooks on the runtime builder first")?;
    let (tasks, producer) = crate::tasks_service::TasksService::new(recorder, agent.budget());
    let producer = tokio::spawn(producer);
    let (mut server, policy) = grpc_server(&agent);
    let router = server
        .add_service(DumpService::server(agent.clone()))
        .add_service(tasks);
    let res = listen(router, addr, &agent, &policy, Some(bound)).await;
    producer.abort();
    res
}

/// Who may ask what, set once the server knows where it listens.
type PolicyCell = Arc<OnceLock<Policy>>;

/// tonic's server with `GET /metrics` (and HTTP/1.1, which scrapers
/// speak) and the access check in front of the gRPC services.
fn grpc_server(
    agent: &Agent,
) -> (
    tonic::transport::Server<Stack<HttpLayer, Identity>>,
    PolicyCell,
) {
    let policy = PolicyCell::default();
    let server = tonic::transport::Server::builder()
        .accept_http1(true)
        // Per connection: a few requests at once, and HTTP/2's own bounds
        // stated (rapid resets end the connection, dead peers are found).
        .concurrency_limit_per_connection(8)
        .max_concurrent_streams(Some(16))
        .http2_max_pending_accept_reset_streams(Some(20))
        .http2_max_local_error_reset_streams(Some(64))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .layer(HttpLayer {
            agent: agent.clone(),
            policy: policy.clone(),
        });
    (server, policy)
}

/// Looks at the token file again every [`crate::access::TOKEN_RECHECK`],
/// on a blocking thread, one check at a time: a file system that hangs
/// holds this check only, never the server's thread or a request.
async fn follow_token_file(token: crate::access::Token) {
    let mut every = tokio::time::interval(crate::access::TOKEN_RECHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        let t = token.clone();
        if tokio::task::spawn_blocking(move || t.refresh())
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn listen(
    router: tonic::transport::server::Router<Stack<HttpLayer, Identity>>,
    addr: ServerAddr,
    agent: &Agent,
    policy: &PolicyCell,
    announce: Option<std::sync::mpsc::Sender<Result<String, String>>>,
) -> Result<(), BoxError> {
    // A token that was asked for and cannot be read serves nothing: an
    // agent never falls back to open.
    let token = agent.token()?;
    if let Some(t) = token.clone().filter(|t| t.follows_a_file()) {
        tokio::spawn(follow_token_file(t));
    }
    let gate = agent.gate();
    let announce = |b: &str, local: bool| {
        let p = Policy {
            token: token.clone(),
            local,
        };
        if let Some(line) = p.announcement(b) {
            eprintln!("{line}");
        }
        let _ = policy.set(p);
        agent.set_bound(b.to_string());
        if let Some(tx) = &announce {
            let _ = tx.send(Ok(b.to_string()));
        }
    };
    let res = match addr {
        ServerAddr::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let bound = listener.local_addr()?;
            announce(&bound.to_string(), bound.ip().is_loopback());
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            router
                .serve_with_incoming(crate::limits::Admitted::new(gate, incoming))
                .await
        }
        #[cfg(unix)]
        ServerAddr::Unix(path) => {
            let listener = tokio::net::UnixListener::bind(&path)?;
            // Only the service's own user may connect.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            announce(&format!("file://{}", path.display()), true);
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            router
                .serve_with_incoming(crate::limits::Admitted::new(gate, incoming))
                .await
        }
        #[allow(unreachable_patterns)]
        _ => return Err("taskscope-agent serves TCP and Unix sockets only".into()),
    };
    res.map_err(Into::into)
}

/// `taskscope.agent.v1.TaskDumps`: the generated server's implementation
/// (`task_dumps_server::TaskDumps`).
pub struct DumpService {
    agent: Agent,
}

impl DumpService {
    /// The generated server, its replies bounded by `MAX_REPLY`.
    fn server(agent: Agent) -> TaskDumpsServer<DumpService> {
        TaskDumpsServer::new(DumpService { agent }).max_encoding_message_size(MAX_REPLY)
    }
}

#[tonic::async_trait]
impl TaskDumps for DumpService {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoReply>, Status> {
        let agent = &self.agent;
        let ready = agent.ready();
        Ok(Response::new(InfoReply {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            // Per-task captures: no pause, so no dump windows, and a
            // client may ask as often as the agent's interval allows.
            dumps_supported: ready.is_ok(),
            why_not: ready.err().unwrap_or_default().into(),
            min_interval_ms: agent.min_interval().as_millis() as u64,
            holds_wakers: agent.serves_console(),
            recent_dumps: agent.recent_dumps(),
        }))
    }

    async fn dump(&self, req: Request<DumpRequest>) -> Result<Response<DumpReply>, Status> {
        let timeout = match req.get_ref().timeout_ms {
            0 => DEFAULT_TIMEOUT,
            ms => Duration::from_millis(ms),
        };
        self.agent
            .dump(timeout)
            .await
            .map(Response::new)
            .map_err(|e| match e {
                crate::DumpError::Busy => Status::resource_exhausted(e.to_string()),
                crate::DumpError::Refused(why) => Status::unavailable(why),
            })
    }
}

/// Plain HTTP on the gRPC port: `GET /metrics` for Prometheus, `GET /` for
/// a person who points a browser or curl at it; anything else goes on to
/// the gRPC services (HTTP/1.1 requests that are not these get a 404).
#[derive(Clone)]
pub(crate) struct HttpLayer {
    agent: Agent,
    policy: PolicyCell,
}

impl<S> Layer<S> for HttpLayer {
    type Service = Http<S>;
    fn layer(&self, inner: S) -> Http<S> {
        Http {
            inner,
            agent: self.agent.clone(),
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Http<S> {
    inner: S,
    agent: Agent,
    policy: PolicyCell,
}

impl<S> Service<http::Request<tonic::body::Body>> for Http<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        let is_grpc = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if is_grpc {
            // Inspection: every gRPC method, checked before any of them
            // runs or reads the request's body.
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            let verdict = match self.policy.get() {
                Some(p) => p.inspect(auth),
                None => Err(crate::access::Refusal::Unauthenticated),
            };
            return match verdict {
                Ok(()) => Box::pin(self.inner.call(req)),
                Err(why) => {
                    self.agent.refused_access();
                    let status = match why {
                        crate::access::Refusal::Unauthenticated => {
                            Status::unauthenticated(why.message())
                        }
                        crate::access::Refusal::ReadOnly => {
                            Status::permission_denied(why.message())
                        }
                    };
                    Box::pin(async move { Ok(status.into_http()) })
                }
            };
        }
        let agent = self.agent.clone();
        let (parts, _) = req.into_parts();
        let auth = parts
            .headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let access = match self.policy.get() {
            Some(p) => Access::of(p.inspect(auth), auth.is_some()),
            None => Access::WrongToken,
        };
        Box::pin(async move { Ok(plain_http(&agent, &parts, access).await) })
    }
}

/// What a plain HTTP request may see: the read-only endpoints serve
/// everyone, and `/debug/pprof/tasks` adds the tasks' stacks for a
/// request that may inspect; one that presents a wrong token is refused
/// (a scraper with a stale token should fail, not quietly lose stacks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Access {
    Inspect,
    ReadOnly,
    WrongToken,
}

impl Access {
    fn of(verdict: Result<(), crate::access::Refusal>, presented: bool) -> Access {
        match verdict {
            Ok(()) => Access::Inspect,
            Err(crate::access::Refusal::Unauthenticated) if presented => Access::WrongToken,
            Err(_) => Access::ReadOnly,
        }
    }
}

async fn plain_http(
    agent: &Agent,
    req: &http::request::Parts,
    access: Access,
) -> http::Response<tonic::body::Body> {
    let reply = |status: http::StatusCode, ctype: &'static str, body: String| {
        let mut r = http::Response::new(tonic::body::Body::new(body));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ctype),
        );
        r
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    let head = req.method == http::Method::HEAD;
    if req.method != http::Method::GET && !head {
        return reply(
            http::StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "taskscope-agent: only GET here\n".into(),
        );
    }
    match req.uri.path() {
        "/metrics" => {
            let om = crate::metrics::wants_openmetrics(
                req.headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
            );
            let (body, ctype) = agent.metrics(om).await;
            reply(
                http::StatusCode::OK,
                ctype,
                if head { String::new() } else { body },
            )
        }
        "/debug/pprof/tasks" => {
            if access == Access::WrongToken {
                agent.refused_access();
                return reply(
                    http::StatusCode::UNAUTHORIZED,
                    TEXT,
                    "taskscope-agent: wrong token (the profile is served without one, with counts per spawn location only)\n".into(),
                );
            }
            // `?capture=0`: only the captures that already hold.
            let capture = !req
                .uri
                .query()
                .unwrap_or_default()
                .split('&')
                .any(|kv| kv == "capture=0");
            // HEAD: the headers only, no walk and no captures.
            let mut r = http::Response::new(if head {
                tonic::body::Body::default()
            } else {
                let body = agent.task_profile(access == Access::Inspect, capture).await;
                tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(body)))
            });
            let h = r.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(
                http::header::CONTENT_DISPOSITION,
                http::HeaderValue::from_static("attachment; filename=\"tasks.pb.gz\""),
            );
            r
        }
        "/" => reply(
            http::StatusCode::OK,
            TEXT,
            format!(
                "taskscope-agent {}\n\nGET /metrics            Prometheus / OpenMetrics: live tasks per spawn location\nGET /debug/pprof/tasks  pprof task profile (go tool pprof, Pyroscope); stacks with the token\ngRPC                    taskscope connect {}\n",
                env!("CARGO_PKG_VERSION"),
                agent.bound().unwrap_or_default()
            ),
        ),
        _ => reply(
            http::StatusCode::NOT_FOUND,
            TEXT,
            "taskscope-agent: not found (GET /metrics, GET /debug/pprof/tasks, or gRPC)\n".into(),
        ),
    }
}
