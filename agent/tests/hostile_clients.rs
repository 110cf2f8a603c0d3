//! Clients that hold on: hundreds of connections that never speak, and
//! slow ones that send a request a byte at a time. The agent closes what
//! is over its cap at once and the silent and slow ones when their time is
//! up; its threads and memory stay bounded, the service's heartbeat does
//! not move, and honest clients are served again right after. Thousands
//! of connections from one host get that host's share only; a process out
//! of file descriptors does not make the agent spin.

#![cfg(all(target_os = "linux", tokio_unstable))]

mod common;

use common::wait_until;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use taskscope_agent::Agent;
use taskscope_agent::limits::Limits;

fn proc_status(field: &str) -> u64 {
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
fn metrics(addr: &str) -> Option<String> {
    scrape(std::net::TcpStream::connect(addr).ok()?)
}

/// `GET /metrics` over a connection: the body, if served.
fn scrape(mut s: std::net::TcpStream) -> Option<String> {
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

fn counter(body: &str, name: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The tests of this file measure the whole process: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A runtime with the hooks source and a heartbeat ticking every 1 ms,
/// whose longest gap (µs) is kept in the returned counter.
fn service(agent: &Agent) -> (tokio::runtime::Runtime, Arc<AtomicU64>, Arc<AtomicU64>) {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().expect("runtime");
    agent.attach(rt.handle().clone());
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

/// A service under attack: its agent serving on loopback with `limits`,
/// and the process's threads and memory as the attack began.
struct Attacked {
    agent: Agent,
    _rt: tokio::runtime::Runtime,
    beats: Arc<AtomicU64>,
    worst: Arc<AtomicU64>,
    addr: String,
    threads: u64,
    rss_kib: u64,
}

impl Attacked {
    fn start(limits: Limits) -> Attacked {
        let agent = Agent::new();
        agent.set_limits(limits);
        let (rt, beats, worst) = service(&agent);
        let addr = agent
            .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("serve");
        assert!(metrics(&addr).is_some(), "served before the attack");
        let a = Attacked {
            agent,
            _rt: rt,
            beats,
            worst,
            addr,
            threads: proc_status("Threads:"),
            rss_kib: proc_status("VmRSS:"),
        };
        a.worst.store(0, Ordering::Relaxed);
        a
    }

    /// Threads and RSS (KiB) grown since the start, the heartbeat's
    /// longest gap (ms) and its beats.
    fn cost(&self) -> (u64, u64, u64, u64) {
        (
            proc_status("Threads:").saturating_sub(self.threads),
            proc_status("VmRSS:").saturating_sub(self.rss_kib),
            self.worst.load(Ordering::Relaxed) / 1000,
            self.beats.load(Ordering::Relaxed),
        )
    }
}

#[test]
fn protocol_garbage_and_rapid_resets_are_refused_and_bounded() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let agent = Agent::new();
    agent.set_token("hostile-tests-token-0123").unwrap();
    let (rt, _beats, worst) = service(&agent);
    let addr = agent
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("serve");
    let rss = proc_status("VmRSS:");
    worst.store(0, Ordering::Relaxed);
    let raw = |bytes: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(bytes);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    // HTTP/1 garbage: an error reply or a closed connection, never more.
    for garbage in [
        &b"\x00\x01\x02\x03garbage\r\n\r\n"[..],
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        &[b'A'; 70_000][..],
    ] {
        let reply = raw(garbage);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{:?}",
            &reply[..reply.len().min(200)]
        );
    }
    // HTTP/2 garbage after a valid preface: a SETTINGS frame of a length
    // no settings have, HEADERS on stream 0, a frame claiming 16 MiB, a
    // frame of an unknown type then noise. Each ends the connection (a
    // GOAWAY and a close), within the read timeout: never held open.
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    for frames in [
        &[0, 0, 5, 0x4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5][..],
        &[0, 0, 1, 0x1, 0x4, 0, 0, 0, 0, 0x82][..],
        &[0xff, 0xff, 0xff, 0x0, 0, 0, 0, 0, 1, 0xde, 0xad][..],
        &[
            0, 0, 4, 0xee, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0xff,
        ][..],
    ] {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(PREFACE);
        let _ = s.write_all(frames);
        let mut out = Vec::new();
        let closed = match s.read_to_end(&mut out) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed,
            "HTTP/2 garbage {frames:?}: the connection stayed open"
        );
    }
    // Path tricks: only `/metrics`, `/debug/pprof/tasks` and `/` are
    // served over plain HTTP.
    for path in [
        "/debug/pprof/tasks/../tasks",
        "/debug/pprof/../pprof/tasks",
        "/debug/pprof/tasks/",
        "/metrics/../metrics",
        "//metrics",
        "/METRICS",
        "/%6Detrics",
        "/metrics/",
        "/taskscope.agent.v1.TaskDumps/Dump",
        "/../../etc/passwd",
    ] {
        let reply =
            raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
        assert!(
            reply.starts_with("HTTP/1.1 404") || reply.starts_with("HTTP/1.1 400"),
            "{path}: {reply}"
        );
    }
    // gRPC over HTTP/1 without the token: refused before any method runs.
    let reply = raw(b"POST /taskscope.agent.v1.TaskDumps/Dump HTTP/1.1\r\nHost: x\r\ncontent-type: application/grpc\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\x00\x00\x00\x00\x00");
    assert!(reply.contains("grpc-status: 16"), "{reply}");

    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (client, conn) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let conn = tokio::spawn(conn);
        let request = |path: &str, token: bool| {
            let mut r = http::Request::post(path).header("content-type", "application/grpc");
            if token {
                r = r.header("authorization", "Bearer hostile-tests-token-0123");
            }
            r.body(()).unwrap()
        };
        // With the token: an unknown method, a malformed message, one that
        // claims 4 GiB, each answered with an error status.
        for (path, body) in [
            (
                "/taskscope.agent.v1.TaskDumps/Nope",
                &b"\x00\x00\x00\x00\x00"[..],
            ),
            (
                "/taskscope.agent.v1.TaskDumps/Info",
                b"\x00\x00\x00\x00\x05\xff\xff\xff\xff\xff",
            ),
            (
                "/taskscope.agent.v1.TaskDumps/Dump",
                b"\x00\xff\xff\xff\xff",
            ),
            ("/no.such.Service/Method", b""),
        ] {
            let mut c = client.clone().ready().await.expect("ready");
            let (resp, mut send) = c.send_request(request(path, true), false).expect("send");
            send.send_data(bytes::Bytes::copy_from_slice(body), true)
                .expect("body");
            let resp = tokio::time::timeout(Duration::from_secs(5), resp)
                .await
                .expect("answered in time")
                .expect("a response");
            let (parts, mut body) = resp.into_parts();
            let mut status = parts.headers.get("grpc-status").cloned();
            if status.is_none() {
                while body.data().await.is_some() {}
                status = body
                    .trailers()
                    .await
                    .ok()
                    .flatten()
                    .and_then(|t| t.get("grpc-status").cloned());
            }
            let code = status.and_then(|s| s.to_str().ok()?.parse::<i32>().ok());
            assert!(code.is_some_and(|c| c != 0), "{path}: {code:?}");
        }
        // Rapid reset (CVE-2023-44487): streams opened and cancelled at
        // once, as fast as the client can; the agent ends the connection.
        let mut opened = 0;
        let ended = loop {
            let mut c = match client.clone().ready().await {
                Ok(c) => c,
                Err(e) => break e.to_string(),
            };
            match c.send_request(request("/taskscope.agent.v1.Tasks/Watch", true), false) {
                Ok((_, mut send)) => send.send_reset(h2::Reason::CANCEL),
                Err(e) => break e.to_string(),
            }
            opened += 1;
            if opened > 100_000 {
                break "not ended".into();
            }
        };
        assert!(opened < 100_000, "the agent let {opened} resets through");
        eprintln!("rapid reset: connection ended after {opened} streams ({ended})");
        conn.abort();
        drop(client);
    });
    let grew_rss_kib = proc_status("VmRSS:").saturating_sub(rss);
    let gap_ms = worst.load(Ordering::Relaxed) / 1000;
    eprintln!("protocol garbage: RSS +{grew_rss_kib} KiB, heartbeat longest gap {gap_ms} ms");
    assert!(
        grew_rss_kib < 32 * 1024,
        "memory bounded: +{grew_rss_kib} KiB"
    );
    assert!(gap_ms < 250, "the service's heartbeat stalled {gap_ms} ms");
    // Honest clients are still served.
    assert!(metrics(&addr).is_some());
}

