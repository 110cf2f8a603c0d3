//! What a task waits on, from real async stacks: a hyper client connection
//! waiting for its peer's response (it also watches whether the caller
//! gave up: `oneshot::Sender::poll_closed`), a `watch` receiver (`changed()`
//! is built on `Notify`), a task awaiting a oneshot reply, and a
//! `CancellationToken`-style wait beside a read. The stacks come from real
//! per-task captures (the tasks spawned with `taskscope_agent::spawn` on a
//! runtime with the hooks source) here (this build: debug), and from frames
//! recorded the same way from a release build (`tests/fixtures/frames/`;
//! `TASKSCOPE_RECORD_FRAMES=DIR cargo test --release --test tests stack_rules::`
//! writes them).

use std::collections::HashMap;
use std::time::Duration;
use taskscope::analysis::Reason;
use taskscope::analysis::stack;
use taskscope::model::{Frame, Trace};

/// The scenarios, by name, and the reason each must read as.
const EXPECTED: &[(&str, Reason)] = &[
    ("hyper-client-conn", Reason::ResponseRead),
    ("watch-receiver", Reason::Watch),
    ("oneshot-reply", Reason::Oneshot),
    ("read-or-closed", Reason::SocketRead),
    ("hyper-call", Reason::HyperResponse),
    ("reqwest-call", Reason::ReqwestResponse),
    ("axum-idle-conn", Reason::RequestRead),
    ("accept-loop", Reason::Accept),
    ("udp-recv", Reason::SocketRead),
    ("grpc-call", Reason::GrpcResponse),
];

fn trace(t: &taskscope_agent::proto::Trace) -> Trace {
    Trace {
        leaves: t
            .leaves
            .iter()
            .map(|l| {
                l.frames
                    .iter()
                    .map(|f| Frame {
                        name: f.name.clone(),
                        file: (!f.file.is_empty()).then(|| f.file.clone()),
                        line: (f.line != 0).then_some(f.line),
                    })
                    .collect()
            })
            .collect(),
    }
}

