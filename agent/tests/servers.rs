//! The drop-in servers and the executor, on real runtimes with the hooks
//! source, real axum and tonic services and real HTTP/1, HTTP/2 and gRPC
//! clients: each connection task counts at the line that started the
//! server and captures itself (an idle keep-alive connection reads as a
//! socket read), HTTP/2 streams count at hyper's line split by that
//! server, a pooled client's connections split by the tasks that opened
//! them, and nothing counts at the agent's own source. What users rely on
//! still works: connection info, graceful shutdown, HTTP/1 and HTTP/2.

use std::net::SocketAddr;
use std::time::Duration;
use taskscope_agent::Agent;
use taskscope_agent::hooks::Group;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{hooked_runtime, wait_until};

const WITHIN: Duration = Duration::from_secs(30);

/// A live group's place: (file, line, split, spawner's line).
type Place = (String, u32, bool, Option<u32>);

/// Each live group's place, live tasks and reachable tasks.
type Places = Vec<(Place, u64, u64)>;

fn place(g: &Group) -> Place {
    (
        g.site.location.file().to_string(),
        g.site.location.line(),
        g.site.split,
        g.site.spawner.map(|s| s.line()),
    )
}

fn live_places(agent: &Agent) -> Places {
    let r = agent.recorder().expect("recorder");
    let mut v: Vec<_> = r
        .groups()
        .groups
        .iter()
        .filter(|g| g.live > 0)
        .map(|g| (place(g), g.live, g.waits.reachable))
        .collect();
    v.sort();
    v
}

/// No live task counts at a line of the agent's own source.
fn assert_none_in_agent(agent: &Agent) {
    for (p, live, _) in live_places(agent) {
        assert!(
            !p.0.contains("agent/src/") && !p.0.contains("taskscope-agent"),
            "{live} tasks at the agent's own {p:?}"
        );
    }
}

/// The captured tasks of the place at (`file`, `line`), by their leaves'
/// frames, once `n` of them are captured.
fn captured_at(agent: &Agent, line: u32, n: usize) -> Vec<String> {
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client");
    let mut last = Vec::new();
    let deadline = std::time::Instant::now() + WITHIN;
    while std::time::Instant::now() < deadline {
        let reply = client
            .block_on(agent.dump(Duration::from_secs(1)))
            .expect("waits");
        last = reply
            .tasks
            .iter()
            .filter(|t| {
                let l = &reply.locations[(t.location as usize).saturating_sub(1)];
                t.location > 0 && l.file == file!() && l.line == line && !t.split
            })
            .map(|t| {
                reply.traces[t.trace as usize]
                    .leaves
                    .iter()
                    .flat_map(|l| l.frames.iter())
                    .map(|f| format!("{} ({})", f.name, f.file))
                    .collect::<Vec<_>>()
                    .join(" > ")
            })
            .collect();
        if last.len() >= n {
            return last;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{n} captures at line {line}: {last:#?}");
}

/// A socket read: tokio's I/O readiness for reading, under the stream's
/// read.
fn is_socket_read(frames: &str) -> bool {
    frames.contains("io/registration.rs") || frames.contains("poll_read")
}

/// An HTTP/1.1 keep-alive request on a raw connection; returns the body
/// and leaves the connection open and idle.
async fn get(conn: &mut tokio::net::TcpStream, path: &str) -> String {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = conn.read(&mut chunk).await.expect("response");
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")?
                        .parse()
                        .ok()
                })
                .unwrap_or(0);
            if body.len() >= len {
                return body[..len].to_string();
            }
        }
    }
}

