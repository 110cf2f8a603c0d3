//! Clients that hold on: silent connections, slowloris, a flood from one
//! host, and a process out of file descriptors.

use crate::common::wait_until;
use crate::{Attacked, counter, metrics, scrape_from};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use taskscope_agent::Limits;

#[test]
fn silent_and_slow_clients_are_bounded_and_the_service_never_notices() {
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
        || taskscope_agent::testing::health(agent).connections,
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
            let h = taskscope_agent::testing::health(agent);
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

    attacked.bounded(
        &format!(
            "hostile clients: {refused} refused, {timed_out} timed out (the test's own 16 slow clients joined)"
        ),
    );
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

#[test]
fn thousands_of_connections_get_their_peer_s_share_and_no_descriptors_left_is_no_spin() {
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
        || taskscope_agent::testing::health(agent),
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
        || taskscope_agent::testing::health(agent).connections,
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
            if taskscope_agent::testing::health(agent).accept_failed == 0 && held.len() > 1 {
                held.swap_remove(0);
                if let Ok(s) = std::net::TcpStream::connect(&addr) {
                    held.push(s);
                }
            }
            taskscope_agent::testing::health(agent).accept_failed
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
    let failures = taskscope_agent::testing::health(agent).accept_failed - failed;
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
    attacked.bounded(
        &format!(
            "3000 connections from one host: {} refused; out of descriptors: {failures} failed accepts and {} ms of CPU in {} ms",
            h.connections_refused,
            spent.as_millis(),
            wall.elapsed().as_millis(),
        ),
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
}
