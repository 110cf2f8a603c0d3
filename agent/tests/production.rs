//! What makes the agent's waits safe to ask for in a production service:
//! a request never waits for the runtime beyond the agent's own bound
//! (even when the runtime is stuck), concurrent requests fail fast instead
//! of queueing, a capture holds only until its task runs again, and the
//! agent's own polls are not counted as the task's activity.

use std::time::{Duration, Instant};
use taskscope_agent::Agent;

use crate::common;

fn client() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime")
}

/// A runtime with the hooks source on a thread of its own, running
/// `setup`'s tasks until the returned sender is dropped.
fn target<T: Send + 'static>(
    agent: &Agent,
    current_thread: bool,
    setup: impl FnOnce() -> T + Send + 'static,
) -> (T, std::sync::mpsc::Sender<()>) {
    let rt = common::hooked_runtime(agent, current_thread);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        rt.block_on(async move {
            ready_tx.send(setup()).expect("ready");
            while stop_rx.try_recv() == Err(std::sync::mpsc::TryRecvError::Empty) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    });
    (ready_rx.recv().expect("target started"), stop_tx)
}

fn spawn_waiters(n: usize) -> Vec<tokio::sync::oneshot::Sender<()>> {
    (0..n)
        .map(|_| {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            taskscope_agent::spawn(async move {
                let _ = rx.await;
            });
            tx
        })
        .collect()
}

#[test]
fn a_second_request_while_one_is_served_fails_fast() {
    let agent = Agent::builder()
        .min_interval(Duration::ZERO)
        .build()
        .expect("agent");
    let (_keep, _stop) = target(&agent, false, || spawn_waiters(2_000));
    let rt = client();
    let (a, b) = rt.block_on(async {
        let first = agent.waits(Duration::from_secs(1));
        let second = async {
            // Asked while the first is under way.
            tokio::task::yield_now().await;
            let t = Instant::now();
            (agent.waits(Duration::from_secs(1)).await, t.elapsed())
        };
        tokio::join!(first, second)
    });
    assert!(a.is_ok(), "{:?}", a.err());
    let (second, waited) = b;
    let refused = second.expect_err("refused");
    assert!(
        matches!(refused, taskscope_agent::WaitsError::Busy),
        "{refused:?}"
    );
    assert!(waited < Duration::from_millis(100), "waited {waited:?}");
}

#[test]
fn a_stuck_runtime_cannot_hold_a_request_longer_than_the_agent_allows() {
    // A current_thread runtime stuck in a blocking call never polls the
    // tasks asked for a capture: the request is answered when the agent's
    // own bound passes (a client asking for an hour gets that bound), with
    // the captures that hold (none here), not an error.
    let agent = Agent::builder()
        .min_interval(Duration::ZERO)
        .build()
        .expect("agent");
    let (_keep, _stop) = target(&agent, true, || {
        let keep = spawn_waiters(10);
        tokio::spawn(async {
            tokio::task::yield_now().await;
            std::thread::sleep(Duration::from_secs(30));
        });
        keep
    });
    let started = Instant::now();
    client()
        .block_on(agent.waits(Duration::from_secs(3600)))
        .expect("answered");
    let waited = started.elapsed();
    assert!(
        waited < taskscope_agent::testing::MAX_TIMEOUT + Duration::from_secs(1),
        "answered after {waited:?}"
    );
}

#[test]
fn a_capture_holds_until_its_task_runs_and_the_agents_polls_are_not_the_tasks() {
    let agent = Agent::builder()
        .min_interval(Duration::ZERO)
        .build()
        .expect("agent");
    let ((tx, id), _stop) = target(&agent, false, || {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let h = taskscope_agent::spawn(async move {
            let _ = rx.recv().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        (tx, taskscope_agent::live::task_id(h.id()))
    });
    let rt = client();
    let recorder = taskscope_agent::testing::recorder(&agent).expect("hooks");
    let leaf = |reply: &taskscope_agent::proto::DumpReply| -> Option<String> {
        let t = reply.tasks.iter().find(|t| t.id == id)?;
        let trace = &reply.traces[t.trace as usize];
        Some(
            trace.leaves[0]
                .frames
                .last()
                .map(|f| f.file.clone())
                .unwrap_or_default(),
        )
    };
    let until = |f: &dyn Fn(&taskscope_agent::proto::DumpReply) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = rt
                .block_on(agent.waits(Duration::from_secs(1)))
                .expect("waits");
            if f(&r) || Instant::now() > deadline {
                return r;
            }
        }
    };
    let page = || {
        let r = recorder.groups();
        let g = r
            .groups
            .iter()
            .find(|g| g.live > 0 && g.site.location.file().ends_with("production.rs"))
            .expect("the task's group")
            .site
            .location;
        recorder
            .tasks((g.file(), g.line(), g.column()), false, None, 0, 10)
            .tasks
            .into_iter()
            .find(|t| t.id == id)
            .expect("the task")
    };
    let first = until(&|r| leaf(r).is_some());
    assert!(
        leaf(&first).is_some_and(|f| f.ends_with("sync/mpsc/chan.rs")),
        "{:?}",
        leaf(&first)
    );
    let before = page();
    // The reply says the capture was taken after the task's last poll
    // ended, so a reader takes it for the task's wait (its time is kept in
    // whole seconds: said as the start of its second, a capture made in
    // the same second as the poll read as older than the poll).
    let captured = |r: &taskscope_agent::proto::DumpReply| {
        r.tasks
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.captured_unix_ns)
    };
    assert!(
        captured(&first) >= before.idle_since_unix_ns,
        "captured {:?}, idle since {:?}",
        captured(&first),
        before.idle_since_unix_ns
    );
    // Many more captures: the task's own record does not move.
    for _ in 0..20 {
        rt.block_on(agent.waits(Duration::from_secs(1)))
            .expect("waits");
    }
    let after = page();
    assert_eq!(
        (after.polls, after.idle_since_unix_ns),
        (before.polls, before.idle_since_unix_ns),
        "the agent's polls are not the task's"
    );
    assert!(recorder.capture_stats().polls >= 1);
    // The task runs: its old capture no longer holds, and the next one
    // says where it waits now.
    rt.block_on(tx.send(())).expect("send");
    let second = until(&|r| leaf(r).is_some_and(|f| f.ends_with("time/sleep.rs")));
    assert!(
        leaf(&second).is_some_and(|f| f.ends_with("time/sleep.rs")),
        "{:?}",
        leaf(&second)
    );
    let now = page();
    assert!(now.polls > before.polls);
    assert!(
        captured(&second) >= now.idle_since_unix_ns,
        "captured {:?}, idle since {:?}",
        captured(&second),
        now.idle_since_unix_ns
    );
}
