//! What the leak check costs a test suite, and how long it takes to name
//! a leak.
//!
//! - **per test**: one test that leaks nothing (its body spawns 8 tasks and
//!   joins them), as `#[tokio::test]` runs it (`plain`: a new
//!   `current_thread` runtime, `block_on`, drop), as
//!   `#[taskscope_test::test]` does (`check`: the same runtime with the
//!   hooks, then `verify`), and as `#[taskscope_test::test(shared)]` does
//!   (`shared`: the body as a task of the shared runtime, then the check of
//!   its descendants); median and 90th percentile of 1 000 runs, the modes
//!   interleaved, each test on a thread of its own as libtest runs them.
//! - **suite**: 1 000 such tests on as many threads as libtest would use
//!   (one per core), wall time per mode.
//! - **naming a leak**: a test that leaves one sleeper spawned with
//!   `taskscope_agent::spawn`, until `verify` returns the report: with the
//!   default grace period (1 s) and with none (the naming alone: a round of
//!   captures and the symbols), the first in the process (symbols loaded
//!   then) and the next ones.
//! - **memory**: the process's RSS growth over the 1 000 checked tests
//!   (each runtime's recorder keeps its spawn sites for the process's life).
//!
//! Run `cargo bench -p taskscope-test --bench check` (release, line
//! tables), or with `--profile dev` for the profile `cargo test` builds
//! tests in; `-- --quick` runs 100 tests.

use std::time::{Duration, Instant};
use taskscope_test::Check;

async fn body() {
    let hs: Vec<_> = (0..8)
        .map(|_| tokio::spawn(tokio::task::yield_now()))
        .collect();
    for h in hs {
        let _ = h.await;
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Check,
    Shared,
}

const MODES: [(Mode, &str); 3] = [
    (Mode::Plain, "plain (#[tokio::test])"),
    (Mode::Check, "check (#[taskscope_test::test])"),
    (Mode::Shared, "shared (#[taskscope_test::test(shared)])"),
];

fn one(mode: Mode) {
    match mode {
        Mode::Plain => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(body());
        }
        Mode::Check => {
            let check = Check::new();
            let rt = check.runtime_current_thread().expect("runtime");
            rt.block_on(body());
            check.verify(&rt).expect("no leak");
        }
        Mode::Shared => Check::new().run_shared(body()).expect("no leak"),
    }
}

/// One test on a thread of its own, as libtest runs each test (its
/// thread-locals fresh): the test's own time.
fn timed(mode: Mode) -> Duration {
    std::thread::spawn(move || {
        let t = Instant::now();
        one(mode);
        t.elapsed()
    })
    .join()
    .expect("the test ran")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100 } else { 1000 };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Warm up: the shared runtime, the first runtimes' threads.
    for (m, _) in MODES {
        for _ in 0..10 {
            one(m);
        }
    }

    println!("per test ({n} runs each, interleaved; body: spawn 8 tasks, join them)");
    let rss0 = rss_kib();
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); MODES.len()];
    for _ in 0..n {
        for (i, (m, _)) in MODES.iter().enumerate() {
            times[i].push(timed(*m));
        }
    }
    let base = {
        let mut t = times[0].clone();
        t.sort();
        pct(&t, 50)
    };
    for (i, (_, name)) in MODES.iter().enumerate() {
        let mut t = times[i].clone();
        t.sort();
        let med = pct(&t, 50);
        println!(
            "  {name:<42} median {:>8}  p90 {:>8}  (+{} over plain)",
            us(med),
            us(pct(&t, 90)),
            us(med.saturating_sub(base))
        );
    }
    // Where a checked test's time goes.
    let plain_build = {
        let mut t: Vec<Duration> = (0..n)
            .map(|_| {
                let t = Instant::now();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let d = t.elapsed();
                drop(rt);
                d
            })
            .collect();
        t.sort();
        pct(&t, 50)
    };
    let (mut build, mut run, mut verify, mut end) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        std::thread::scope(|s| {
            s.spawn(|| {
                let t = Instant::now();
                let check = Check::new();
                let rt = check.runtime_current_thread().expect("runtime");
                build.push(t.elapsed());
                let t = Instant::now();
                rt.block_on(body());
                run.push(t.elapsed());
                let t = Instant::now();
                check.verify(&rt).expect("no leak");
                verify.push(t.elapsed());
                let t = Instant::now();
                drop((rt, check));
                end.push(t.elapsed());
            });
        });
    }
    for v in [&mut build, &mut run, &mut verify, &mut end] {
        v.sort();
    }
    println!(
        "  of a checked test (medians): runtime with the hooks built in {} (plain: {}), body {}, verify {}, runtime and agent dropped in {}",
        us(pct(&build, 50)),
        us(plain_build),
        us(pct(&run, 50)),
        us(pct(&verify, 50)),
        us(pct(&end, 50))
    );
    let rss1 = rss_kib();
    println!(
        "  RSS over these {} tests: +{} KiB",
        n * (MODES.len() + 1),
        rss1.saturating_sub(rss0)
    );

    println!("suite: {n} tests on {threads} threads (libtest's default here)");
    for (m, name) in MODES {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                        // A thread per test, as libtest's.
                        std::thread::scope(|t| {
                            t.spawn(|| one(m));
                        });
                    }
                });
            }
        });
        println!("  {name:<42} {:>8.0} ms", t.elapsed().as_secs_f64() * 1e3);
    }

    println!("naming a leak (one sleeper spawned with taskscope_agent::spawn)");
    let (zero, full) = if quick { (2, 1) } else { (4, 2) };
    for (grace, rounds) in [
        (Duration::ZERO, zero),
        (taskscope_test::DEFAULT_GRACE, full),
    ] {
        let mut seen = Vec::new();
        for _ in 0..rounds {
            let check = Check::new().grace(grace);
            let rt = check.runtime_current_thread().expect("runtime");
            rt.block_on(async {
                taskscope_agent::spawn(tokio::time::sleep(Duration::from_secs(3600)));
            });
            let t = Instant::now();
            let leaks = check.verify(&rt).expect_err("a leak");
            seen.push(t.elapsed());
            assert!(leaks.to_string().contains("sleeping (captured)"), "{leaks}");
        }
        let list: Vec<String> = seen.iter().map(|d| us(*d)).collect();
        println!("  grace {grace:?}: {}", list.join(", "));
    }
}
