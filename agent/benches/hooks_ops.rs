//! What each of the hooks' own functions costs, called directly in a loop
//! on one thread (no runtime around them): ns per spawn, per poll (before
//! and after), per end, and per whole short task (spawn, four polls, the
//! last ending it), the folds their logs cause included; and the clocks a
//! hook could read. Median of 11 batches of 100 000 tasks' worth.
//! `cargo bench -p taskscope-agent --bench hooks_ops`; `-- --quick` runs
//! 3 batches.
#![cfg_attr(not(tokio_unstable), allow(unused))]

use std::hint::black_box;
use std::panic::Location;
use std::time::Instant;
use taskscope_agent::testing::Recorder;

const N: usize = 100_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Real task ids (tokio makes them only for tasks).
fn ids(n: usize) -> Vec<tokio::task::Id> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    rt.block_on(async { (0..n).map(|_| tokio::spawn(async {}).id()).collect() })
}

/// ns per call of `f` over `n` calls, median of `batches`.
fn per_op(batches: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let v = (0..batches)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    median(v)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let batches = if quick { 3 } else { 11 };
    let at = Location::caller();
    let ids = ids(N);
    println!("one thread, {N} tasks a batch, median of {batches} batches (ns per call)");

    // The clocks.
    let coarse = per_op(batches, N, || {
        for _ in 0..N {
            black_box(taskscope_agent::testing::coarse_ns());
        }
    });
    let precise = per_op(batches, N, || {
        for _ in 0..N {
            black_box(Instant::now());
        }
    });
    println!(
        "{:<44} {:>7.1}",
        "clock: CLOCK_MONOTONIC_COARSE (vDSO)", coarse
    );
    println!(
        "{:<44} {:>7.1}",
        "clock: Instant::now (CLOCK_MONOTONIC)", precise
    );

    let r = Recorder::new();
    // Each batch: spawn every task, poll each four times (the last ends
    // it), as tokio calls the hooks; then the same split by hook.
    let whole = per_op(batches, N, || {
        for &id in &ids {
            r.spawned(id, at);
            for _ in 0..3 {
                r.before_poll(id, at);
                r.after_poll(id);
            }
            r.before_poll(id, at);
            r.terminated(id);
            r.after_poll(id);
        }
    });
    assert_eq!(r.live(), 0);
    let spawn = per_op(batches, N, || {
        for &id in &ids {
            r.spawned(id, at);
        }
        // (Ended outside the timing below.)
    });
    // The batches above left live tasks: end them all (one end each per
    // batch, outside a poll: an abort or a shutdown).
    let end = per_op(1, N, || {
        for &id in &ids {
            r.terminated(id);
        }
    });
    assert_eq!(r.live(), 0);
    for &id in &ids {
        r.spawned(id, at);
    }
    let poll = per_op(batches, N, || {
        for &id in &ids {
            r.before_poll(id, at);
            r.after_poll(id);
        }
    });
    let read = {
        let t = Instant::now();
        let g = r.groups();
        black_box(g.groups.len());
        t.elapsed().as_secs_f64() * 1e3
    };
    println!("{:<44} {:>7.1}", "spawn (on_task_spawn)", spawn);
    println!(
        "{:<44} {:>7.1}",
        "poll (on_before_task_poll + on_after_task_poll)", poll
    );
    println!(
        "{:<44} {:>7.1}",
        "end outside a poll (on_task_terminate)", end
    );
    println!(
        "{:<44} {:>7.1}",
        "a short task: spawn, 4 polls, end in the last", whole
    );
    println!(
        "{:<44} {:>7.2} ms",
        "groups() over 100 000 live tasks, 1 place", read
    );
}
