//! A service's agent under attack, on a real runtime with a heartbeat
//! ticking every 1 ms: protocol garbage (`protocol`), clients that hold on
//! (`crowds`: silent connections, slowloris, a flood from one host, no file
//! descriptors left) and clients that never read (`slow_readers`). For
//! each: the agent's threads and memory stay bounded, the heartbeat does
//! not move, and honest clients are served. Its own binary: it measures
//! the whole process, one test at a time.

#![cfg(all(target_os = "linux", tokio_unstable))]

mod cancels;
#[path = "../common/mod.rs"]
mod common;
mod crowds;
mod protocol;
mod slow_readers;

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use taskscope_agent::Agent;
use taskscope_agent::Limits;
use taskscope_agent::testing::MAX_BLOCKING_THREADS;

pub fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// One HTTP/1.1 GET of `/metrics`: its body, or `None` if the connection
/// was closed without one.
pub fn metrics(addr: &str) -> Option<String> {
    scrape(std::net::TcpStream::connect(addr).ok()?)
}

/// `GET /metrics` over a connection: the body, if served.
pub fn scrape(mut s: std::net::TcpStream) -> Option<String> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.contains("200").then(|| body.to_string())
}

pub fn counter(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The tests of this file measure the whole process: one at a time.
static SERIAL: parking_lot::Mutex<()> = parking_lot::const_mutex(());

/// A runtime with the hooks source and a heartbeat ticking every 1 ms,
/// whose longest gap (µs) is kept in the returned counter.
pub fn service(agent: &Agent) -> (tokio::runtime::Runtime, Arc<AtomicU64>, Arc<AtomicU64>) {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all().thread_name("service");
    agent.install_hooks(&mut b);
    let rt = b.build().expect("runtime");
    let beats = Arc::new(AtomicU64::new(0));
    let worst = Arc::new(AtomicU64::new(0));
    {
        let (beats, worst) = (beats.clone(), worst.clone());
        rt.spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let gap = last.elapsed().as_micros() as u64;
                worst.fetch_max(gap, Ordering::Relaxed);
                beats.fetch_add(1, Ordering::Relaxed);
                last = Instant::now();
            }
        });
    }
    (rt, beats, worst)
}

/// A service under attack: its agent serving on loopback with `limits`
/// (and `token`), the process's threads and memory as the attack began,
/// and this file's lock held (its tests measure the whole process).
pub struct Attacked {
    pub agent: Agent,
    /// The service's runtime (the heartbeat's).
    pub rt: tokio::runtime::Runtime,
    beats: Arc<AtomicU64>,
    worst: Arc<AtomicU64>,
    pub addr: String,
    /// The process's threads other than the agents' walk threads, and
    /// those (`taskscope-walk`), as the attack began.
    threads: (u64, u64),
    names: Vec<String>,
    rss_kib: u64,
    _one: parking_lot::MutexGuard<'static, ()>,
}

impl Attacked {
    pub fn start(limits: Limits) -> Attacked {
        Self::start_with(limits, None)
    }

    pub fn start_with(limits: Limits, token: Option<&str>) -> Attacked {
        let one = SERIAL.lock();
        let mut builder = Agent::builder()
            .limits(limits)
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        if let Some(t) = token {
            builder = builder.token(t);
        }
        let agent = builder.build().expect("agent");
        let (rt, beats, worst) = service(&agent);
        // A new thread takes its name a moment after it starts: count
        // from when the service's two workers carry theirs.
        common::wait_until(
            "the service's workers named",
            Duration::from_secs(10),
            thread_names,
            |names| names.iter().filter(|n| *n == "service").count() >= 2,
        );
        let addr = agent.serve().expect("serve").to_string();
        assert!(metrics(&addr).is_some(), "served before the attack");
        let a = Attacked {
            agent,
            rt,
            beats,
            worst,
            addr,
            threads: threads(),
            names: thread_names(),
            rss_kib: proc_status("VmRSS:"),
            _one: one,
        };
        a.worst.store(0, Ordering::Relaxed);
        a
    }

    /// Counts the process's threads and memory from now (after the
    /// service's own work is set up).
    pub fn rebase(&mut self) {
        self.threads = threads();
        self.names = thread_names();
        self.rss_kib = proc_status("VmRSS:");
        self.worst.store(0, Ordering::Relaxed);
    }

    /// Prints what the attack (`what`) cost the process, and fails unless
    /// the agents' and the service's threads grew by none but walk threads
    /// (at most `MAX_BLOCKING_THREADS` more; told apart by name: earlier
    /// tests' agents' idle walk threads end meanwhile and must not hide a
    /// thread this attack made), the process by less than 32 MiB, and the
    /// service's heartbeat never stalled 250 ms.
    pub fn bounded(&self, what: &str) {
        let (others, walks) = threads();
        let grew_threads = others.saturating_sub(self.threads.0);
        let grew_walks = walks.saturating_sub(self.threads.1);
        let grew_rss_kib = proc_status("VmRSS:").saturating_sub(self.rss_kib);
        let gap_ms = self.worst.load(Ordering::Relaxed) / 1000;
        let beats = self.beats.load(Ordering::Relaxed);
        eprintln!(
            "{what}: threads +{grew_threads} (and {grew_walks} walk threads), RSS +{grew_rss_kib} KiB; heartbeat longest gap {gap_ms} ms over {beats} beats"
        );
        assert_eq!(
            grew_threads,
            0,
            "{what}: no thread per connection, none but the agent's walks: {:?} (at the start: {:?})",
            thread_names(),
            self.names
        );
        assert!(
            grew_walks <= MAX_BLOCKING_THREADS as u64,
            "{what}: +{grew_walks} walk threads (at most {MAX_BLOCKING_THREADS})"
        );
        assert!(
            grew_rss_kib < 32 * 1024,
            "{what}: memory bounded: +{grew_rss_kib} KiB"
        );
        assert!(
            gap_ms < 250,
            "{what}: the service's heartbeat stalled {gap_ms} ms"
        );
    }
}

/// Every thread's name, for a failure's message.
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect();
    names.sort();
    names
}

/// The threads an attack could make grow: (the agents' server threads and
/// the service runtime's, the agents' walk threads). A thread the agent
/// started without a name would carry its server thread's
/// (`taskscope-agent`), one on the service's runtime the runtime's
/// (`service`). The test harness's threads, which come and go as tests
/// queue on this file's lock, are not counted.
fn threads() -> (u64, u64) {
    let (mut fixed, mut walks) = (0, 0);
    for name in thread_names() {
        match name.as_str() {
            "taskscope-walk" => walks += 1,
            "taskscope-agent" | "service" => fixed += 1,
            _ => {}
        }
    }
    (fixed, walks)
}

/// A connection from another loopback address (127.0.0.2): another peer.
pub fn scrape_from(peer: [u8; 4], addr: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(std::net::SocketAddr::from((peer, 0))).ok()?;
        socket.connect(addr).await.ok()?.into_std().ok()
    })?;
    s.set_nonblocking(false).ok()?;
    scrape(s)
}
