//! Who gets what from the agent's port, on a real runtime over real
//! HTTP/1.1 and gRPC: `GET /metrics` to anyone; inspection (every gRPC
//! method) with the token when one is set, on loopback and Unix sockets
//! without one, and never on another address without one.

use std::io::{Read, Write};
use std::time::Duration;
use taskscope_agent::Agent;
use taskscope_agent::proto::{self, InfoReply, InfoRequest};

const TOKEN: &str = "s3cret-token-for-the-tests";

/// A runtime with the hooks source and a few tasks, served on `addr`.
fn serve(agent: &Agent, addr: std::net::SocketAddr) -> (tokio::runtime::Runtime, String) {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(1).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().expect("runtime");
    agent.attach(rt.handle().clone());
    rt.spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
    let bound = agent.serve(addr.into()).expect("serve");
    (rt, bound)
}

/// One plain HTTP/1.1 GET: the status line and the body.
fn http(addr: &str, path: &str) -> (String, String) {
    let (status, body) = http_bytes(addr, path, None);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One plain HTTP/1.1 GET presenting `authorization` if given: the status
/// line and the body's bytes.
fn http_bytes(addr: &str, path: &str, authorization: Option<&str>) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..split]);
    let status = head.lines().next().unwrap_or("").to_string();
    (status, out[(split + 4).min(out.len())..].to_vec())
}

/// A profile.proto's string table: what names it carries.
#[derive(Clone, PartialEq, prost::Message)]
struct ProfileStrings {
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
}

/// `GET /debug/pprof/tasks` (gzipped profile.proto): the status line and
/// the profile's strings.
fn profile(addr: &str, authorization: Option<&str>) -> (String, Vec<String>) {
    use prost::Message;
    let (status, body) = http_bytes(addr, "/debug/pprof/tasks", authorization);
    if !status.contains("200") {
        return (status, Vec::new());
    }
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut raw)
        .expect("gzip");
    let p = ProfileStrings::decode(&raw[..]).expect("profile.proto");
    (status, p.string_table)
}

/// Whether a profile's strings name any function of a stack (beyond the
/// spawn locations and the `(idle)` / `(running)` frames).
fn names_a_stack(strings: &[String]) -> bool {
    strings.iter().any(|s| s.contains("sleep"))
}

fn http_get(addr: &str, path: &str) -> String {
    http(addr, path).0
}

fn http_body(addr: &str, path: &str) -> String {
    http(addr, path).1
}

/// The agent's `Info` over gRPC, presenting `authorization` if given.
fn info(addr: &str, authorization: Option<&str>) -> Result<InfoReply, tonic::Status> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.expect("ready");
        let mut req = tonic::Request::new(InfoRequest {});
        if let Some(a) = authorization {
            req.metadata_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let path = tonic::codegen::http::uri::PathAndQuery::from_static(proto::INFO_PATH);
        let codec = tonic_prost::ProstCodec::<InfoRequest, InfoReply>::default();
        grpc.unary(req, path, codec)
            .await
            .map(tonic::Response::into_inner)
    })
}

#[test]
fn with_a_token_inspection_needs_it_and_metrics_do_not() {
    let agent = Agent::new();
    agent.set_token(TOKEN).expect("token");
    let (_rt, addr) = serve(&agent, ([127, 0, 0, 1], 0).into());
    assert!(
        http_get(&addr, "/metrics").contains("200"),
        "metrics are open"
    );
    for wrong in [
        None,
        Some("Bearer not-the-token-at-all"),
        Some("Bearer s3cret-token-for-the-test"),
        Some("Bearer s3cret-token-for-the-testss"),
        Some("s3cret-token-for-the-tests"),
        Some("Basic czNjcmV0"),
    ] {
        let e = info(&addr, wrong).expect_err("refused");
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "{wrong:?}: {e:?}");
        assert!(e.message().contains("--token-file"), "{e:?}");
    }
    let ok = info(&addr, Some(&format!("Bearer {TOKEN}"))).expect("with the token");
    assert!(!ok.agent_version.is_empty());
    // The refusals are counted where the operator looks.
    let body = http_body(&addr, "/metrics");
    assert!(
        body.lines()
            .any(|l| l.starts_with("taskscope_agent_inspection_refused_total 6")),
        "{body}"
    );
}

