//! What must pass the check: a test that leaves nothing, tasks that end
//! within the grace period, aborted or dropped `JoinSet`s,
//! `spawn_blocking`, another runtime's tasks, ignored places and
//! functions, tasks alive before the test.

use crate::common::GRACE;
use std::time::{Duration, Instant};
use taskscope_test::Check;
use tokio::io::AsyncWriteExt;

#[test]
fn a_test_that_leaves_nothing_passes_without_waiting_out_the_grace_period() {
    let check = Check::new().grace(Duration::from_secs(30));
    let rt = check.runtime_current_thread().unwrap();
    rt.block_on(async {
        let h = taskscope_agent::spawn(async { 1 + 1 });
        assert_eq!(h.await.unwrap(), 2);
    });
    let started = Instant::now();
    check.verify(&rt).unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn tasks_that_end_within_the_grace_period_pass() {
    let check = Check::new().grace(Duration::from_secs(5));
    let rt = check.runtime_multi_thread(2).unwrap();
    let (writer, mut reader) = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        (c, l.accept().await.unwrap().0)
    });
    rt.block_on(async move {
        // A reader that ends when its peer closes, a moment after the test.
        taskscope_agent::spawn(async move {
            let mut buf = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut buf).await;
        });
        // A timer that fires within the grace period.
        tokio::spawn(tokio::time::sleep(Duration::from_millis(30)));
        // The writer closes from a task that has yet to run.
        tokio::spawn(async move {
            let mut writer = writer;
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = writer.shutdown().await;
        });
    });
    check.verify(&rt).unwrap();
}

#[test]
fn aborted_and_dropped_join_sets_pass() {
    let check = Check::new().grace(GRACE);
    let rt = check.runtime_current_thread().unwrap();
    rt.block_on(async {
        let mut aborted = tokio::task::JoinSet::new();
        let mut dropped = tokio::task::JoinSet::new();
        for _ in 0..3 {
            aborted.spawn(std::future::pending::<()>());
            dropped.spawn(taskscope_agent::traced(std::future::pending::<()>()));
        }
        aborted.abort_all();
        drop(dropped);
        // The aborted set, left to the runtime to reap.
        std::mem::forget(aborted);
    });
    check.verify(&rt).unwrap();
}

#[test]
fn spawn_blocking_is_not_a_task_of_the_check() {
    let check = Check::new().grace(GRACE);
    let rt = check.runtime_current_thread().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    rt.block_on(async move {
        // Still in its closure when the check runs.
        tokio::task::spawn_blocking(move || {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        });
    });
    let res = check.verify(&rt);
    drop(tx);
    res.unwrap();
}

#[test]
fn another_runtimes_tasks_are_not_the_tests() {
    let other = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let check = Check::new().grace(GRACE);
    let rt = check.runtime_current_thread().unwrap();
    let handle = other.handle().clone();
    rt.block_on(async move {
        handle.spawn(std::future::pending::<()>());
    });
    check.verify(&rt).unwrap();
    // A second checked runtime's tasks are its own, too.
    let second = Check::new().grace(GRACE);
    let rt2 = second.runtime_current_thread().unwrap();
    rt2.block_on(async {
        tokio::spawn(std::future::pending::<()>());
    });
    check.verify(&rt).unwrap();
    assert!(second.verify(&rt2).is_err());
}

#[test]
fn ignored_places_and_functions_pass() {
    let check = Check::new()
        .grace(GRACE)
        .ignore(format!("{}:{}", file!(), line!() + 5))
        .ignore("passes::background_loop");
    let rt = check.runtime_current_thread().unwrap();
    rt.block_on(async {
        // Ignored by place.
        tokio::spawn(std::future::pending::<()>());
        // Ignored by a function its stack passes through.
        taskscope_agent::spawn(background_loop());
    });
    check.verify(&rt).unwrap();
}

async fn background_loop() {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

#[test]
fn a_function_ignore_does_not_hide_other_functions() {
    let check = Check::new().grace(GRACE).ignore("passes::not_this_one");
    let rt = check.runtime_current_thread().unwrap();
    rt.block_on(async {
        taskscope_agent::spawn(background_loop());
    });
    assert!(check.verify(&rt).is_err());
}

#[test]
fn tasks_alive_before_the_test_can_be_left_alone() {
    let check = Check::new().grace(GRACE);
    let rt = check.runtime_current_thread().unwrap();
    // A fixture the test does not own.
    rt.block_on(async {
        taskscope_agent::spawn(background_loop());
    });
    check.ignore_current();
    rt.block_on(async {
        tokio::spawn(async { tokio::task::yield_now().await });
    });
    check.verify(&rt).unwrap();
}

#[test]
fn a_check_with_no_runtime_says_so() {
    let check = Check::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = check.verify(&rt).unwrap_err();
    assert!(matches!(e, taskscope_test::Error::NotInstalled));
    assert!(e.to_string().contains("Check::runtime_current_thread()"));
}

#[test]
fn a_runtime_of_your_own_can_be_checked() {
    let check = Check::new().grace(GRACE);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).enable_io();
    check.install(&mut builder);
    let rt = builder.build().unwrap();
    rt.block_on(async {
        tokio::spawn(std::future::pending::<()>());
    });
    assert!(check.verify(&rt).is_err());
}

/// A limit, pinned so that it is noticed when tokio lifts it: its task
/// hooks do not cover a `LocalSet`'s tasks, so the check cannot see them
/// (the crate's docs say so).
#[test]
fn a_local_sets_tasks_are_not_seen_yet() {
    let check = Check::new().grace(GRACE);
    let rt = check.runtime_current_thread().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        tokio::task::spawn_local(std::future::pending::<()>());
        tokio::task::yield_now().await;
    });
    check.verify(&rt).unwrap();
}
