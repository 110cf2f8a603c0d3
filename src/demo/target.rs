//! The built-in leaky demo target: a real tokio service instrumented with
//! console-subscriber, reproducing the leaks from Go incident write-ups
//! (transposed to tokio), each spawned from its own line, beside a healthy
//! workload that must never be flagged.
//!
//! Each spawn site is preceded by a `// spawn: NAME` comment line, so tests
//! can find its exact `file:line` without hard-coding line numbers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

pub use super::launch::run;
pub use super::options::{DemoSource, Options, Scenario};
use super::traced::Builder;

/// Starts every scenario `opts` asks for, then parks.
pub(super) async fn workloads(opts: Options) -> anyhow::Result<()> {
    let every = opts.leak_every.max(Duration::from_millis(1));
    let max = opts.max_per_leak;
    for s in &opts.scenarios {
        match s {
            Scenario::IdleConn => idle_connections(every, max).await?,
            Scenario::FullChannel => full_channel(every, max),
            Scenario::Sleepers => sleepers(every, max),
            Scenario::Oneshot => oneshot_waiters(every, max),
            Scenario::Healthy => healthy(opts.healthy_rate.max(1)),
            Scenario::MutexWait => mutex_waiters(every, max),
            Scenario::Busy => busy(),
            Scenario::Recv => receivers(every, max),
            Scenario::Notify => notified(every, max),
            Scenario::Join => joiners(every, max),
            Scenario::LostWaker => lost_wakers(every, max),
            Scenario::Lints => lint_probes(),
            Scenario::LoopSleepers => loop_sleepers(every, max, opts.loop_sleep),
            Scenario::Hostile => hostile(),
            Scenario::Churn => churn(opts.churn_rate.max(1)),
            Scenario::Idle => idle(opts.idle_tasks, opts.idle_rate.max(1)),
            Scenario::Heartbeat => heartbeat(),
            Scenario::SlowLeaks => super::leaks::slow_leaks(every, max),
            Scenario::AxumIdle => super::web::axum_idle(every, max).await?,
            Scenario::GrpcStreams => super::web::grpc_streams(every, max).await?,
            Scenario::HttpNoTimeout => super::web::http_no_timeout(every, max).await?,
        }
    }
    park().await;
    Ok(())
}

/// Leak 1: a server with no read timeout; every idle connection keeps one
/// task blocked on read.
async fn idle_connections(every: Duration, max: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Builder::new()
        .name("accept-loop")
        .spawn(accept_loop(listener))?;
    Builder::new()
        .name("idle-client")
        .spawn(idle_client(addr, every, max))?;
    Ok(())
}

async fn accept_loop(listener: TcpListener) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        // spawn: idle-conn (the next `.spawn(` is the spawn location)
        let _ = Builder::new().name("conn-handler").spawn(handle_conn(sock));
    }
}

async fn handle_conn(mut sock: TcpStream) {
    let mut buf = [0u8; 1024];
    // No timeout: a client that never sends keeps this task forever.
    while let Ok(n) = sock.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn idle_client(addr: SocketAddr, every: Duration, max: usize) {
    let mut open = Vec::new();
    let mut tick = tokio::time::interval(every);
    while open.len() < max {
        tick.tick().await;
        if let Ok(s) = TcpStream::connect(addr).await {
            open.push(s);
        }
    }
    park().await;
}

/// Leak 2: producers blocked forever on a full channel whose receiver is
/// alive but never drained.
fn full_channel(every: Duration, max: usize) {
    let (tx, rx) = mpsc::channel::<u64>(4);
    std::mem::forget(rx);
    let _ = Builder::new().name("producer-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for i in 0..(max as u64 + 4) {
            tick.tick().await;
            let tx = tx.clone();
            // spawn: full-channel (the next `.spawn(` is the spawn location)
            let _ = Builder::new()
                .name("producer")
                .spawn(async move { tx.send(i).await });
        }
    });
}

/// Leak 3: worker loops with no exit path, sleeping between rounds forever.
fn sleepers(every: Duration, max: usize) {
    let _ = Builder::new().name("worker-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            // spawn: sleepers (the next `.spawn(` is the spawn location)
            let _ = Builder::new().name("stale-worker").spawn(stale_worker());
        }
    });
}

async fn stale_worker() {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Leak 4: requests waiting on a oneshot reply whose sender is kept but
/// never used.
fn oneshot_waiters(every: Duration, max: usize) {
    let senders: Arc<Mutex<Vec<oneshot::Sender<u64>>>> = Arc::default();
    let _ = Builder::new().name("request-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            let (tx, rx) = oneshot::channel::<u64>();
            if let Ok(mut v) = senders.lock() {
                v.push(tx);
            }
            // spawn: oneshot (the next `.spawn(` is the spawn location)
            let _ = Builder::new().name("await-reply").spawn(rx);
        }
        // Keep the senders: the replies never come, and never fail either.
        park().await;
    });
}

