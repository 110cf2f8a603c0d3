//! End to end against a hostile console endpoint of our own: a tonic server
//! on console-api's `Instrument` trait that speaks the protocol but sends
//! values no real subscriber would (a clock at the ends of the i64 range
//! and jumping by years, counters at `u64::MAX`, megabyte strings with
//! escape sequences, drops before creation), plus an agent endpoint whose
//! texts carry terminal escapes. `taskscope watch` must end on time, print
//! valid output, keep its memory small and put no raw target bytes on
//! stderr.

use console_api as api;
use std::pin::Pin;
use std::time::Duration;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::common;

const NOW: i64 = 1_800_000_000;
const YEAR: i64 = 365 * 86_400;
const EVIL: &str = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31mred";

struct Hostile;

type Updates = Pin<Box<dyn Stream<Item = Result<api::instrument::Update, Status>> + Send>>;
type Details = Pin<Box<dyn Stream<Item = Result<api::tasks::TaskDetails, Status>> + Send>>;
type States = Pin<Box<dyn Stream<Item = Result<api::instrument::State, Status>> + Send>>;

/// The n-th hostile update.
fn update(n: u64) -> api::instrument::Update {
    let seconds = match n % 6 {
        0 => NOW + n as i64,
        1 => i64::MAX,
        2 => i64::MIN,
        3 => NOW + 80 * YEAR,
        4 => NOW - 80 * YEAR,
        _ => i64::MAX / 1_000_000_000 - 1,
    };
    let ts = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
    let mut stats = std::collections::HashMap::new();
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let id = (n * 50 + i) % 400 + 1;
        stats.insert(
            id,
            api::tasks::Stats {
                created_at: Some(ts(seconds.saturating_sub(i as i64))),
                dropped_at: (i % 3 == 0).then(|| ts(seconds.saturating_sub(YEAR))),
                wakes: u64::MAX,
                waker_clones: u64::MAX,
                waker_drops: i,
                poll_stats: Some(api::PollStats {
                    polls: u64::MAX - i,
                    first_poll: Some(ts(i64::MIN)),
                    last_poll_started: Some(ts(i64::MAX)),
                    last_poll_ended: Some(ts(seconds)),
                    busy_time: Some(prost_types::Duration {
                        seconds: i64::MAX,
                        nanos: -5,
                    }),
                }),
                scheduled_time: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: i32::MIN,
                }),
                ..api::tasks::Stats::default()
            },
        );
        let name = if i == 0 {
            format!("{EVIL}{}", "x".repeat(1 << 20))
        } else {
            format!("{EVIL}-{i}")
        };
        tasks.push(api::tasks::Task {
            id: Some(api::Id { id }),
            fields: vec![api::Field {
                name: Some(api::field::Name::StrName("task.name".into())),
                value: Some(api::field::Value::StrVal(name)),
                metadata_id: None,
            }],
            location: Some(api::Location {
                file: Some(format!("src/{EVIL}/hostile.rs")),
                module_path: None,
                line: Some(u32::MAX),
                column: Some(i as u32),
            }),
            ..api::tasks::Task::default()
        });
    }
    api::instrument::Update {
        now: Some(ts(seconds)),
        task_update: Some(api::tasks::TaskUpdate {
            new_tasks: tasks,
            stats_update: stats,
            dropped_events: u64::MAX,
        }),
        new_metadata: (n == 0).then(api::RegisterMetadata::default),
        ..api::instrument::Update::default()
    }
}

#[tonic::async_trait]
impl api::instrument::instrument_server::Instrument for Hostile {
    type WatchUpdatesStream = Updates;
    type WatchTaskDetailsStream = Details;
    type WatchStateStream = States;