#[test]
fn silent_and_slow_clients_are_bounded_and_the_service_never_notices() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let attacked = Attacked::start(Limits {
        connections: 32,
        per_peer: 32,
        first_reply: Duration::from_millis(800),
        idle: Duration::from_secs(5),
    });
    let (agent, addr) = (&attacked.agent, attacked.addr.clone());

    // 16 slowloris clients, sending a request's head a byte every 100 ms,
    // then 300 connections that never send a byte.
    let slow: Vec<_> = (0..16)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = std::net::TcpStream::connect(&addr) else {
                    return;
                };
                let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
                // Until the agent closes the connection (a write fails).
                for byte in head.iter().cycle() {
                    if s.write_all(&[*byte]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    wait_until(
        "the slow clients connected",
        Duration::from_secs(10),
        || agent.health().connections,
        |&n| n >= 16,
    );
    let silent: Vec<_> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    // Held at most the cap at once; every connection is closed, over the
    // cap as accepted, the silent and the slow when their time is up, and
    // an honest scrape is served again. (How many of each depends on how
    // fast the 300 connect: slots free up as the first ones time out.)
    let mut most_open = 0;
    let h = wait_until(
        "every hostile connection closed",
        Duration::from_secs(30),
        || {
            let h = agent.health();
            most_open = most_open.max(h.connections);
            h
        },
        |h| h.connections_refused + h.connections_timed_out >= 316 && h.connections == 0,
    );
    assert!(most_open <= 32, "held at most the cap: {most_open}");
    assert!(h.connections_refused > 0, "the cap was reached: {h:?}");
    assert!(
        h.connections_timed_out >= 16,
        "the slow ones were closed: {h:?}"
    );
    let served = wait_until(
        "an honest scrape",
        Duration::from_secs(10),
        || metrics(&addr),
        Option::is_some,
    )
    .expect("served");
    assert!(
        counter(&served, "taskscope_agent_connections") <= 32,
        "{served}"
    );
    let (refused, timed_out) = (h.connections_refused, h.connections_timed_out);
    assert!(refused + timed_out >= 316);
    for t in slow {
        t.join().unwrap();
    }
    // Closed from the agent's side: a silent connection reads EOF.
    let mut first = silent.into_iter().next().expect("a connection");
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)), "closed");

    let (grew_threads, grew_rss_kib, gap_ms, beats) = attacked.cost();
    eprintln!(
        "hostile clients: {refused} refused, {timed_out} timed out; threads +{grew_threads} (the test's own 16 slow clients joined), RSS +{} KiB; heartbeat longest gap {gap_ms} ms over {} beats",
        grew_rss_kib, beats
    );
    assert!(
        grew_threads == 0,
        "no thread per connection: +{grew_threads}"
    );
    assert!(
        grew_rss_kib < 32 * 1024,
        "memory bounded: +{grew_rss_kib} KiB"
    );
    assert!(gap_ms < 250, "the service's heartbeat stalled {gap_ms} ms");
}