#[test]
fn without_a_token_only_loopback_is_inspected() {
    let agent = Agent::new();
    let (_rt, addr) = serve(&agent, ([127, 0, 0, 1], 0).into());
    info(&addr, None).expect("loopback, no token: as easy as before");

    // Every address of the host: not loopback, so read-only.
    let exposed = Agent::new();
    let (_rt2, bound) = serve(&exposed, ([0, 0, 0, 0], 0).into());
    let port = bound.rsplit(':').next().unwrap();
    let addr = format!("127.0.0.1:{port}");
    assert!(http_get(&addr, "/metrics").contains("200"));
    let e = info(&addr, None).expect_err("read-only");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("read-only"), "{e:?}");
    // A token it does not have opens nothing.
    let e = info(&addr, Some(&format!("Bearer {TOKEN}"))).expect_err("read-only");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
}

#[test]
fn short_tokens_are_refused() {
    let agent = Agent::new();
    assert!(agent.set_token("short").is_err());
}

#[cfg(unix)]
#[test]
fn a_unix_socket_is_the_service_user_s_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir_dir = tempdir();
    let dir = dir_dir.path();
    let path = dir.join("agent.sock");
    let agent = Agent::new();
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(1).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().expect("runtime");
    agent.attach(rt.handle().clone());
    agent
        .serve(taskscope_agent::ServerAddr::Unix(path.clone()))
        .expect("serve");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    drop(rt);
}

#[cfg(unix)]
fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The task profile reveals counts per spawn location to anyone, and the
/// tasks' stacks (function and file names) only to a request that may
/// inspect; a wrong token is refused rather than quietly served less.
#[cfg(target_os = "linux")]
#[test]
fn the_task_profile_shows_stacks_only_to_the_token() {
    let agent = Agent::new();
    agent.set_token(TOKEN).expect("token");
    let (rt, addr) = serve(&agent, ([127, 0, 0, 1], 0).into());
    rt.block_on(async {
        for _ in 0..3 {
            drop(taskscope_agent::spawn(async {
                tokio::time::sleep(Duration::from_secs(3600)).await
            }));
        }
    });
    let bearer = format!("Bearer {TOKEN}");
    // The token's scrape asks for captures; they hold once the tasks
    // answered.
    crate::common::wait_until(
        "the token's profile to carry the sleepers' stacks",
        Duration::from_secs(20),
        || profile(&addr, Some(&bearer)),
        |(status, strings)| status.contains("200") && names_a_stack(strings),
    );
    // Without the token: counts only, and no captures asked of the
    // service for it.
    let asked = agent.health().captures.asked;
    let (status, strings) = profile(&addr, None);
    assert!(status.contains("200"), "{status}");
    assert!(
        strings.iter().any(|s| s.starts_with("spawned@")),
        "counts per location: {strings:?}"
    );
    assert!(
        !names_a_stack(&strings),
        "no stacks without the token: {strings:?}"
    );
    assert!(
        strings.iter().all(|s| !s.contains("::")),
        "no function names without the token: {strings:?}"
    );
    let (status, _) = profile(&addr, Some("Bearer not-the-token-at-all"));
    assert!(status.contains("401"), "{status}");
    assert_eq!(
        agent.health().captures.asked,
        asked,
        "captures asked without the token"
    );

    // An agent on every address without a token: counts only, even to a
    // token it does not have.
    // (Its tasks can be captured: only the access decision keeps their
    // stacks out.)
    let exposed = Agent::new();
    let (rt2, bound) = serve(&exposed, ([0, 0, 0, 0], 0).into());
    rt2.block_on(async {
        for _ in 0..3 {
            drop(taskscope_agent::spawn(async {
                tokio::time::sleep(Duration::from_secs(3600)).await
            }));
        }
    });
    let port = bound.rsplit(':').next().unwrap();
    let exposed_addr = format!("127.0.0.1:{port}");
    for auth in [None, Some(bearer.as_str())] {
        let (status, strings) = profile(&exposed_addr, auth);
        assert!(status.contains("200"), "{status}");
        assert!(!names_a_stack(&strings), "{strings:?}");
    }
}