/// The healthy workload: requests that finish, and a fixed worker pool.
fn healthy(rate: u32) {
    const POOL: usize = 4;
    let mut pool_tx = Vec::new();
    for w in 0..POOL {
        let (tx, mut rx) = mpsc::channel::<u64>(64);
        pool_tx.push(tx);
        // spawn: pool-worker (the next `.spawn(` is the spawn location)
        let _ = Builder::new()
            .name(&format!("pool-worker-{w}"))
            .spawn(async move {
                while let Some(job) = rx.recv().await {
                    std::hint::black_box(job.wrapping_mul(31));
                }
            });
    }
    let _ = Builder::new().name("request-source").spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            n = n.wrapping_add(1);
            // 40–290 ms of simulated work, then done.
            let work = Duration::from_millis(40 + (n.wrapping_mul(7919) % 250));
            // spawn: healthy-request (the next `.spawn(` is the spawn location)
            let _ = Builder::new().name("request").spawn(async move {
                tokio::time::sleep(work).await;
            });
            let _ = pool_tx[(n as usize) % POOL].try_send(n);
        }
    });
}

/// Probe: tasks queued on a Mutex that one task holds forever.
fn mutex_waiters(every: Duration, max: usize) {
    let lock = Arc::new(tokio::sync::Mutex::new(0u64));
    let _ = Builder::new().name("mutex-spawner").spawn(async move {
        let guard = lock.clone().lock_owned().await;
        let _hold = guard;
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            let lock = lock.clone();
            // spawn: mutex-wait (the next `.spawn(` is the spawn location)
            let _ = Builder::new()
                .name("lock-waiter")
                .spawn(async move { *lock.lock().await += 1 });
        }
        park().await;
    });
}

/// Probe: a CPU-busy task.
fn busy() {
    // spawn: busy (the next `.spawn(` is the spawn location)
    let _ = Builder::new().name("busy-loop").spawn(async {
        let mut x: u64 = 1;
        loop {
            let until = std::time::Instant::now() + Duration::from_micros(300);
            while std::time::Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            tokio::task::yield_now().await;
        }
    });
}

/// Probe: tasks waiting to receive on channels whose senders stay idle.
fn receivers(every: Duration, max: usize) {
    let _ = Builder::new().name("receiver-spawner").spawn(async move {
        let mut keep = Vec::new();
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            let (tx, mut rx) = mpsc::channel::<u64>(8);
            keep.push(tx);
            // spawn: recv (the next `.spawn(` is the spawn location)
            let _ = Builder::new()
                .name("receiver")
                .spawn(async move { rx.recv().await });
        }
        park().await;
    });
}

/// Probe: tasks waiting on a `Notify` nobody signals.
fn notified(every: Duration, max: usize) {
    let _ = Builder::new().name("notify-spawner").spawn(async move {
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            let n = notify.clone();
            // spawn: notify (the next `.spawn(` is the spawn location)
            let _ = Builder::new()
                .name("notified")
                .spawn(async move { n.notified().await });
        }
        park().await;
    });
}