#[test]
fn axum_connections_count_at_the_serve_line_and_capture_themselves() {
    use axum::extract::ConnectInfo;
    use axum::routing::get as route;
    let agent = Agent::with_min_interval(Duration::ZERO);
    let rt = hooked_runtime(&agent, false);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, serve_line, served) = rt.block_on(async {
        let app = axum::Router::new()
            .route(
                "/who",
                route(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
            )
            .route("/never", route(std::future::pending::<&'static str>));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serve_line = line!() + 1;
        let server = taskscope_agent::axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        });
        assert_eq!(server.local_addr().unwrap(), addr);
        let served = tokio::spawn(std::future::IntoFuture::into_future(server));
        (addr, serve_line, served)
    });
    // Five HTTP/1.1 clients that asked once and went quiet, each told its
    // own address (ConnectInfo).
    let mut idle = Vec::new();
    rt.block_on(async {
        for _ in 0..5 {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let me = c.local_addr().unwrap().to_string();
            assert_eq!(get(&mut c, "/who").await, me);
            idle.push(c);
        }
    });
    let here = |p: &Place| p.0 == file!() && p.1 == serve_line;
    wait_until(
        "the five connections at the serve line, all reachable",
        WITHIN,
        || live_places(&agent),
        |v| {
            v.iter()
                .any(|(p, live, reach)| here(p) && !p.2 && *live == 5 && *reach == 5)
        },
    );
    let waits = captured_at(&agent, serve_line, 5);
    assert!(waits.iter().all(|w| is_socket_read(w)), "{waits:#?}");

    // HTTP/2 (prior knowledge): a request the handler never answers keeps
    // its stream task, spawned by hyper through the agent's executor.
    let h2 = rt.block_on(async {
        let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
        let conn = tokio::spawn(conn);
        let req = http::Request::get("http://x/never")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let pending = tokio::spawn(async move { send.send_request(req).await });
        (conn, pending)
    });
    let seen = wait_until(
        "the HTTP/2 stream at hyper's line, split by the serve line",
        WITHIN,
        || live_places(&agent),
        |v| {
            v.iter().any(|(p, live, reach)| {
                p.0.ends_with("src/rt/bounds.rs")
                    && p.2
                    && p.3 == Some(serve_line)
                    && *live == 1
                    && *reach == 1
            }) && v.iter().any(|(p, live, _)| here(p) && *live == 6)
        },
    );
    assert_none_in_agent(&agent);
    drop(seen);

    // Graceful shutdown: the HTTP/2 client goes, the idle connections are
    // closed, and the server completes once every connection ended.
    rt.block_on(async {
        h2.1.abort();
        h2.0.abort();
        let _ = stop_tx.send(());
        tokio::time::timeout(WITHIN, served)
            .await
            .expect("graceful shutdown ends")
            .expect("server task")
            .expect("server");
        for mut c in idle {
            let mut b = [0u8; 8];
            let n = tokio::time::timeout(WITHIN, c.read(&mut b))
                .await
                .expect("closed");
            assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        }
    });
    wait_until(
        "no connection task left",
        WITHIN,
        || live_places(&agent),
        |v| !v.iter().any(|(p, _, _)| here(p)),
    );
}

/// A gRPC service whose `Info` tells the caller's address as tonic's own
/// server would give it.
struct Echo;

#[tonic::async_trait]
impl taskscope_agent::proto::task_dumps_server::TaskDumps for Echo {
    async fn info(
        &self,
        req: tonic::Request<taskscope_agent::proto::InfoRequest>,
    ) -> Result<tonic::Response<taskscope_agent::proto::InfoReply>, tonic::Status> {
        Ok(tonic::Response::new(taskscope_agent::proto::InfoReply {
            why_not: format!("{:?}", req.remote_addr()),
            ..Default::default()
        }))
    }

    async fn dump(
        &self,
        _: tonic::Request<taskscope_agent::proto::DumpRequest>,
    ) -> Result<tonic::Response<taskscope_agent::proto::DumpReply>, tonic::Status> {
        std::future::pending().await
    }
}