/// Runs each scenario in a real runtime, captures it, and returns each
/// scenario's stack.
fn record() -> HashMap<&'static str, Trace> {
    use http_body_util::Empty;
    use hyper_util::rt::TokioIo;
    let agent = taskscope_agent::Agent::with_min_interval(Duration::ZERO);
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().unwrap();
    let ids = rt.block_on(async {
        let mut ids = HashMap::new();
        // A peer that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut keep = Vec::new();
            loop {
                let (s, _) = silent.accept().await.unwrap();
                keep.push(s);
            }
        });
        // hyper's client connection task: the request is written, the
        // response never comes.
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(TokioIo::new(tcp))
                .await
                .unwrap();
        let h = taskscope_agent::spawn(async move {
            let _ = conn.await;
        });
        ids.insert("hyper-client-conn", h.id());
        let req = hyper::Request::get("/").body(Empty::new()).unwrap();
        // Its caller, awaiting the response.
        let h = taskscope_agent::spawn(async move {
            let _ = sender.send_request(req).await;
        });
        ids.insert("hyper-call", h.id());
        // A reqwest call to the same silent peer, with no timeout.
        let h = taskscope_agent::spawn(async move {
            let _ = reqwest::Client::new()
                .get(format!("http://{addr}/"))
                .send()
                .await;
        });
        ids.insert("reqwest-call", h.id());
        // An accept loop, and a UDP receive: waits tokio does not trace,
        // captured where they register their waker.
        let idle = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h = taskscope_agent::spawn(async move {
            while let Ok((s, _)) = idle.accept().await {
                drop(s);
            }
        });
        ids.insert("accept-loop", h.id());
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let h = taskscope_agent::spawn(async move {
            let mut buf = [0u8; 64];
            let _ = udp.recv_from(&mut buf).await;
        });
        ids.insert("udp-recv", h.id());
        // A gRPC call the server never answers (the agent's own `Capture`
        // on a server whose handler never returns).
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc_addr = grpc.local_addr().unwrap();
        let routes = tonic::service::Routes::new(
            taskscope_proto::task_dumps_server::TaskDumpsServer::new(Silent),
        );
        tokio::spawn(std::future::IntoFuture::into_future(
            taskscope_agent::tonic::serve(grpc, routes),
        ));
        let h = taskscope_agent::spawn(async move {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc_addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut client = taskscope_proto::task_dumps_client::TaskDumpsClient::new(channel);
            let _ = client.dump(taskscope_proto::DumpRequest::default()).await;
        });
        ids.insert("grpc-call", h.id());
        // A watch receiver whose sender never sends.
        let (wtx, mut wrx) = tokio::sync::watch::channel(0u32);
        let h = taskscope_agent::spawn(async move {
            let _ = wrx.changed().await;
        });
        ids.insert("watch-receiver", h.id());
        std::mem::forget(wtx);
        // A plain reply that never comes.
        let (otx, orx) = tokio::sync::oneshot::channel::<u32>();
        let h = taskscope_agent::spawn(async move {
            let _ = orx.await;
        });
        ids.insert("oneshot-reply", h.id());
        std::mem::forget(otx);
        // A read raced against "has the caller gone" (the pattern of
        // hyper's dispatcher and of cancellation tokens).
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut otx2, _orx2) = tokio::sync::oneshot::channel::<u32>();
        let h = taskscope_agent::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut tcp = tcp;
            let mut buf = [0u8; 16];
            tokio::select! {
                _ = otx2.closed() => {}
                _ = tcp.read(&mut buf) => {}
            }
        });
        ids.insert("read-or-closed", h.id());
        std::mem::forget(_orx2);
        // An axum server through the agent's drop-in, with graceful
        // shutdown, and a client that asked once and went quiet: its
        // connection task waits to read the next request.
        let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web_addr = web.local_addr().unwrap();
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let server = taskscope_agent::axum::serve(web, app);
        AXUM_LINE.store(line!() - 1, std::sync::atomic::Ordering::Relaxed);
        let server = server.with_graceful_shutdown(std::future::pending::<()>());
        tokio::spawn(std::future::IntoFuture::into_future(server));
        let mut quiet = tokio::net::TcpStream::connect(web_addr).await.unwrap();
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            quiet
                .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            while !got.ends_with(b"ok") {
                let n = quiet.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
        }
        std::mem::forget(quiet);
        ids
    });
    // The tasks capture themselves when asked: ask until each has.
    let wanted: Vec<u64> = ids
        .values()
        .map(|&id| taskscope_agent::hooks::task_id(id))
        .collect();
    // The axum connection's task, which the server spawned: by its place
    // (this file, not one of the tasks spawned here by id).
    let axum_line = AXUM_LINE.load(std::sync::atomic::Ordering::Relaxed);
    let conn_at = |r: &taskscope_agent::proto::DumpReply| -> Option<u32> {
        r.tasks
            .iter()
            .find(|t| {
                let Some(l) = (t.location as usize)
                    .checked_sub(1)
                    .and_then(|i| r.locations.get(i))
                else {
                    return false;
                };
                !t.split && l.file.ends_with("stack_rules.rs") && l.line == axum_line
            })
            .map(|t| t.trace)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let reply = loop {
        let reply = rt
            .block_on(agent.dump(Duration::from_secs(1)))
            .expect("waits");
        let all = wanted
            .iter()
            .all(|id| reply.tasks.iter().any(|t| t.id == *id));
        if (all && conn_at(&reply).is_some()) || std::time::Instant::now() > deadline {
            break reply;
        }
    };
    let mut out = HashMap::new();
    for (name, id) in ids {
        let id = taskscope_agent::hooks::task_id(id);
        let t = reply
            .tasks
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("{name} not in the capture"));
        out.insert(name, trace(&reply.traces[t.trace as usize]));
    }
    let conn = conn_at(&reply).expect("the axum connection in the capture");
    out.insert("axum-idle-conn", trace(&reply.traces[conn as usize]));
    out
}

/// The line of the axum server's `serve` call, where its connections count.
static AXUM_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A gRPC service whose `Capture` never answers.
struct Silent;

#[tonic::async_trait]
impl taskscope_proto::task_dumps_server::TaskDumps for Silent {
    async fn info(
        &self,
        _: tonic::Request<taskscope_proto::InfoRequest>,
    ) -> Result<tonic::Response<taskscope_proto::InfoReply>, tonic::Status> {
        Ok(tonic::Response::new(Default::default()))
    }