/// Probe: what tokio-console warns about. Futures that hold a buffer
/// across an await are as large as the buffer.
fn lint_probes() {
    async fn holding<const N: usize>() {
        let buf = [7u8; N];
        park().await;
        std::hint::black_box(&buf);
    }
    for _ in 0..3 {
        // spawn: large-future (the next `.spawn(` is the spawn location)
        let _ = Builder::new().name("large").spawn(holding::<1536>());
    }
    for _ in 0..2 {
        // spawn: boxed-future (the next `.spawn(` is the spawn location)
        let _ = Builder::new().name("boxed").spawn(holding::<65536>());
    }
    // spawn: self-waker (the next `.spawn(` is the spawn location)
    let _ = Builder::new().name("self-waker").spawn(async {
        loop {
            // Three wakes of its own (inside its poll) per timer wake.
            for _ in 0..3 {
                let mut woke = false;
                std::future::poll_fn(|cx| {
                    if woke {
                        return std::task::Poll::Ready(());
                    }
                    woke = true;
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                })
                .await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // spawn: never-yields (the next `.spawn(` is the spawn location)
    let _ = Builder::new().name("never-yields").spawn(async {
        tokio::task::yield_now().await;
        // Blocks its worker thread for good: a poll that never ends.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    });
}

/// Probe: worker loops sleeping `round` per round (3 s unless
/// `--loop-sleep`), forever.
fn loop_sleepers(every: Duration, max: usize, round: Duration) {
    let _ = Builder::new().name("loop-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max.min(40) {
            tick.tick().await;
            // spawn: loop-sleepers (the next `.spawn(` is the spawn location)
            let _ = Builder::new().name("looper").spawn(async move {
                loop {
                    tokio::time::sleep(round).await;
                }
            });
        }
        park().await;
    });
}

/// A spawner's rest once it has spawned its tasks: parked with a waker
/// (on a `Notify` nobody signals). A bare `std::future::pending()` would
/// hold none: a lost waker, which taskscope flags as a leak, as
/// tokio-console warns. Not a timer either: a `Sleep` created as the
/// spawner's last tasks first run could be linked to one of them by time.
async fn park() {
    tokio::sync::Notify::new().notified().await;
}

/// Probe: tasks whose future drops its waker and returns `Pending` (a
/// hand-written future that forgot to register): never woken again.
fn lost_wakers(every: Duration, max: usize) {
    let _ = Builder::new().name("lost-waker-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max.min(3) {
            tick.tick().await;
            // Spawned unwrapped: console-subscriber counts the waker the
            // agent holds for a wrapped task it has not captured yet, and
            // this probe is about the count of the task's own (zero).
            // spawn: lost-waker (the next `.spawn(` is the spawn location)
            let _ = tokio::task::Builder::new()
                .name("forgotten")
                .spawn(
                    async move { std::future::poll_fn(|_| std::task::Poll::<()>::Pending).await },
                );
        }
        park().await;
    });
}

/// Probe: tasks awaiting another task's `JoinHandle` (which sleeps).
fn joiners(every: Duration, max: usize) {
    let _ = Builder::new().name("join-spawner").spawn(async move {
        let mut tick = tokio::time::interval(every);
        for _ in 0..max {
            tick.tick().await;
            let Ok(inner) = Builder::new()
                .name("joined")
                .spawn(tokio::time::sleep(Duration::from_secs(86_400)))
            else {
                continue;
            };
            // spawn: join (the next `.spawn(` is the spawn location)
            let _ = Builder::new().name("joiner").spawn(inner);
        }
        park().await;
    });
}

/// Names a hostile target could send: markup, terminal escapes (a title
/// change, colors, an OSC 8 link), control characters, and 100 KB.
pub const HOSTILE_NAMES: [&str; 4] = [
    "<script>alert('taskscope')</script>",
    "\u{1b}]0;pwned\u{7}\u{1b}[31mred\u{1b}]8;;http://evil.example/\u{1b}\\link\u{1b}]8;;\u{1b}\\",
    "line one\nline two\r\u{0}|pipe|`tick`",
    "",
];

/// Probe: idle tasks with hostile names and fields.
fn hostile() {
    let long = "A".repeat(100 * 1024);
    for name in HOSTILE_NAMES {
        let name = if name.is_empty() { long.as_str() } else { name };
        // spawn: hostile (the next `.spawn(` is the spawn location)
        let _ = Builder::new()
            .name(name)
            .spawn(std::future::pending::<()>());
    }
}

/// Soak load: `rate` tasks a second that finish at once, in batches every 10 ms.
fn churn(rate: u32) {
    let _ = Builder::new().name("churn-source").spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let per_tick = (rate / 100).max(1);
        loop {
            tick.tick().await;
            for _ in 0..per_tick {
                // spawn: churn (the next `.spawn(` is the spawn location)
                let _ = Builder::new().name("churn").spawn(tokio::task::yield_now());
            }
        }
    });
}

/// Scale load: `total` tasks sleeping for an hour, from ten spawn sites,
/// spawned in batches every 10 ms at `rate` a second.
/// The service's heartbeat (see `Scenario::Heartbeat`).
fn heartbeat() {
    let _ = Builder::new().name("heartbeat").spawn(async {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = std::time::Instant::now();
        let mut second = last;
        let mut longest = Duration::ZERO;
        loop {
            tick.tick().await;
            let now = std::time::Instant::now();
            longest = longest.max(now - last);
            last = now;
            if now - second >= Duration::from_secs(1) {
                eprintln!("heartbeat_gap_ms={:.1}", longest.as_secs_f64() * 1e3);
                second = now;
                longest = Duration::ZERO;
            }
        }
    });
}

fn idle(total: usize, rate: u32) {
    let _ = Builder::new().name("idle-source").spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let per_tick = (rate as usize / 100).max(1);
        let mut n = 0usize;
        while n < total {
            tick.tick().await;
            for _ in 0..per_tick.min(total - n) {
                let nap = tokio::time::sleep(Duration::from_secs(3600));
                // Ten distinct spawn locations, as a service would have.
                let _ = match n % 10 {
                    0 => Builder::new().name("idle-0").spawn(nap),
                    1 => Builder::new().name("idle-1").spawn(nap),
                    2 => Builder::new().name("idle-2").spawn(nap),
                    3 => Builder::new().name("idle-3").spawn(nap),
                    4 => Builder::new().name("idle-4").spawn(nap),
                    5 => Builder::new().name("idle-5").spawn(nap),
                    6 => Builder::new().name("idle-6").spawn(nap),
                    7 => Builder::new().name("idle-7").spawn(nap),
                    8 => Builder::new().name("idle-8").spawn(nap),
                    _ => Builder::new().name("idle-9").spawn(nap),
                };
                n += 1;
            }
        }
    });
}
