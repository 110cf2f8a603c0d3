//! Clients that hold on: hundreds of connections that never speak, and
//! slow ones that send a request a byte at a time. The agent closes what
//! is over its cap at once and the silent and slow ones when their time is
//! up; its threads and memory stay bounded, the service's heartbeat does
//! not move, and honest clients are served again right after.

#![cfg(all(target_os = "linux", tokio_unstable))]

mod common;

use common::wait_until;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
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

#[test]
fn silent_and_slow_clients_are_bounded_and_the_service_never_notices() {
    let agent = Agent::new();
    agent.set_limits(Limits {
        connections: 32,
        first_reply: Duration::from_millis(800),
        idle: Duration::from_secs(5),
    });
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().expect("runtime");
    agent.attach(rt.handle().clone());
    // The service's heartbeat: its longest gap between 1 ms ticks.
    let beats = Arc::new(AtomicU64::new(0));
    let worst = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (beats, worst, stop) = (beats.clone(), worst.clone(), stop.clone());
        rt.spawn(async move {
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let gap = last.elapsed().as_micros() as u64;
                worst.fetch_max(gap, Ordering::Relaxed);
                beats.fetch_add(1, Ordering::Relaxed);
                last = Instant::now();
            }
        });
    }
    let addr = agent
        .serve(std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("serve");
    assert!(metrics(&addr).is_some(), "served before the attack");
    let threads = proc_status("Threads:");
    let rss = proc_status("VmRSS:");
    worst.store(0, Ordering::Relaxed);

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
    // Held at most the cap at once; the silent and the slow are closed
    // when their time is up, and an honest scrape is served again.
    let h = wait_until(
        "the silent and slow closed",
        Duration::from_secs(20),
        || agent.health(),
        |h| h.connections_timed_out >= 32,
    );
    assert!(
        h.connections_refused >= 284,
        "over the cap, closed at once: {h:?}"
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

    let grew_threads = proc_status("Threads:").saturating_sub(threads);
    let grew_rss_kib = proc_status("VmRSS:").saturating_sub(rss);
    stop.store(true, Ordering::Relaxed);
    let gap_ms = worst.load(Ordering::Relaxed) / 1000;
    eprintln!(
        "hostile clients: {refused} refused, {timed_out} timed out; threads +{grew_threads} (the test's own 16 slow clients joined), RSS +{} KiB; heartbeat longest gap {gap_ms} ms over {} beats",
        grew_rss_kib,
        beats.load(Ordering::Relaxed)
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
