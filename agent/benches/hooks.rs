//! What each source costs a tokio service, side by side in one run, each
//! mode in a fresh process of this same binary (2 worker threads):
//! - **churn**: 200 000 short tasks, each yielding 3×, at most 2 000 in
//!   flight, spawned from `block_on`: wall time, and CPU time (user +
//!   system, every thread of the process);
//! - **idle memory**: 100 000 idle tasks, each waiting on a `Sleep`: the
//!   process's RSS then, from its start, per task (the agent's fixed
//!   structures count, spread over the tasks).
//!
//! Modes: `plain` (no instrumentation installed), `empty` (the four hooks
//! installed, doing nothing: what tokio's hooks cost by themselves, the
//! floor of any recorder built on them), `naive` (the straightforward
//! structure: a `Mutex<HashMap>` per shard, 64 shards by task id, locked by
//! all four hooks; per-location counts in one more sharded map), `hooks`
//! (taskscope-agent's hooks recorder: each hook appends an event to its
//! thread's log, folded into the table by whichever thread fills its log,
//! and by readers), `traced` (the same, every task spawned through
//! `taskscope_agent::traced` so its waits can be captured).
//!
//! Built as `cargo bench -p taskscope-agent --bench hooks`, tokio has no
//! `tracing` feature: `plain` is what a service has before adding the
//! agent. With `--features console` the binary links console-subscriber,
//! which turns tokio's `tracing` on for every mode, and measures `console`
//! (console-subscriber 0.5 with its defaults, as `console_subscriber::init`)
//! and `agent` (the same with taskscope-agent beside it, as
//! `taskscope_agent::init`) beside `plain+tracing`. `scripts/agent-cost.sh`
//! runs both builds and prints one table. Rounds alternate the modes
//! (`TASKSCOPE_BENCH_ROUNDS`, 9 by default); `TASKSCOPE_BENCH_MODES=plain,hooks`
//! picks modes; `-- --quick` is the CI smoke run (20 000 tasks, one round).

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
    // `TASKSCOPE_BENCH_MODES=plain,hooks` runs those modes only.
    let chosen: Option<Vec<String>> = std::env::var("TASKSCOPE_BENCH_MODES")
        .ok()
        .map(|m| m.split(',').map(str::to_string).collect());
    let chosen: Option<Vec<&str>> = chosen
        .as_ref()
        .map(|v| v.iter().map(String::as_str).collect());
    #[cfg(not(feature = "console"))]
    let all: &[&str] = &["plain", "empty", "naive", "hooks", "traced"];
    #[cfg(feature = "console")]
    let all: &[&str] = &["plain+tracing", "console", "agent"];
    let all: &[&str] = chosen.as_deref().unwrap_or(all);
    let rounds: usize = std::env::var("TASKSCOPE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let (n, idle, rounds, modes): (usize, usize, usize, &[&str]) = if quick {
        (20_000, 20_000, 1, &all[..all.len().min(2)])
    } else {
        (200_000, 100_000, rounds, all)
    };
    println!(
        "churn: {n} tasks (yield 3x, 2 000 in flight); idle: {idle} tasks on a Sleep; 2 workers; medians of {rounds} alternating rounds"
    );
    println!(
        "{:<8} {:>18} {:>9} {:>9} {:>12} {:>20}",
        "mode", "churn (min..max)", "median", "CPU", "idle B/task", "vs plain: wall, CPU"
    );
    // Rounds interleave the modes, so that drift in the machine's load
    // falls on all of them alike.
    let mut results: Vec<[Vec<f64>; 3]> = vec![Default::default(); modes.len()];
    for _ in 0..rounds {
        for (i, mode) in modes.iter().enumerate() {
            let (wall, cpu) = child(mode, "churn", n);
            results[i][0].push(wall);
            results[i][1].push(cpu);
            results[i][2].push(child(mode, "idle", idle).0);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut plain = None;
    for (mode, [mut wall, mut cpu, mut per_task]) in modes.iter().zip(results) {
        let (w, c, m) = (median(&mut wall), median(&mut cpu), median(&mut per_task));
        if mode.starts_with("plain") {
            plain = Some((w, c, m));
        }
        let ratio = plain.map_or(String::new(), |(pw, pc, _)| {
            format!("{:.2}x, {:.2}x", w / pw, c / pc)
        });
        let bytes = match plain {
            Some((_, _, pm)) if !mode.starts_with("plain") => format!("{m:.0} ({:+.0})", m - pm),
            _ => format!("{m:.0}"),
        };
        println!(
            "{:<8} {:>18} {:>9} {:>9} {:>12} {:>20}",
            mode,
            format!("{:.0}..{:.0} ms", wall[0] * 1e3, wall[wall.len() - 1] * 1e3),
            format!("{:.0} ms", w * 1e3),
            format!("{:.0} ms", c * 1e3),
            bytes,
            ratio
        );
    }
}

/// Runs one measurement in a fresh process; returns seconds of wall and
/// CPU time (churn) or bytes per task (idle).
fn child(mode: &str, what: &str, n: usize) -> (f64, f64) {
    let exe = std::env::current_exe().expect("exe");
    let out = Command::new(exe)
        .env("TASKSCOPE_BENCH_MODE", format!("{mode}:{what}"))
        .env("TASKSCOPE_BENCH_N", n.to_string())
        .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0")
        .output()
        .expect("run bench child");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let cpu = field("cpu=").unwrap_or(0.0);
    field("result=").map(|r| (r, cpu)).unwrap_or_else(|| {
        panic!(
            "{mode}:{what} gave no result: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn run(mode: &str, n: usize) {
    let (source, what) = mode.split_once(':').expect("mode:what");
    let at_start = rss();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let recorder = taskscope_agent::testing::Recorder::new();
    let traced = source == "traced";
    match source {
        "plain" | "plain+tracing" => {}
        "hooks" | "traced" => recorder.install(&mut builder),
        #[cfg(feature = "console")]
        "console" => console_subscriber::init(),
        // console-subscriber with the agent beside it (the span census
        // behind `/metrics`), as `taskscope_agent::init`.
        #[cfg(feature = "console")]
        "agent" => taskscope_agent::init(),
        "naive" => naive::install(&mut builder),
        "empty" => {
            builder
                .on_task_spawn(|_| {})
                .on_task_terminate(|_| {})
                .on_before_task_poll(|_| {})
                .on_after_task_poll(|_| {});
        }
        other => panic!("unknown mode {other}"),
    }
    let rt = builder.build().expect("runtime");
    match what {
        "churn" => {
            let cpu = cpu_time();
            let t = rt.block_on(churn(n, traced));
            println!("result={}", t.as_secs_f64());
            println!("cpu={}", cpu_time() - cpu);
            if recorder.live() > 0 {
                // A last task whose end is not yet published (its join
                // can be seen before its terminate hook returns).
                eprintln!("recorder holds {} live tasks", recorder.live());
            }
        }
        "idle" => {
            // RSS from the process's start, so that everything the agent
            // adds counts: its first table too (a warm-up read before
            // measuring once left it out, 17 B a task at 100 000).
            let keep = rt.block_on(idle(n, traced));
            let after = rss();
            println!(
                "result={}",
                (after.saturating_sub(at_start)) as f64 / n as f64
            );
            drop(keep);
        }
        other => panic!("unknown measurement {other}"),
    }
}

/// User and system CPU time of this process so far (every thread), in
/// seconds.
fn cpu_time() -> f64 {
    // SAFETY: `getrusage` writes into the zeroed struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage; RUSAGE_SELF always exists.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// Spawns `f` on `set`, wrapped for captures when `traced`.
fn spawn_on<F>(set: &mut tokio::task::JoinSet<()>, traced: bool, f: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if traced {
        set.spawn(taskscope_agent::traced(f));
    } else {
        set.spawn(f);
    }
}

async fn churn(n: usize, traced: bool) -> Duration {
    let t = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(2_000));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let permit = sem.clone().acquire_owned().await.expect("permit");
        spawn_on(&mut set, traced, async move {
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

/// Spawns `n` tasks that each sleep for an hour; returns them.
async fn idle(n: usize, traced: bool) -> tokio::task::JoinSet<()> {
    let mut handles = tokio::task::JoinSet::new();
    for _ in 0..n {
        spawn_on(
            &mut handles,
            traced,
            tokio::time::sleep(Duration::from_secs(3600)),
        );
    }
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

/// The straightforward structure, for comparison.
mod naive {
    use std::collections::HashMap;
    use std::panic::Location;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    struct Rec {
        _loc: &'static Location<'static>,
        created: Instant,
        polls: u64,
        busy_ns: u64,
        poll_start: Option<Instant>,
    }

    /// (file, line, column) → (spawned, terminated).
    type Sites = HashMap<(&'static str, u32, u32), (u64, u64)>;

    #[derive(Default)]
    struct Naive {
        tasks: Vec<Mutex<HashMap<tokio::task::Id, Rec>>>,
        sites: Vec<Mutex<Sites>>,
    }

    fn shard(id: tokio::task::Id) -> usize {
        use std::hash::BuildHasher;
        static KEYS: std::sync::LazyLock<std::collections::hash_map::RandomState> =
            std::sync::LazyLock::new(Default::default);
        KEYS.hash_one(id) as usize % 64
    }

    pub fn install(b: &mut tokio::runtime::Builder) {
        let n = Arc::new(Naive {
            tasks: (0..64).map(|_| Mutex::default()).collect(),
            sites: (0..16).map(|_| Mutex::default()).collect(),
        });
        let key = |l: &'static Location<'static>| (l.file(), l.line(), l.column());
        let s = n.clone();
        b.on_task_spawn(move |m| {
            let l = m.spawned_at();
            s.sites[l.line() as usize % 16]
                .lock()
                .unwrap()
                .entry(key(l))
                .or_default()
                .0 += 1;
            s.tasks[shard(m.id())].lock().unwrap().insert(
                m.id(),
                Rec {
                    _loc: l,
                    created: Instant::now(),
                    polls: 0,
                    busy_ns: 0,
                    poll_start: None,
                },
            );
        });
        let s = n.clone();
        b.on_task_terminate(move |m| {
            let l = m.spawned_at();
            if let Some(r) = s.tasks[shard(m.id())].lock().unwrap().remove(&m.id()) {
                let _ = r.created.elapsed();
            }
            s.sites[l.line() as usize % 16]
                .lock()
                .unwrap()
                .entry(key(l))
                .or_default()
                .1 += 1;
        });
        let s = n.clone();
        b.on_before_task_poll(move |m| {
            if let Some(r) = s.tasks[shard(m.id())].lock().unwrap().get_mut(&m.id()) {
                r.poll_start = Some(Instant::now());
            }
        });
        let s = n;
        b.on_after_task_poll(move |m| {
            if let Some(r) = s.tasks[shard(m.id())].lock().unwrap().get_mut(&m.id()) {
                r.polls += 1;
                if let Some(t) = r.poll_start.take() {
                    r.busy_ns += t.elapsed().as_nanos() as u64;
                }
            }
        });
    }
}