/// The process's CPU time so far (user + system; opens no file: it is
/// read while the process has no descriptor left).
fn cpu_time() -> Duration {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) }, 0);
    let t = |v: libc::timeval| Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000);
    t(u.ru_utime) + t(u.ru_stime)
}

fn set_open_files(soft: u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    l.rlim_cur = soft.min(l.rlim_max);
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) }, 0);
}

fn open_files_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
    l.rlim_cur
}

/// Puts the descriptor limit back when dropped (a failed assertion too).
struct RestoreOpenFiles(u64);

impl Drop for RestoreOpenFiles {
    fn drop(&mut self) {
        set_open_files(self.0);
    }
}

fn open_files() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

/// A connection from another loopback address (127.0.0.2): another peer.
fn scrape_from(peer: [u8; 4], addr: &str) -> Option<String> {
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

#[test]
fn thousands_of_connections_get_their_peer_s_share_and_no_descriptors_left_is_no_spin() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let attacked = Attacked::start(Limits {
        connections: 4096,
        per_peer: 16,
        // Longer than the flood takes to arrive, however slow the machine:
        // the share's 16 are the same 16 throughout (one whose time is up
        // would free its place for another of the flood).
        first_reply: Duration::from_secs(120),
        idle: Duration::from_secs(120),
    });
    let (agent, addr) = (&attacked.agent, attacked.addr.clone());

    // The flood needs ~3 000 descriptors (the common soft limit is 1 024):
    // up to the hard limit for this test, back as it was after it.
    let _restore = RestoreOpenFiles(open_files_limit());
    set_open_files(u64::MAX);

    // 3 000 connections from one host: it gets its 16, the rest are
    // closed as accepted, and another host is still served.
    let flood: Vec<_> = (0..3000)
        .filter_map(|_| std::net::TcpStream::connect(&addr).ok())
        .collect();
    assert!(flood.len() >= 2900, "{} connected", flood.len());
    let h = wait_until(
        "the flood over the peer's share closed",
        Duration::from_secs(30),
        || agent.health(),
        |h| h.connections_refused as usize >= flood.len() - 16,
    );
    assert!(h.connections <= 16, "one peer's share: {h:?}");
    assert_eq!(h.connections_timed_out, 0, "{h:?}");
    let other = scrape_from([127, 0, 0, 2], &addr).expect("another host is served");
    assert!(
        counter(&other, "taskscope_agent_connections") <= 17,
        "{other}"
    );
    drop(flood);
    wait_until(
        "the flood's connections gone",
        Duration::from_secs(30),
        || agent.health().connections,
        |&n| n == 0,
    );

    // Out of file descriptors: the process's limit lowered to what is
    // open now and a few more, then connections until none can be made.
    // Those the agent cannot accept stay queued, and accepting them fails
    // at once, again and again: the agent must wait between tries.
    let limit = open_files_limit();
    set_open_files(open_files() + 8);
    let restore_flood = RestoreOpenFiles(limit);
    let mut held = Vec::new();
    let failed = wait_until(
        "accepting to fail for want of descriptors",
        Duration::from_secs(20),
        || {
            // Connect until this side cannot either; then free one of
            // ours and take it again, so a connection waits in the
            // queue with no descriptor left to accept it.
            while let Ok(s) = std::net::TcpStream::connect(&addr) {
                held.push(s);
            }
            if agent.health().accept_failed == 0 && held.len() > 1 {
                held.swap_remove(0);
                if let Ok(s) = std::net::TcpStream::connect(&addr) {
                    held.push(s);
                }
            }
            agent.health().accept_failed
        },
        |&n| n > 0,
    );
    let cpu = cpu_time();
    let wall = Instant::now();
    wait_until(
        "a second out of descriptors",
        Duration::from_secs(5),
        || wall.elapsed(),
        |t| *t >= Duration::from_secs(1),
    );
    let spent = cpu_time().saturating_sub(cpu);
    let failures = agent.health().accept_failed - failed;
    drop(restore_flood);
    drop(held);
    let served = wait_until(
        "served again once descriptors are back",
        Duration::from_secs(20),
        || metrics(&addr),
        Option::is_some,
    )
    .expect("served");
    assert!(
        counter(&served, "taskscope_agent_accept_failures_total") > 0,
        "counted: {served}"
    );
    let (grew_threads, grew_rss_kib, gap_ms, beats) = attacked.cost();
    eprintln!(
        "3000 connections from one host: {} refused; out of descriptors: {failures} failed accepts and {} ms of CPU in {} ms; threads +{grew_threads}, RSS +{grew_rss_kib} KiB; heartbeat longest gap {gap_ms} ms over {} beats",
        h.connections_refused,
        spent.as_millis(),
        wall.elapsed().as_millis(),
        beats
    );
    // Spinning on failed accepts would burn the agent's thread: a whole
    // core, about 1 000 ms of CPU in that second.
    assert!(
        spent < Duration::from_millis(300),
        "the agent spun on failed accepts: {spent:?} of CPU in a second, {failures} failures"
    );
    assert!(
        failures < 50,
        "accepts retried at once: {failures} in a second"
    );
    assert!(
        grew_threads == 0,
        "no thread per connection: +{grew_threads}"
    );
    assert!(
        grew_rss_kib < 32 * 1024,
        "memory bounded: +{grew_rss_kib} KiB"
    );
    assert!(gap_ms < 250, "the service's heartbeat stalled {gap_ms} ms");
}
