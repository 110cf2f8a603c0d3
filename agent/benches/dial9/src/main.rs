//! dial9 (dial9-tokio-telemetry 0.5.7) on the workloads of taskscope's
//! hooks bench (`agent/benches/hooks.rs`): 200 000 short tasks, each
//! yielding 3×, at most 2 000 in flight, spawned from `block_on` (wall and
//! CPU time), and 100 000 idle tasks on a `Sleep` (RSS from the process's
//! start, per task); 2 worker threads; each mode in a fresh process,
//! rounds alternating, medians.
//! Modes: `plain` (no hooks), `dial9` (its recorder attached to the
//! runtime with task tracking on, as its docs set it up, writing its
//! trace to a file under /tmp), `dial9-mem` (the same into a 16 MiB
//! memory buffer: no I/O). `cargo run --release` in this directory;
//! `DIAL9_BENCH_ROUNDS` (9).

use dial9_tokio_telemetry::telemetry::{
    Dial9HandleTokioExt, DiskBuffer, MemoryBuffer, TokioAttachOptions, recorder,
};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    if let Ok(mode) = std::env::var("DIAL9_BENCH_MODE") {
        run(&mode);
        return;
    }
    let rounds: usize = std::env::var("DIAL9_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let modes = ["plain", "dial9", "dial9-mem"];
    let mut r: Vec<[Vec<f64>; 3]> = vec![Default::default(); modes.len()];
    for _ in 0..rounds {
        for (i, m) in modes.iter().enumerate() {
            let (w, c) = child(m, "churn");
            r[i][0].push(w);
            r[i][1].push(c);
            r[i][2].push(child(m, "idle").0);
        }
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "churn: 200000 tasks (yield 3x, 2 000 in flight); idle: 100000 tasks on a Sleep; 2 workers; medians of {rounds}"
    );
    let mut plain = (0.0, 0.0, 0.0);
    for (m, [mut w, mut c, mut b]) in modes.iter().zip(r) {
        let (w, c, b) = (med(&mut w), med(&mut c), med(&mut b));
        if *m == "plain" {
            plain = (w, c, b);
        }
        println!(
            "{m:<10} churn {:>5.0} ms (CPU {:>5.0} ms) {:.2}x / {:.2}x   idle {:>4.0} B/task ({:+.0})",
            w * 1e3,
            c * 1e3,
            w / plain.0,
            c / plain.1,
            b,
            b - plain.2
        );
    }
}

fn child(mode: &str, what: &str) -> (f64, f64) {
    let out = Command::new(std::env::current_exe().expect("exe"))
        .env("DIAL9_BENCH_MODE", format!("{mode}:{what}"))
        .output()
        .expect("child");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |n: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(n))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    match field("result=") {
        Some(r) => (r, field("cpu=").unwrap_or(0.0)),
        None => panic!(
            "{mode}:{what}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn run(mode: &str) {
    let (source, what) = mode.split_once(':').expect("mode:what");
    // Memory is read from the process's start, as the agent's bench does.
    let at_start = rss();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let options = || {
        TokioAttachOptions::builder()
            .task_tracking_enabled(true)
            .build()
    };
    let (_recorder, rt) = match source {
        "plain" => (None, builder.build().expect("runtime")),
        "dial9" => {
            let path = format!("/tmp/dial9-churn-{}.bin", std::process::id());
            let rec = recorder(DiskBuffer::single_file(&path).expect("trace file")).build();
            let rt = rec
                .handle()
                .attach_tokio_runtime(builder, options())
                .expect("attach");
            (Some((rec, Some(path))), rt)
        }
        "dial9-mem" => {
            let rec = recorder(MemoryBuffer::new(16 * 1024 * 1024).expect("buffer")).build();
            let rt = rec
                .handle()
                .attach_tokio_runtime(builder, options())
                .expect("attach");
            (Some((rec, None)), rt)
        }
        other => panic!("unknown mode {other}"),
    };
    match what {
        "churn" => {
            let cpu = cpu_time();
            let t = rt.block_on(churn(200_000));
            println!("result={}", t.as_secs_f64());
            println!("cpu={}", cpu_time() - cpu);
        }
        "idle" => {
            let keep = rt.block_on(idle(100_000));
            println!(
                "result={}",
                rss().saturating_sub(at_start) as f64 / 100_000.0
            );
            drop(keep);
        }
        other => panic!("unknown measurement {other}"),
    }
    if let Some((_, Some(path))) = &_recorder {
        let _ = std::fs::remove_file(path);
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

async fn idle(n: usize) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(tokio::time::sleep(Duration::from_secs(3600)));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    set
}

fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn cpu_time() -> f64 {
    // SAFETY: `getrusage` writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage; RUSAGE_SELF always exists.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