#[test]
fn tonic_connections_count_at_the_serve_line_and_know_their_peer() {
    use taskscope_agent::proto::task_dumps_client::TaskDumpsClient;
    use taskscope_agent::proto::task_dumps_server::TaskDumpsServer;
    let agent = Agent::with_min_interval(Duration::ZERO);
    let rt = hooked_runtime(&agent, false);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr, serve_line, served) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes = tonic::service::Routes::new(TaskDumpsServer::new(Echo));
        let server = taskscope_agent::tonic::serve(listener, routes);
        let serve_line = line!() - 1;
        let server = server.with_graceful_shutdown(async {
            let _ = stop_rx.await;
        });
        (
            addr,
            serve_line,
            tokio::spawn(std::future::IntoFuture::into_future(server)),
        )
    });
    let (client, call) = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = TaskDumpsClient::new(channel);
        let info = client
            .info(taskscope_agent::proto::InfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(
            info.why_not.starts_with("Some(127.0.0.1:"),
            "{}",
            info.why_not
        );
        // A call that never returns: its stream task stays.
        let mut c = client.clone();
        let call =
            tokio::spawn(
                async move { c.dump(taskscope_agent::proto::DumpRequest::default()).await },
            );
        (client, call)
    });
    let here = |p: &Place| p.0 == file!() && p.1 == serve_line;
    wait_until(
        "the gRPC connection at the serve line and its open call at hyper's, split by it",
        WITHIN,
        || live_places(&agent),
        |v| {
            v.iter()
                .any(|(p, live, reach)| here(p) && !p.2 && *live == 1 && *reach == 1)
                && v.iter().any(|(p, live, _)| {
                    p.0.ends_with("src/rt/bounds.rs") && p.3 == Some(serve_line) && *live == 1
                })
        },
    );
    let waits = captured_at(&agent, serve_line, 1);
    assert!(waits.iter().all(|w| is_socket_read(w)), "{waits:#?}");
    assert_none_in_agent(&agent);
    rt.block_on(async {
        call.abort();
        drop(client);
        let _ = stop_tx.send(());
        tokio::time::timeout(WITHIN, served)
            .await
            .expect("graceful shutdown ends")
            .expect("server task")
            .expect("server");
    });
}

/// One hyper-util client, built with the agent's executor, used from two
/// places at once: its connection tasks count at the line that built the
/// executor, one group per place that opened them.
#[test]
fn a_pooled_clients_connections_split_by_the_tasks_that_opened_them() {
    use hyper_util::client::legacy::Client;
    let agent = Agent::with_min_interval(Duration::ZERO);
    let rt = hooked_runtime(&agent, false);
    // The client is kept: its pool (and connections) live as long.
    let (client, lines) = rt.block_on(async {
        // Answers once both requests are in: two connections at once.
        let both = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                let both = both.clone();
                async move {
                    both.wait().await;
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(std::future::IntoFuture::into_future(
            taskscope_agent::axum::serve(listener, app),
        ));
        let exec = taskscope_agent::TracedExecutor::new();
        let exec_line = line!() - 1;
        let client = Client::builder(exec).build_http::<String>();
        let url: http::Uri = format!("http://{addr}/").parse().unwrap();
        let (c, u) = (client.clone(), url.clone());
        let fetch_line = line!() + 1;
        let fetch = taskscope_agent::spawn(async move { c.get(u).await.map(|r| r.status()) });
        let (c, u) = (client.clone(), url);
        let health_line = line!() + 1;
        let health = taskscope_agent::spawn(async move { c.get(u).await.map(|r| r.status()) });
        assert!(fetch.await.unwrap().unwrap().is_success());
        assert!(health.await.unwrap().unwrap().is_success());
        (client, (exec_line, fetch_line, health_line))
    });
    let (exec_line, fetch_line, health_line) = lines;
    let by = |v: &Places, spawner: u32| {
        v.iter().any(|(p, live, reach)| {
            p.0 == file!()
                && p.1 == exec_line
                && p.2
                && p.3 == Some(spawner)
                && *live == 1
                && *reach == 1
        })
    };
    wait_until(
        "one pooled connection per place that opened it",
        WITHIN,
        || live_places(&agent),
        |v| by(v, fetch_line) && by(v, health_line),
    );
    assert_none_in_agent(&agent);
    // `/metrics` and the task profile name each split place alike:
    // `LINE ← SPAWNER`.
    let metrics = rt.block_on(agent.metrics(false)).0;
    let profile = rt.block_on(agent.task_profile(false, false));
    let profile = {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&profile[..])
            .read_to_end(&mut out)
            .expect("gzip");
        String::from_utf8_lossy(&out).into_owned()
    };
    let at = format!("{}:{exec_line}:", file!());
    for spawner in [fetch_line, health_line] {
        let by = format!(" ← {}:{spawner}:", file!());
        let series = metrics
            .lines()
            .find(|l| l.starts_with("taskscope_tasks_live") && l.contains(&at) && l.contains(&by));
        assert!(series.is_some(), "{spawner} in /metrics:\n{metrics}");
        assert!(
            profile.contains(&at) && profile.contains(&by),
            "{spawner} in the task profile"
        );
    }
    drop(client);
}