    async fn watch_updates(
        &self,
        _: Request<api::instrument::InstrumentRequest>,
    ) -> Result<Response<Updates>, Status> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            for n in 0..30 {
                if tx.send(Ok(update(n))).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Then the stream breaks with a status text full of escapes
            // (taskscope reconnects and prints it as a warning).
            let _ = tx.send(Err(Status::internal(EVIL))).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn watch_task_details(
        &self,
        _: Request<api::instrument::TaskDetailsRequest>,
    ) -> Result<Response<Details>, Status> {
        Err(Status::unimplemented(EVIL))
    }

    async fn watch_state(
        &self,
        _: Request<api::instrument::StateRequest>,
    ) -> Result<Response<States>, Status> {
        Err(Status::unimplemented(EVIL))
    }

    async fn pause(
        &self,
        _: Request<api::instrument::PauseRequest>,
    ) -> Result<Response<api::instrument::PauseResponse>, Status> {
        Ok(Response::new(api::instrument::PauseResponse {}))
    }

    async fn resume(
        &self,
        _: Request<api::instrument::ResumeRequest>,
    ) -> Result<Response<api::instrument::ResumeResponse>, Status> {
        Ok(Response::new(api::instrument::ResumeResponse {}))
    }
}

/// `taskscope.agent.v1.TaskDumps` whose texts carry terminal escapes.
#[derive(Clone)]
struct HostileAgent;

impl tonic::server::NamedService for HostileAgent {
    const NAME: &'static str = taskscope_proto::SERVICE;
}

struct Info;

/// `InfoReply` as an older agent sent it: today's fields and tag 5, the
/// windows of its whole-runtime dumps (reserved now), lied about too.
#[derive(Clone, PartialEq, prost::Message)]
struct OlderInfoReply {
    #[prost(string, tag = "1")]
    agent_version: String,
    #[prost(bool, tag = "2")]
    dumps_supported: bool,
    #[prost(string, tag = "3")]
    why_not: String,
    #[prost(uint64, tag = "4")]
    min_interval_ms: u64,
    #[prost(message, repeated, tag = "5")]
    recent_dumps: Vec<OlderDumpWindow>,
    #[prost(bool, tag = "6")]
    holds_wakers: bool,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
struct OlderDumpWindow {
    #[prost(int64, tag = "1")]
    start_unix_ns: i64,
    #[prost(int64, tag = "2")]
    end_unix_ns: i64,
}

impl tonic::server::UnaryService<taskscope_proto::InfoRequest> for Info {
    type Response = OlderInfoReply;
    type Future = tonic::codegen::BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, _: Request<taskscope_proto::InfoRequest>) -> Self::Future {
        Box::pin(async {
            Ok(Response::new(OlderInfoReply {
                agent_version: EVIL.into(),
                dumps_supported: false,
                why_not: EVIL.into(),
                min_interval_ms: u64::MAX,
                recent_dumps: vec![OlderDumpWindow {
                    start_unix_ns: i64::MAX,
                    end_unix_ns: i64::MIN,
                }],
                holds_wakers: true,
            }))
        })
    }
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for HostileAgent {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(Info, req).await)
        })
    }
}

/// Serves the hostile console on an ephemeral loopback port, on a runtime
/// of its own that lives as long as the returned handle.
fn serve() -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(
        tonic::transport::Server::builder()
            .add_service(
                api::instrument::instrument_server::InstrumentServer::new(Hostile)
                    .max_encoding_message_size(64 << 20),
            )
            .add_service(HostileAgent)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (addr, rt)
}

#[test]
fn watch_ends_on_time_with_valid_output_against_a_hostile_target() {
    let (addr, _server) = serve();
    let common::Run {
        code,
        stdout,
        stderr,
        took: elapsed,
        peak_kib: peak,
    } = common::run(
        &["watch", &addr, "--duration", "4s", "--format", "json"],
        Duration::from_secs(40),
    );
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(
        elapsed < Duration::from_secs(20),
        "watch --duration 4s took {elapsed:?}"
    );
    assert!(peak < 300 * 1024, "peak RSS {peak} KiB");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../assets/report.schema.json")).expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    if let Some(e) = validator.iter_errors(&report).next() {
        panic!("report does not match its schema: {e}");
    }
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("clock jumped"), "{warnings}");
    assert!(warnings.contains("impossible timestamps"), "{warnings}");
    assert!(warnings.contains("strings over 4 KiB"), "{warnings}");
    assert!(
        !stderr.contains('\u{1b}'),
        "raw escape on stderr: {stderr:?}"
    );
    // The texts arrived, made inert.
    assert!(stderr.contains("broke"), "{stderr}");
    assert!(stderr.contains("red"), "{stderr}");
    assert!(warnings.contains("cannot take captures"), "{warnings}");
    assert!(!stdout.contains('\u{1b}'), "raw escape on stdout");
}
