//! What a task dump costs the target: capture time (the runtime's workers
//! are held), symbol resolution time (on the agent's thread) and reply size,
//! at 1 000, 10 000 and 100 000 idle tasks waiting on a socket read (at most
//! 4 000 of them: two descriptors each), an mpsc receive or a sleep. `cargo bench -p taskscope-agent --bench dump`;
//! `-- --quick` runs 1 000 tasks only (CI smoke mode).

use prost::Message;
use std::time::{Duration, Instant};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick {
        &[1_000]
    } else {
        &[1_000, 10_000, 100_000]
    };
    for &n in sizes {
        bench(n);
    }
}

fn bench(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let agent = taskscope_agent::Agent::with_min_interval(Duration::ZERO);
    agent.attach(rt.handle().clone());
    // n idle tasks: a third each on a socket read, an mpsc recv, a sleep.
    let keep = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut keep = Vec::new();
        for i in 0..n {
            // Sockets are capped by the open-file limit.
            match i % 3 {
                0 if i < 12_000 => {
                    // One connection serves many readers' worth of tasks:
                    // a read on a socket nobody writes to.
                    let (client, server) =
                        tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
                    let (mut server, _) = server.expect("accept");
                    keep.push(Box::new(client.expect("connect")) as Box<dyn std::any::Any + Send>);
                    tokio::spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut b = [0u8; 1];
                        let _ = server.read(&mut b).await;
                    });
                }
                1 | 0 => {
                    let (tx, mut rx) = tokio::sync::mpsc::channel::<u8>(1);
                    keep.push(Box::new(tx));
                    tokio::spawn(async move { rx.recv().await });
                }
                _ => {
                    tokio::spawn(tokio::time::sleep(Duration::from_secs(86_400)));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        keep
    });
    // The agent serves from a thread of its own, as in a target.
    let (reply, total) = std::thread::scope(|s| {
        s.spawn(|| {
            let own = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let t = Instant::now();
            let r = own.block_on(agent.dump(Duration::from_secs(60)));
            (r, t.elapsed())
        })
        .join()
        .expect("dump thread")
    });
    let reply = reply.expect("dump");
    println!(
        "{n} tasks: capture (runtime held) {:?}, resolve {:?}, total {:?}; reply {} KiB ({} B/task), {} distinct stacks",
        Duration::from_nanos(reply.capture_ns),
        Duration::from_nanos(reply.resolve_ns),
        total,
        reply.encoded_len() / 1024,
        reply.encoded_len() / n.max(1),
        reply.traces.len()
    );
    drop(keep);
    rt.shutdown_background();
}
