//! What each source costs a tokio service, side by side in one run, each
//! mode in a fresh process of this same binary (2 worker threads):
//! - **churn**: 200 000 short tasks, each yielding 3×, at most 2 000 in
//!   flight: wall time;
//! - **idle memory**: 100 000 idle tasks, each waiting on a `Sleep`: RSS
//!   growth per task.
//!
//! Modes: `plain` (no instrumentation installed), `console`
//! (console-subscriber 0.5 with its defaults, as `console_subscriber::init`),
//! `hooks` (taskscope-agent's hooks recorder). `cargo bench -p
//! taskscope-agent --bench hooks`; `-- --quick` is the CI smoke run
//! (20 000 tasks, one round, no console mode).

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    if let Ok(mode) = std::env::var("TASKSCOPE_BENCH_MODE") {
        let n: usize = std::env::var("TASKSCOPE_BENCH_N")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        run(&mode, n);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, idle, rounds, modes): (usize, usize, usize, &[&str]) = if quick {
        (20_000, 20_000, 1, &["plain", "hooks"])
    } else {
        (200_000, 100_000, 5, &["plain", "console", "hooks"])
    };
    println!(
        "churn: {n} tasks (yield 3x, 2 000 in flight); idle: {idle} tasks on a Sleep; 2 workers; best and worst of {rounds}"
    );
    println!(
        "{:<8} {:>22} {:>12} {:>14} {:>20}",
        "mode", "churn (best..worst)", "median", "idle B/task", "vs plain best/median"
    );
    // Rounds interleave the modes, so that drift in the machine's load
    // falls on all of them alike.
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); modes.len()];
    for _ in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            results[i].0.push(child(mode, "churn", n));
            results[i].1.push(child(mode, "idle", idle));
        }
    }
    let mut plain_best = None;
    for (mode, (mut churn, mut per_task)) in modes.iter().zip(results) {
        churn.sort_by(f64::total_cmp);
        per_task.sort_by(f64::total_cmp);
        let (best, median) = (churn[0], churn[churn.len() / 2]);
        if *mode == "plain" {
            plain_best = Some((best, median));
        }
        let ratio = plain_best.map_or(String::new(), |(b, m)| {
            format!("{:.2}x / {:.2}x", best / b, median / m)
        });
        println!(
            "{:<8} {:>22} {:>12} {:>14.0} {:>20}",
            mode,
            format!("{:.0}..{:.0} ms", best * 1e3, churn[churn.len() - 1] * 1e3),
            format!("{:.0} ms", median * 1e3),
            per_task[per_task.len() / 2],
            ratio
        );
    }
}

/// Runs one measurement in a fresh process; returns seconds (churn) or
/// bytes per task (idle).
fn child(mode: &str, what: &str, n: usize) -> f64 {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("TASKSCOPE_BENCH_MODE", format!("{mode}:{what}"))
        .env("TASKSCOPE_BENCH_N", n.to_string())
        .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0")
        .output()
        .expect("run bench child");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("result="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "{mode}:{what} gave no result: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

fn run(mode: &str, n: usize) {
    let (source, what) = mode.split_once(':').expect("mode:what");
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let recorder = taskscope_agent::hooks::Recorder::new();
    match source {
        "plain" => {}
        "hooks" => recorder.install(&mut builder),
        "console" => console_subscriber::init(),
        other => panic!("unknown mode {other}"),
    }
    let rt = builder.build().expect("runtime");
    match what {
        "churn" => {
            let t = rt.block_on(churn(n));
            println!("result={}", t.as_secs_f64());
        }
        "idle" => {
            // Warm up the allocator and the runtime, then measure.
            rt.block_on(idle(1_000));
            let before = rss();
            let keep = rt.block_on(idle(n));
            let after = rss();
            println!(
                "result={}",
                (after.saturating_sub(before)) as f64 / n as f64
            );
            drop(keep);
        }
        other => panic!("unknown measurement {other}"),
    }
    if source == "hooks" {
        eprintln!("recorder holds {} live tasks", recorder.live());
    }
}

async fn churn(n: usize) -> Duration {
    let t = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(2_000));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("permit");
        set.spawn(async move {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            drop(permit);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
    t.elapsed()
}

/// Spawns `n` tasks that each sleep for an hour; returns their handles.
async fn idle(n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    let handles: Vec<_> = (0..n)
        .map(|_| tokio::spawn(tokio::time::sleep(Duration::from_secs(3600))))
        .collect();
    // Let every task be polled once (registering its timer).
    tokio::time::sleep(Duration::from_millis(200)).await;
    handles
}

/// Resident set size in bytes (Linux `/proc/self/statm`).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}
