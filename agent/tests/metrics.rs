//! `GET /metrics` on the agent's gRPC port, over real HTTP/1.1 from a
//! plain TCP client (as Prometheus scrapes), on both sources: the hooks
//! recorder and the console mode's span census.

use crate::common::wait_until;
use std::io::{Read, Write};
use std::time::Duration;
use taskscope_agent::Agent;

/// An exposition, printed as it is when a wait for a value in it times out.
struct Exposition(String);

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.0)
    }
}

/// One HTTP/1.1 GET; the status line, headers and body.
fn get(addr: &str, path: &str, accept: Option<&str>) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let (head, body) = out.split_once("\r\n\r\n").expect("a response");
    (head.to_string(), body.to_string())
}

/// The value of `name{location="…LOC…"}` in an exposition.
fn value(body: &str, name: &str, loc: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?.strip_prefix("{location=\"")?;
        let (label, v) = rest.split_once("\"} ")?;
        label.contains(loc).then(|| v.trim().parse().ok())?
    })
}

fn spawn_idle(n: usize) -> Vec<tokio::sync::oneshot::Sender<()>> {
    (0..n)
        .map(|_| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            // spawn: idle
            tokio::spawn(async move {
                let _ = rx.await;
            });
            tx
        })
        .collect()
}

fn idle_line() -> String {
    let src = include_str!("metrics.rs");
    let n = src
        .lines()
        .position(|l| l.trim() == "// spawn: idle")
        .expect("marker")
        + 2;
    format!("agent/tests/metrics.rs:{n}:")
}

#[test]
fn the_hooks_source_exports_exact_counts_per_location() {
    let agent = Agent::builder()
        .min_interval(Duration::ZERO)
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .build()
        .expect("agent");
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().unwrap();
    let addr = agent.serve().expect("serve").to_string();
    let loc = idle_line();

    let mut keep = rt.block_on(async { spawn_idle(300) });
    let (head, body) = get(&addr, "/metrics", None);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_eq!(
        value(&body, "taskscope_tasks_live", &loc),
        Some(300.0),
        "{body}"
    );
    assert_eq!(
        value(&body, "taskscope_tasks_spawned_total", &loc),
        Some(300.0)
    );
    assert_eq!(
        value(&body, "taskscope_tasks_terminated_total", &loc),
        Some(0.0)
    );
    assert!(body.contains("taskscope_agent_info{version=\"0.1.0\",source=\"hooks\"} 1"));

    // 100 end: live goes down, the counters go on; the oldest's age grows.
    // The 100 that end are the oldest, so the age read after is that of a
    // task spawned a little later: wait for twice the age checked below.
    wait_until(
        "the oldest task to be 0.5 s old",
        Duration::from_secs(20),
        || Exposition(get(&addr, "/metrics", Some("application/openmetrics-text")).1),
        |b| value(&b.0, "taskscope_tasks_oldest_age_seconds", &loc).is_some_and(|a| a >= 0.5),
    );
    for tx in keep.drain(..100) {
        let _ = tx.send(());
    }
    let Exposition(body) = wait_until(
        "200 live tasks",
        Duration::from_secs(20),
        || Exposition(get(&addr, "/metrics", Some("application/openmetrics-text")).1),
        |b| value(&b.0, "taskscope_tasks_live", &loc) == Some(200.0),
    );
    assert_eq!(
        value(&body, "taskscope_tasks_terminated_total", &loc),
        Some(100.0)
    );
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let age = value(&body, "taskscope_tasks_oldest_age_seconds", &loc).unwrap();
    assert!((0.25..60.0).contains(&age), "{age}");

    // The same port still speaks gRPC, and other paths are 404s.
    let (head, _) = get(&addr, "/nope", None);
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    drop(keep);
}

#[cfg(feature = "console")]
#[test]
fn the_console_mode_exports_counts_from_the_task_spans() {
    use tracing_subscriber::prelude::*;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let agent = Agent::builder()
        .min_interval(Duration::ZERO)
        .bind(addr)
        .build()
        .expect("agent");
    let layer = agent
        .serve_console(console_subscriber::ConsoleLayer::builder().event_buffer_capacity(1 << 16))
        .expect("console server");
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let _guard = tracing::dispatcher::set_default(&dispatch);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loc = idle_line();
    let keep = rt.block_on(async {
        let keep = spawn_idle(50);
        tokio::task::yield_now().await;
        keep
    });
    let addr = addr.to_string();
    // The console's server starts on its own thread.
    let Exposition(body) = wait_until(
        "the console's metrics",
        Duration::from_secs(20),
        || match std::net::TcpStream::connect(&addr) {
            Ok(_) => Exposition(get(&addr, "/metrics", None).1),
            Err(e) => Exposition(format!("<{e}>")),
        },
        |b| value(&b.0, "taskscope_tasks_live", &loc).is_some(),
    );
    assert_eq!(
        value(&body, "taskscope_tasks_live", &loc),
        Some(50.0),
        "{body}"
    );
    assert!(body.contains("source=\"console\""));
    drop(keep);
    // The runtime runs (so the tasks end and their spans close) only
    // inside `block_on`: each look lets it run.
    let Exposition(body) = wait_until(
        "the fifty tasks to end",
        Duration::from_secs(20),
        || {
            rt.block_on(tokio::task::yield_now());
            Exposition(get(&addr, "/metrics", None).1)
        },
        |b| value(&b.0, "taskscope_tasks_live", &loc) == Some(0.0),
    );
    assert_eq!(
        value(&body, "taskscope_tasks_terminated_total", &loc),
        Some(50.0)
    );
}
