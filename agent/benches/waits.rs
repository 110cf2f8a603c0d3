//! What exact waits cost the target: per-task captures of 1 000, 10 000
//! and 100 000 idle traced tasks (a third each on a socket read, an mpsc
//! receive, a sleep), the hooks source installed, 2 workers. For each
//! size: one round asking every task at once (far beyond the agent's
//! budget of 512 a round, the worst case), then the agent's own rounds.
//! Prints the time the workers spent in the captures' polls per task, the
//! round's wall time, symbol resolution and reply size, and the longest
//! gap of a heartbeat task ticking every millisecond meanwhile: a
//! capture never stops the runtime. `cargo bench -p taskscope-agent
//! --bench waits`; `-- --quick` runs 1 000 tasks only (CI smoke mode).

use prost::Message;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[1_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    println!(
        "{:>8} {:>14} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "tasks", "poll µs/task", "round", "resolve", "reply", "per task", "heartbeat gap"
    );
    for &n in sizes {
        bench(n);
    }
}

fn bench(n: usize) {
    let agent = taskscope_agent::Agent::builder()
        .min_interval(Duration::ZERO)
        .build()
        .expect("agent");
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().expect("runtime");
    let recorder = taskscope_agent::testing::recorder(&agent).expect("hooks");
    let beats = Arc::new(AtomicU64::new(0));
    let keep = rt.block_on(async {
        let b = beats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            loop {
                tick.tick().await;
                b.fetch_add(1, Ordering::Relaxed);
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut keep: Vec<Box<dyn std::any::Any + Send>> = Vec::new();
        for i in 0..n {
            match i % 3 {
                // Sockets are capped by the open-file limit.
                0 if i < 12_000 => {
                    let (client, server) =
                        tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
                    let (mut server, _) = server.expect("accept");
                    keep.push(Box::new(client.expect("connect")));
                    taskscope_agent::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut b = [0u8; 1];
                        let _ = server.read(&mut b).await;
                    });
                }
                1 => {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
                    keep.push(Box::new(tx));
                    taskscope_agent::spawn(async move {
                        let _ = rx.recv().await;
                    });
                }
                _ => {
                    taskscope_agent::spawn(tokio::time::sleep(Duration::from_secs(3600)));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        keep
    });
    // The heartbeat's longest gap while the captures run.
    let stop = Arc::new(AtomicBool::new(false));
    let dog = {
        let (beats, stop) = (beats.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut last, mut since, mut longest) = (
                beats.load(Ordering::Relaxed),
                Instant::now(),
                Duration::ZERO,
            );
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(200));
                let now = beats.load(Ordering::Relaxed);
                if now != last {
                    longest = longest.max(since.elapsed());
                    (last, since) = (now, Instant::now());
                }
            }
            longest
        })
    };
    let before = recorder.capture_stats();
    let t = Instant::now();
    let asked = recorder.request_captures(taskscope_agent::testing::Budget {
        per_site: n,
        total: n,
    });
    while asked.iter().any(|s| s.wanted()) && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let round = t.elapsed();
    let after = recorder.capture_stats();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client");
    let reply = client
        .block_on(agent.waits(Duration::from_millis(100)))
        .expect("waits");
    stop.store(true, Ordering::Relaxed);
    let gap = dog.join().expect("watchdog");
    let polls = after.polls - before.polls;
    let per_task_us = (after.poll_ns - before.poll_ns) as f64 / 1e3 / polls.max(1) as f64;
    let bytes = reply.encoded_len();
    println!(
        "{:>8} {:>14.1} {:>12} {:>12} {:>12} {:>12} {:>14}",
        n,
        per_task_us,
        format!("{:.0} ms", round.as_secs_f64() * 1e3),
        format!("{:.1} ms", reply.resolve_ns as f64 / 1e6),
        format!("{} KiB", bytes / 1024),
        format!("{:.1} B", bytes as f64 / reply.tasks.len().max(1) as f64),
        format!("{:.1} ms", gap.as_secs_f64() * 1e3),
    );
    assert!(
        reply.tasks.len() >= n * 9 / 10,
        "{} of {n} tasks captured",
        reply.tasks.len()
    );
    drop(keep);
}