    async fn dump(
        &self,
        _: tonic::Request<taskscope_proto::DumpRequest>,
    ) -> Result<tonic::Response<taskscope_proto::DumpReply>, tonic::Status> {
        std::future::pending().await
    }
}

fn check(stacks: &HashMap<String, Trace>, build: &str) {
    for (name, want) in EXPECTED {
        let t = stacks
            .get(*name)
            .unwrap_or_else(|| panic!("{build}: no {name} stack"));
        // The task's own frame is named, in release builds too (where an
        // inlined async body is only `{async_fn#0}`: the agent names it by
        // the task's future type).
        for leaf in &t.leaves {
            let first = leaf.first().map(|f| f.name.as_str()).unwrap_or_default();
            assert!(
                !first.starts_with('{'),
                "{build} {name}: the task's own frame is unnamed: {first}"
            );
        }
        let leaves: Vec<String> = t
            .leaves
            .iter()
            .map(|l| {
                l.iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(" → ")
            })
            .collect();
        assert_eq!(
            stack::reason(t),
            *want,
            "{build} {name}: leaves\n{}",
            leaves.join("\n")
        );
    }
}

#[test]
fn real_stacks_read_as_what_really_stops_the_task() {
    let stacks = record();
    if let Ok(dir) = std::env::var("TASKSCOPE_RECORD_FRAMES") {
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        let leaves: HashMap<&str, &Vec<Vec<Frame>>> =
            stacks.iter().map(|(k, v)| (*k, &v.leaves)).collect();
        let path = std::path::Path::new(&dir).join(format!("{build}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&leaves).unwrap()).unwrap();
    }
    let stacks: HashMap<String, Trace> = stacks
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    check(&stacks, "this build");
}

/// Each real stack, as a suspect group's, gets the fix its wait calls for.
#[test]
fn real_stacks_get_their_fix() {
    use taskscope::analysis::advice::advise;
    use taskscope::analysis::{Group, ReasonCount, StackCount, Suspect, SuspectKind};
    let stacks: HashMap<String, Vec<Vec<Frame>>> =
        serde_json::from_str(include_str!("fixtures/frames/release.json")).unwrap();
    for (name, word) in [
        ("hyper-call", "send_request"),
        ("reqwest-call", "ClientBuilder::timeout"),
        ("grpc-call", "Endpoint::timeout"),
        ("hyper-client-conn", "pool_idle_timeout"),
        ("axum-idle-conn", "header_read_timeout"),
        ("read-or-closed", "stream.read"),
        ("oneshot-reply", "drop the Sender"),
    ] {
        let trace = std::sync::Arc::new(Trace {
            leaves: stacks[name].clone(),
        });
        let reason = stack::reason(&trace);
        let mut g = Group::new(
            taskscope::model::GroupKey {
                loc: taskscope::model::LocId(0),
                kind: taskscope::model::TaskKind::Task,
            },
            "src/app.rs:1:1".into(),
        );
        g.live = 5;
        g.reasons = vec![ReasonCount {
            reason,
            tasks: 5,
            captured: 5,
            ..ReasonCount::default()
        }];
        g.stacks = vec![StackCount {
            label: stack::label(&trace),
            trace,
            reason,
            tasks: 5,
        }];
        g.suspect = Some(Suspect {
            kind: SuspectKind::Growing,
            reason: String::new(),
        });
        let fix = advise(&g).map(|a| a.fix).unwrap_or_default();
        assert!(fix.contains(word), "{name} ({reason:?}): {fix}");
    }
}

#[test]
fn recorded_release_and_debug_stacks_read_the_same() {
    for (build, json) in [
        ("debug", include_str!("fixtures/frames/debug.json")),
        ("release", include_str!("fixtures/frames/release.json")),
    ] {
        let leaves: HashMap<String, Vec<Vec<Frame>>> = serde_json::from_str(json).unwrap();
        let stacks = leaves
            .into_iter()
            .map(|(k, leaves)| (k, Trace { leaves }))
            .collect();
        check(&stacks, build);
    }
}
