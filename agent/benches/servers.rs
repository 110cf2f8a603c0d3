//! What the drop-in servers cost a service, beside the servers they
//! replace, each in a fresh process per mode (2 worker threads):
//! - `axum`: `axum::serve` on a plain tokio runtime (what a service has
//!   before the agent); `axum+agent`: `taskscope_agent::axum::serve` on a
//!   runtime with the hooks source, the agent serving, and a round of
//!   captures asked every second (as while taskscope watches);
//! - `tonic`: tonic's `Server::serve_with_incoming`, plain; `tonic+agent`:
//!   `taskscope_agent::tonic::serve`, as above.
//!
//! This process is the load generator: for HTTP, 64 keep-alive HTTP/1
//! connections; for gRPC, 8 HTTP/2 connections with 8 calls in flight on
//! each (a unary call); 10 s per round after 2 s of warm-up, rounds
//! interleaving the modes. Then each server holds 2 000 idle connections
//! (HTTP/1 keep-alive after one request; one open HTTP/2 connection each
//! for gRPC): the server's resident memory per connection. Prints
//! requests/s, p99 latency and bytes per idle connection.
//! `cargo bench -p taskscope-agent --bench servers`; `-- --quick`: one 2 s
//! round and 200 idle connections (CI smoke).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use taskscope_agent::proto::task_dumps_client::TaskDumpsClient;
use taskscope_agent::proto::task_dumps_server::{TaskDumps, TaskDumpsServer};
use taskscope_agent::proto::{DumpReply, DumpRequest, InfoReply, InfoRequest};

const HTTP_CONNECTIONS: usize = 64;
const GRPC_CHANNELS: usize = 8;
const GRPC_IN_FLIGHT: usize = 8;

fn main() {
    if let Ok(mode) = std::env::var("TASKSCOPE_SERVERS_MODE") {
        serve(&mode);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs, idle) = if quick { (1, 2, 200) } else { (3, 10, 2000) };
    let modes = ["axum", "axum+agent", "tonic", "tonic+agent"];
    println!(
        "HTTP: {HTTP_CONNECTIONS} keep-alive connections; gRPC: {GRPC_CHANNELS} connections x {GRPC_IN_FLIGHT} unary calls in flight; 2 server workers; {secs}s rounds, median of {rounds}; {idle} idle connections for memory"
    );
    let mut results: Vec<Vec<(f64, Duration)>> = vec![Vec::new(); modes.len()];
    for _ in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            results[i].push(round(mode, Duration::from_secs(secs)));
        }
    }
    println!(
        "{:<12} {:>12} {:>10} {:>10} {:>16}",
        "mode", "requests/s", "p99", "vs plain", "B/idle conn"
    );
    let mut plain = 0.0;
    for (mode, mut r) in modes.iter().zip(results) {
        r.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (rps, p99) = r[r.len() / 2];
        if !mode.ends_with("+agent") {
            plain = rps;
        }
        let per_conn = idle_bytes(mode, idle);
        println!(
            "{:<12} {:>12.0} {:>10} {:>10} {:>16.0}",
            mode,
            rps,
            format!("{:.2}ms", p99.as_secs_f64() * 1e3),
            format!("{:+.1}%", (rps / plain - 1.0) * 100.0),
            per_conn
        );
    }
}

