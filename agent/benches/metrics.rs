//! What `GET /metrics` and `GET /debug/pprof/tasks` cost the target: one
//! scrape's time, response size and allocations, over real HTTP on the
//! agent's port, with 10 000, 100 000 and 1 000 000 live tasks on the hooks source
//! (every eighth spawned with `taskscope_agent::spawn`, so the profile has
//! captured stacks; its scrapes ask a round of captures, as Alloy's do);
//! the access check per request; and the encoding alone for
//! 10 000 spawn locations (the exporter fed synthetic per-location counts:
//! a program does not have 10 000 spawn sites to build here), with and
//! without the default cap of 1 000 locations. `cargo bench -p
//! taskscope-agent --bench metrics`; `-- --quick` is the CI smoke run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use taskscope_agent::Agent;
use taskscope_agent::testing::{AgentHealth, Exporter, SiteStat};

/// Counts every byte allocated, on every thread.
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The agent's token in the runs with live tasks: every request presents
/// it, so the profile carries stacks and the check is on every path.
const TOKEN: &str = "a-token-of-thirty-two-characters";

/// One `GET path` over HTTP/1.0, presenting the token: the body's size.
fn get(addr: &str, path: &str) -> usize {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let body = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| out.len() - p - 4);
    assert!(body > 0, "an empty scrape");
    body
}

/// Resident set size in bytes (Linux `/proc/self/statm`).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `n` idle tasks over eight spawn sites, scraped `rounds` times.
#[cfg(tokio_unstable)]
fn live_tasks(n: usize, rounds: usize) {
    let agent = Agent::builder()
        .token(TOKEN)
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .build()
        .unwrap();
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    agent.install_hooks(&mut b);
    let rt = b.build().unwrap();
    let addr = agent.serve().expect("serve").to_string();
    let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let rss_before = rss();
    let spawning = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let mut rx = tx.subscribe();
            let wait = async move {
                let _ = rx.recv().await;
            };
            // Eight call sites: eight locations; one whose tasks can be
            // captured.
            match i % 8 {
                0 => drop(taskscope_agent::spawn(wait)),
                1 => drop(tokio::spawn(wait)),
                2 => drop(tokio::spawn(wait)),
                3 => drop(tokio::spawn(wait)),
                4 => drop(tokio::spawn(wait)),
                5 => drop(tokio::spawn(wait)),
                6 => drop(tokio::spawn(wait)),
                _ => drop(tokio::spawn(wait)),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    println!(
        "{n:>9} live tasks: spawned and first polled in {:.0} ms; RSS +{:.0} B a task (task, its broadcast receiver, the agent's record)",
        (spawning.elapsed().as_secs_f64() - 0.2) * 1e3,
        rss().saturating_sub(rss_before) as f64 / n as f64
    );
    for (what, path) in [
        ("/metrics", "/metrics"),
        ("profile", "/debug/pprof/tasks"),
        ("profile, held only", "/debug/pprof/tasks?capture=0"),
    ] {
        get(&addr, path);
        let mut times = Vec::new();
        let mut bytes = Vec::new();
        let mut size = 0;
        for _ in 0..rounds {
            let before = ALLOCATED.load(Ordering::Relaxed);
            let t = Instant::now();
            size = get(&addr, path);
            times.push(t.elapsed().as_secs_f64());
            bytes.push((ALLOCATED.load(Ordering::Relaxed) - before) as f64);
        }
        let t = median(times);
        println!(
            "{:>9} live tasks, 8 locations, {what:<18}: {:>7.1} ms, {:>6} B response, {:>9.0} B allocated; every 15 s: {:.3} % of one core",
            n,
            t * 1e3,
            size,
            median(bytes),
            t / 15.0 * 100.0
        );
    }
    info_round_trips(&addr, n);
    drop(tx);
}

/// gRPC `Info` calls one after another on one HTTP/2 connection: the
/// whole per-request path (connection bounds, access check, the generated
/// server), with the token and with a wrong one (refused before the
/// method runs).
#[cfg(tokio_unstable)]
fn info_round_trips(addr: &str, n: usize) {
    use taskscope_agent::proto::{InfoRequest, task_dumps_client::TaskDumpsClient};
    const CALLS: usize = 2000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .expect("connect");
        let mut client = TaskDumpsClient::new(channel);
        for (what, auth) in [
            ("the token", format!("Bearer {TOKEN}")),
            ("a wrong token", "Bearer a-token-of-thirty-two-characterX".to_string()),
        ] {
            let mut times = Vec::with_capacity(CALLS);
            for _ in 0..CALLS {
                let mut req = tonic::Request::new(InfoRequest {});
                req.metadata_mut()
                    .insert("authorization", auth.parse().unwrap());
                let t = Instant::now();
                let _ = std::hint::black_box(client.info(req).await);
                times.push(t.elapsed().as_secs_f64());
            }
            println!(
                "{n:>9} live tasks, gRPC Info with {what:<13}: {:>6.1} µs per request (median of {CALLS}, over loopback)",
                median(times) * 1e6
            );
        }
    });
}

