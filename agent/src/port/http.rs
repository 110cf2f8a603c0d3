//! Plain HTTP on the agent's port, beside gRPC: `GET /metrics`,
//! `GET /debug/pprof/tasks`, `GET /`, and the access check every gRPC
//! request passes first.

use crate::Agent;
use crate::access::Policy;
use crate::access::Refusal;
use crate::metrics::{self, PROMETHEUS_TEXT};
use crate::profile::{self, Held};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::Status;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tower_layer::Layer;

/// Who may ask what, set once the server knows where it listens.
pub(crate) type PolicyCell = Arc<OnceLock<Policy>>;

/// How long a task profile's scrape waits for the captures it asked.
const PROFILE_CAPTURE_WAIT: Duration = Duration::from_millis(500);

/// Plain HTTP on the gRPC port: `GET /metrics` for Prometheus, `GET /` for
/// a person who points a browser or curl at it; anything else goes on to
/// the gRPC services (HTTP/1.1 requests that are not these get a 404).
#[derive(Clone)]
pub(crate) struct HttpLayer {
    agent: Agent,
    policy: PolicyCell,
}

impl HttpLayer {
    pub(crate) fn new(agent: Agent, policy: PolicyCell) -> HttpLayer {
        HttpLayer { agent, policy }
    }
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
                None => Err(Refusal::Unauthenticated),
            };
            return match verdict {
                Ok(()) => Box::pin(self.inner.call(req)),
                Err(why) => {
                    self.agent.refused_access();
                    let status = match why {
                        Refusal::Unauthenticated => Status::unauthenticated(why.message()),
                        Refusal::ReadOnly => Status::permission_denied(why.message()),
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
    fn of(verdict: Result<(), Refusal>, presented: bool) -> Access {
        match verdict {
            Ok(()) => Access::Inspect,
            Err(Refusal::Unauthenticated) if presented => Access::WrongToken,
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
            let om = metrics::wants_openmetrics(
                req.headers
                    .get(http::header::ACCEPT)
                    .and_then(|v| v.to_str().ok()),
            );
            let (body, ctype) = exposition(agent, om).await;
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
                let body = task_profile(agent, access == Access::Inspect, capture).await;
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
                agent.bound().map(|b| b.to_string()).unwrap_or_default()
            ),
        ),
        _ => reply(
            http::StatusCode::NOT_FOUND,
            TEXT,
            "taskscope-agent: not found (GET /metrics, GET /debug/pprof/tasks, or gRPC)\n".into(),
        ),
    }
}

/// The `/metrics` exposition (OpenMetrics or the Prometheus text format)
/// and its content type. Walks the live tasks on a blocking thread, one
/// scrape at a time.
pub(crate) async fn exposition(agent: &Agent, openmetrics: bool) -> (String, &'static str) {
    let permit = agent.inner.scrape.clone().acquire_owned().await;
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let stats = agent.site_stats();
        agent
            .inner
            .exporter
            .render(stats, agent.health(), openmetrics)
    })
    .await
    .unwrap_or_else(|_| {
        (
            "# taskscope-agent: the scrape failed\n".into(),
            PROMETHEUS_TEXT,
        )
    })
}

/// `GET /debug/pprof/tasks`: the live tasks per spawn location as a
/// gzipped pprof profile (see `profile`). With `stacks` (the request may
/// inspect), tasks whose capture holds come with their stack, and with
/// `capture` a round of captures is asked first, as a request for waits
/// would (bounded by the same interval and budget; skipped while another
/// client's request is served). Walks the tasks on a blocking thread, one
/// scrape at a time (shared with `/metrics`).
pub(crate) async fn task_profile(agent: &Agent, stacks: bool, capture: bool) -> Vec<u8> {
    // Only the hooks source puts captured stacks in the profile: a
    // console-mode agent asks no captures for it.
    if stacks
        && capture
        && let Some(r) = agent.recorder()
    {
        agent.inner.waits.refresh(r, PROFILE_CAPTURE_WAIT).await;
    }
    let permit = agent.inner.scrape.clone().acquire_owned().await;
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        profile_now(&agent, stacks)
    })
    .await
    .unwrap_or_default()
}

fn profile_now(agent: &Agent, stacks: bool) -> Vec<u8> {
    let sites = agent.site_stats();
    let recorder = agent.recorder();
    let held: Vec<Held> = match &recorder {
        Some(r) if stacks => r
            .held_stacks()
            .into_iter()
            .filter_map(|(site, stack, tasks)| {
                let ips = crate::stacks::get(stack)?;
                Some(Held {
                    // As `site_stats` names it, to match its sites.
                    location: site.name(),
                    trace: agent.inner.waits.resolver().trace(stack, &ips),
                    tasks,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let version = env!("CARGO_PKG_VERSION");
    let note = if stacks && recorder.is_some() {
        format!(
            "taskscope-agent {version}: live tasks per spawn location, with the stacks of captured waits"
        )
    } else if stacks {
        format!(
            "taskscope-agent {version}: live tasks per spawn location (console mode: no captured stacks)"
        )
    } else {
        format!(
            "taskscope-agent {version}: live tasks per spawn location (stacks need the agent's token)"
        )
    };
    profile::encode(&sites, &held, crate::wire::unix_now_ns(), &note)
}
