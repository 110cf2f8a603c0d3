//! A real HTTP service at saturation on loopback: a hyper hello-world
//! server, a task per connection, 2 worker threads, in a fresh process per
//! mode (`plain`, `hooks`: taskscope-agent's hooks source, `traced`: the
//! same with each connection task spawned by `taskscope_agent::spawn`,
//! `watched`: `traced` with a round of captures asked every second, as
//! while taskscope watches, and
//! with `--features console`, `console`: console-subscriber with its
//! defaults); this process is the load generator,
//! 64 keep-alive connections on a 2-thread runtime of its own, for 10 s
//! per round after 2 s of warm-up. Prints requests/s and p99 latency.
//! Rounds interleave the modes. `cargo bench -p taskscope-agent --bench
//! http`; `-- --quick`: one 3 s round of plain and hooks (CI smoke).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;

fn main() {
    if let Ok(mode) = std::env::var("TASKSCOPE_HTTP_MODE") {
        serve(&mode);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, secs, modes): (usize, u64, &[&str]) = if quick {
        (1, 3, &["plain", "hooks"])
    } else {
        (
            3,
            10,
            if cfg!(feature = "console") {
                &["plain", "console", "hooks", "traced", "watched"]
            } else {
                &["plain", "hooks", "traced", "watched"]
            },
        )
    };
    println!(
        "hyper hello-world, a task per connection, 2 server workers; {CONNECTIONS} connections for {secs}s, best of {rounds}"
    );
    let mut results: Vec<Vec<(f64, Duration)>> = vec![Vec::new(); modes.len()];
    for _ in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            results[i].push(round(mode, Duration::from_secs(secs)));
        }
    }
    println!(
        "{:<8} {:>12} {:>10} {:>12}",
        "mode", "requests/s", "p99", "vs plain"
    );
    let mut plain = None;
    for (mode, r) in modes.iter().zip(results) {
        let best = r
            .iter()
            .copied()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .expect("a round");
        if *mode == "plain" {
            plain = Some(best.0);
        }
        let ratio = plain.map_or(String::new(), |p| {
            format!("{:+.1}%", (best.0 / p - 1.0) * 100.0)
        });
        println!(
            "{:<8} {:>12.0} {:>10} {:>12}",
            mode,
            best.0,
            format!("{:.2}ms", best.1.as_secs_f64() * 1e3),
            ratio
        );
    }
}

/// One measurement: starts the server in `mode`, loads it, stops it.
fn round(mode: &str, secs: Duration) -> (f64, Duration) {
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .env("TASKSCOPE_HTTP_MODE", mode)
        .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0")
        .env("TASKSCOPE_AGENT_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .spawn()
        .expect("server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server address");
    let addr: std::net::SocketAddr = line.trim().parse().expect("address");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    let result = rt.block_on(load(addr, secs));
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn load(addr: std::net::SocketAddr, secs: Duration) -> (f64, Duration) {
    let warm = Instant::now() + Duration::from_secs(2);
    let end = warm + secs;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        set.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(conn);
            let mut lat = Vec::new();
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let req = Request::get("/")
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())
                    .expect("request");
                let res = send.send_request(req).await.expect("response");
                let _ = res.into_body().collect().await;
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
    all.sort_unstable();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or_default();
    (all.len() as f64 / secs.as_secs_f64(), p99)
}

fn serve(mode: &str) {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    // TASKSCOPE_AGENT_BIND, else TOKIO_CONSOLE_BIND, else 127.0.0.1:6669.
    let agent = taskscope_agent::Agent::builder()
        .with_default_env()
        .build()
        .expect("agent");
    let traced = mode == "traced" || mode == "watched";
    match mode {
        "plain" => {}
        #[cfg(feature = "console")]
        "console" => console_subscriber::init(),
        "hooks" | "traced" | "watched" => agent.install_hooks(&mut builder),
        other => panic!("unknown mode {other}"),
    }
    let rt = builder.build().expect("runtime");
    if mode == "watched" {
        let recorder = taskscope_agent::testing::recorder(&agent).expect("hooks");
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                recorder.request_captures(taskscope_agent::testing::Budget::default());
            }
        });
    }
    if mode == "hooks" || traced {
        agent.serve().expect("agent serves");
    }
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr"));
        loop {
            let (stream, _) = listener.accept().await.expect("accept");
            let conn = async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"Hello, world!",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            };
            if traced {
                taskscope_agent::spawn(conn);
            } else {
                tokio::spawn(conn);
            }
        }
    });
}