/// The server of `mode` in a fresh process, and its address.
fn start(mode: &str) -> (Child, std::net::SocketAddr) {
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .env("TASKSCOPE_SERVERS_MODE", mode)
        .env("TASKSCOPE_AGENT_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .expect("server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server address");
    (child, line.trim().parse().expect("address"))
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime")
}

/// One measurement: starts the server in `mode`, loads it, stops it.
fn round(mode: &str, secs: Duration) -> (f64, Duration) {
    let (mut child, addr) = start(mode);
    let rt = client_runtime();
    let result = if mode.starts_with("axum") {
        rt.block_on(load_http(addr, secs))
    } else {
        rt.block_on(load_grpc(addr, secs))
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Latencies measured after the warm-up, to requests/s and p99.
fn summary(mut all: Vec<Duration>, secs: Duration) -> (f64, Duration) {
    all.sort_unstable();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or_default();
    (all.len() as f64 / secs.as_secs_f64(), p99)
}

async fn load_http(addr: std::net::SocketAddr, secs: Duration) -> (f64, Duration) {
    let warm = Instant::now() + Duration::from_secs(2);
    let end = warm + secs;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..HTTP_CONNECTIONS {
        set.spawn(async move {
            let mut send = http1(addr).await;
            let mut lat = Vec::new();
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                get(&mut send).await;
                if t >= warm {
                    lat.push(t.elapsed());
                }
            }
            lat
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("client task"));
    }
    summary(all, secs)
}

async fn http1(
    addr: std::net::SocketAddr,
) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    send
}

async fn get(send: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) {
    let req = Request::get("/")
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = send.send_request(req).await.expect("response");
    let _ = res.into_body().collect().await;
}

async fn grpc(addr: std::net::SocketAddr) -> TaskDumpsClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    TaskDumpsClient::new(channel)
}

async fn load_grpc(addr: std::net::SocketAddr, secs: Duration) -> (f64, Duration) {
    let warm = Instant::now() + Duration::from_secs(2);
    let end = warm + secs;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..GRPC_CHANNELS {
        let client = grpc(addr).await;
        for _ in 0..GRPC_IN_FLIGHT {
            let mut client = client.clone();
            set.spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let t = Instant::now();
                    if t >= end {
                        break;
                    }
                    client.info(InfoRequest {}).await.expect("call");
                    if t >= warm {
                        lat.push(t.elapsed());
                    }
                }
                lat
            });
        }
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("client task"));
    }
    summary(all, secs)
}

/// The server's resident memory per idle connection: `n` connections
/// opened (one request each, then quiet), RSS after minus before.
fn idle_bytes(mode: &str, n: usize) -> f64 {
    let (mut child, addr) = start(mode);
    let rt = client_runtime();
    let pid = child.id();
    let before = rt.block_on(async {
        // A first connection, so that lazily made state is counted before.
        if mode.starts_with("axum") {
            get(&mut http1(addr).await).await;
        } else {
            grpc(addr).await.info(InfoRequest {}).await.expect("call");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss(pid)
    });
    let held = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..n {
            if mode.starts_with("axum") {
                let mut send = http1(addr).await;
                get(&mut send).await;
                held.push(Box::new(send) as Box<dyn std::any::Any + Send>);
            } else {
                let mut c = grpc(addr).await;
                c.info(InfoRequest {}).await.expect("call");
                held.push(Box::new(c));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        held
    });
    let after = rss(pid);
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
    (after.saturating_sub(before)) as f64 / n as f64
}

/// A process's resident memory in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The gRPC service: `Info` answers at once.
struct Svc;

#[tonic::async_trait]
impl TaskDumps for Svc {
    async fn info(
        &self,
        _: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<InfoReply>, tonic::Status> {
        Ok(tonic::Response::new(InfoReply {
            agent_version: "bench".into(),
            ..Default::default()
        }))
    }

    async fn dump(
        &self,
        _: tonic::Request<DumpRequest>,
    ) -> Result<tonic::Response<DumpReply>, tonic::Status> {
        Err(tonic::Status::unimplemented("bench"))
    }
}

fn serve(mode: &str) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let agent = taskscope_agent::Agent::new();
    let with_agent = mode.ends_with("+agent");
    if with_agent {
        agent.install_hooks(&mut builder);
    }
    let rt = builder.build().expect("runtime");
    if with_agent {
        agent
            .serve(taskscope_agent::bind_address())
            .expect("agent serves");
        // A round of captures every second, as while taskscope watches.
        let recorder = agent.recorder().expect("hooks");
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                recorder.request_captures(taskscope_agent::hooks::Budget::default());
            }
        });
    }
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "Hello, world!" }));
        let routes = tonic::service::Routes::new(TaskDumpsServer::new(Svc));
        match mode {
            "axum" => axum::serve(listener, app).await.expect("serve"),
            "axum+agent" => taskscope_agent::axum::serve(listener, app)
                .await
                .expect("serve"),
            "tonic" => tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .expect("serve"),
            "tonic+agent" => taskscope_agent::tonic::serve(listener, routes)
                .await
                .expect("serve"),
            other => panic!("unknown mode {other}"),
        }
    });
}
