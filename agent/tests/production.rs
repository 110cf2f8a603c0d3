//! What makes the agent safe to leave in a production service: dumps of a
//! `current_thread` runtime are real (tokio returns an empty one when asked
//! from outside), concurrent requests fail fast instead of queueing, and a
//! client cannot make a dump wait longer than the agent allows.
#![cfg(all(target_os = "linux", tokio_unstable))]

use std::time::{Duration, Instant};
use taskscope_agent::Agent;

/// A runtime of `flavor` running `n` tasks parked on a oneshot each, on a
/// thread of its own; the agent attached to it.
fn target(current_thread: bool, n: usize) -> (Agent, std::sync::mpsc::Sender<()>) {
    let agent = Agent::with_min_interval(Duration::ZERO);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let a = agent.clone();
    std::thread::spawn(move || {
        let rt = if current_thread {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
        .enable_all()
        .build()
        .expect("runtime");
        a.attach(rt.handle().clone());
        rt.block_on(async move {
            let mut keep = Vec::new();
            for _ in 0..n {
                let (tx, rx) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(async move {
                    let _ = rx.await;
                });
                keep.push(tx);
            }
            tokio::task::yield_now().await;
            ready_tx.send(()).expect("ready");
            // The runtime keeps running its tasks until told to stop.
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            drop(keep);
        });
    });
    ready_rx.recv().expect("target started");
    (agent, stop_tx)
}

fn client() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

#[test]
fn a_current_thread_runtime_is_dumped_from_inside_itself() {
    let (agent, _stop) = target(true, 20);
    let reply = client()
        .block_on(agent.dump(Duration::from_secs(5)))
        .expect("dump");
    // The 20 parked tasks, never silently none.
    assert!(
        reply.tasks.len() >= 20,
        "{} tasks in the dump",
        reply.tasks.len()
    );
}

#[test]
fn a_second_request_during_a_dump_fails_fast() {
    let (agent, _stop) = target(false, 2_000);
    let rt = client();
    let (a, b) = rt.block_on(async {
        let first = agent.dump(Duration::from_secs(5));
        let second = async {
            // Asked while the first is under way.
            tokio::task::yield_now().await;
            let t = Instant::now();
            (agent.dump(Duration::from_secs(5)).await, t.elapsed())
        };
        tokio::join!(first, second)
    });
    assert!(a.is_ok(), "{:?}", a.err());
    let (second, waited) = b;
    let err = second.expect_err("the second request is refused");
    assert_eq!(err, taskscope_agent::DumpError::Busy);
    assert!(waited < Duration::from_millis(100), "waited {waited:?}");
}

#[test]
fn a_client_cannot_make_a_dump_wait_longer_than_the_agent_allows() {
    // A current_thread runtime stuck in a blocking call never runs the
    // capture task; a client that asks to wait an hour is answered, with a
    // reason, when the agent's own limit passes.
    let agent = Agent::with_min_interval(Duration::ZERO);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let a = agent.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        a.attach(rt.handle().clone());
        rt.block_on(async move {
            ready_tx.send(()).expect("ready");
            std::thread::sleep(Duration::from_secs(60));
        });
    });
    ready_rx.recv().expect("target started");
    let started = Instant::now();
    let err = client()
        .block_on(agent.dump(Duration::from_secs(3600)))
        .expect_err("no dump from a stuck runtime");
    let waited = started.elapsed();
    assert!(err.to_string().contains("did not pause"), "{err}");
    assert!(
        waited >= taskscope_agent::MAX_DUMP_TIMEOUT && waited < Duration::from_secs(40),
        "answered after {waited:?}"
    );
}
