//! Captures never strand work: a wrapped task that drives many children
//! through a combinator (`FuturesUnordered`, `join_all`,
//! `buffer_unordered`, `for_each_concurrent`, `select!`) keeps making
//! progress while the agent asks it for its waits hundreds of times.
//!
//! A capture polls the task once in tokio's tracing mode, where each tokio
//! leaf returns `Pending` before registering a waker. A combinator's child
//! that was woken and dequeued for that poll would then never be polled
//! again, unless tokio defers a wake of it, which `trace_leaf` does from
//! tokio 1.53.2 on (tokio-rs/tokio#8445; on 1.53.0–1.53.1 this test
//! strands a child for good: tokio-rs/tokio#8434). That is why the agent
//! requires tokio 1.53.2; `scripts/tokio-versions.sh` runs this test on
//! the oldest tokio the agent accepts, and shows it failing on 1.53.1.
//!
//! A watchdog fails the test when the wrapped task finishes no round of
//! its children for `STALL`, or does not stop when told.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use taskscope_agent::Agent;

use crate::common::hooked_runtime;

/// Children per round, and the requests for waits made during the run.
const CHILDREN: usize = 200;
const REQUESTS: usize = 300;
/// No round finished for this long: a child is stranded.
const STALL: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug)]
enum Driver {
    FuturesUnordered,
    JoinAll,
    BufferUnordered,
    ForEachConcurrent,
    Select,
}

/// One child: a few short sleeps and yields, so that at any moment some
/// children of the round have just been woken.
async fn child(i: usize) -> usize {
    for step in 0..4 {
        if (i + step).is_multiple_of(3) {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1 + (i % 3) as u64)).await;
        }
    }
    i
}

/// One round: every child driven to its end by `driver`.
async fn round(driver: Driver) {
    match driver {
        Driver::FuturesUnordered => {
            let mut set: FuturesUnordered<_> = (0..CHILDREN).map(child).collect();
            let mut done = 0;
            while set.next().await.is_some() {
                done += 1;
            }
            assert_eq!(done, CHILDREN);
        }
        Driver::JoinAll => {
            let all = futures_util::future::join_all((0..CHILDREN).map(child)).await;
            assert_eq!(all.len(), CHILDREN);
        }
        Driver::BufferUnordered => {
            let n = futures_util::stream::iter((0..CHILDREN).map(child))
                .buffer_unordered(50)
                .count()
                .await;
            assert_eq!(n, CHILDREN);
        }
        Driver::ForEachConcurrent => {
            let n = AtomicU64::new(0);
            futures_util::stream::iter(0..CHILDREN)
                .for_each_concurrent(50, |i| {
                    let n = &n;
                    async move {
                        child(i).await;
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .await;
            assert_eq!(n.into_inner(), CHILDREN as u64);
        }
        Driver::Select => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<usize>(8);
            let feeder = tokio::spawn(async move {
                for i in 0..CHILDREN {
                    if tx.send(i).await.is_err() {
                        return;
                    }
                }
            });
            let mut got = 0;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while got < CHILDREN {
                tokio::select! {
                    Some(i) = rx.recv() => {
                        child(i).await;
                        got += 1;
                    }
                    _ = tick.tick() => {}
                }
            }
            feeder.await.expect("feeder");
        }
    }
}

fn drive(driver: Driver, current_thread: bool) {
    let agent = Agent::with_min_interval(Duration::ZERO);
    let rt = hooked_runtime(&agent, current_thread);
    let rounds = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let parent = {
        let (rounds, stop) = (rounds.clone(), stop.clone());
        let _enter = rt.enter();
        taskscope_agent::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                round(driver).await;
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The runtime runs on a thread of its own; the test's thread asks for
    // waits and watches the rounds.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let driver_thread = std::thread::spawn(move || {
        let r = rt.block_on(parent);
        let _ = done_tx.send(r.is_ok());
    });
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client");
    let mut last = (rounds.load(Ordering::Relaxed), Instant::now());
    let mut asked = 0;
    let mut captured = 0u64;
    while asked < REQUESTS {
        let reply = client
            .block_on(agent.dump(Duration::from_millis(100)))
            .expect("waits");
        asked += 1;
        captured += reply.tasks.len() as u64;
        let now = rounds.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            last.1.elapsed() < STALL,
            "{driver:?} (current_thread={current_thread}): no round finished for {STALL:?} after {asked} requests for waits and {captured} captures: a child is stranded"
        );
    }
    assert!(captured > 0, "{driver:?}: the task was never captured");
    stop.store(true, Ordering::Relaxed);
    let ended = done_rx.recv_timeout(STALL);
    assert_eq!(
        ended,
        Ok(true),
        "{driver:?} (current_thread={current_thread}): the task did not finish its last round after {asked} requests and {captured} captures: a child is stranded"
    );
    driver_thread.join().expect("runtime thread");
}

#[test]
fn futures_unordered_children_survive_captures() {
    drive(Driver::FuturesUnordered, false);
    drive(Driver::FuturesUnordered, true);
}

#[test]
fn join_all_children_survive_captures() {
    drive(Driver::JoinAll, false);
    drive(Driver::JoinAll, true);
}

#[test]
fn buffer_unordered_children_survive_captures() {
    drive(Driver::BufferUnordered, false);
    drive(Driver::BufferUnordered, true);
}

#[test]
fn for_each_concurrent_children_survive_captures() {
    drive(Driver::ForEachConcurrent, false);
    drive(Driver::ForEachConcurrent, true);
}

#[test]
fn select_branches_survive_captures() {
    drive(Driver::Select, false);
    drive(Driver::Select, true);
}