/// The access check every inspection request passes: the token compared
/// in constant time with what the request presents.
fn access_check(rounds: usize) {
    use taskscope_agent::testing::{Policy, Token};
    let policy = Policy {
        token: Some(Token::new("a-token-of-thirty-two-characters").unwrap()),
        local: false,
    };
    let right = b"Bearer a-token-of-thirty-two-characters".to_vec();
    // Same length, wrong last byte: the whole comparison runs.
    let wrong = b"Bearer a-token-of-thirty-two-characterX".to_vec();
    const N: u32 = 1_000_000;
    for (what, header) in [("the token", &right), ("a wrong token", &wrong)] {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            let mut admitted = 0u32;
            for _ in 0..N {
                admitted += u32::from(
                    policy
                        .inspect(Some(std::hint::black_box(header.as_slice())))
                        .is_ok(),
                );
            }
            std::hint::black_box(admitted);
            times.push(t.elapsed().as_secs_f64() / f64::from(N));
        }
        println!(
            "access check, {what:<13}: {:>6.1} ns per request",
            median(times) * 1e9
        );
    }
}

#[cfg(not(tokio_unstable))]
fn live_tasks(_: usize, _: usize) {
    println!("the hooks source needs --cfg tokio_unstable");
}

fn locations(n: usize, cap: usize, rounds: usize) {
    let stats: Vec<SiteStat> = (0..n)
        .map(|i| SiteStat {
            location: format!(
                "src/module_{}/handler_{}.rs:{}:{}",
                i / 100,
                i % 100,
                10 + i % 900,
                5
            ),
            live: (i % 50) as u64,
            running: 0,
            spawned: 1000 + i as u64,
            terminated: 1000 + i as u64 - (i % 50) as u64,
            busy_ns: 1_000_000 * i as u64,
            oldest_age_ns: 60_000_000_000,
        })
        .collect();
    let ex = Exporter::new(cap);
    ex.render(stats.clone(), AgentHealth::default(), false);
    let mut times = Vec::new();
    let mut bytes = Vec::new();
    let mut size = 0;
    for _ in 0..rounds {
        let s = stats.clone();
        let before = ALLOCATED.load(Ordering::Relaxed);
        let t = Instant::now();
        let (out, _) = ex.render(s, AgentHealth::default(), false);
        times.push(t.elapsed().as_secs_f64());
        bytes.push((ALLOCATED.load(Ordering::Relaxed) - before) as f64);
        size = out.len();
    }
    println!(
        "{n:>9} locations, cap {cap:>6}: encode {:>7.1} ms, {:>8} B response, {:>9.0} B allocated",
        median(times) * 1e3,
        size,
        median(bytes)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 7 };
    access_check(rounds);
    locations(10_000, 1_000, rounds);
    locations(10_000, 10_000, rounds);
    live_tasks(10_000, rounds);
    live_tasks(100_000, rounds);
    if !quick {
        live_tasks(1_000_000, rounds);
    }
}
