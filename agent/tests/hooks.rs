//! The hooks recorder on real tokio runtimes: exact counts per spawn
//! location, spawn ancestry, tasks in a poll, terminations, pages.

use crate::common::wait_until;
use std::panic::Location;
use std::time::Duration;
use taskscope_agent::testing::Recorder;

/// How long a condition the tests wait on may take on a loaded machine.
const WITHIN: Duration = Duration::from_secs(20);

fn runtime(recorder: &Recorder) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(2).enable_all();
    recorder.install(&mut b);
    b.build().expect("runtime")
}

fn group<'a>(
    a: &'a taskscope_agent::testing::Aggregate,
    loc: &Location<'static>,
) -> Option<&'a taskscope_agent::testing::Group> {
    a.groups.iter().find(|g| g.site.location == loc)
}

/// A group's counters: what the tests wait on, and what a timeout prints.
#[derive(Debug)]
struct Counts {
    live: u64,
    running: u64,
    idle: u64,
    spawned: u64,
    terminated: u64,
    longest_poll: Duration,
    /// Ended tasks, by lifetime bucket.
    lifetimes: Vec<u64>,
}

fn counts(recorder: &Recorder, loc: &Location<'static>) -> Option<Counts> {
    let a = recorder.groups();
    let g = group(&a, loc)?;
    Some(Counts {
        live: g.live,
        running: g.running,
        idle: g.idle,
        spawned: g.spawned,
        terminated: g.terminated,
        longest_poll: Duration::from_nanos(g.longest_poll_ns),
        lifetimes: g.lifetimes.to_vec(),
    })
}

/// `tokio::spawn`, and the location tokio records for it: both are the
/// caller's (`#[track_caller]` passes it through).
#[track_caller]
fn spawn_here<F>(
    f: F,
) -> (
    tokio::task::JoinHandle<F::Output>,
    &'static Location<'static>,
)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    (tokio::spawn(f), Location::caller())
}

#[test]
fn counts_ancestry_and_terminations_are_exact() {
    let recorder = Recorder::new();
    let rt = runtime(&recorder);
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let (parent_at, child_at) = rt.block_on(async move {
        let child_at = std::sync::Arc::new(std::sync::Mutex::new(None));
        let c = child_at.clone();
        let (parent, parent_at) = spawn_here(async move {
            for i in 0..100 {
                let mut rx = release_rx.clone();
                let (h, at) = spawn_here(async move {
                    // Half end when released; half wait forever.
                    if i % 2 == 0 {
                        let _ = rx.wait_for(|r| *r).await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                });
                *c.lock().unwrap() = Some(at);
                drop(h);
            }
        });
        parent.await.expect("parent");
        let child_at = child_at.lock().unwrap().expect("spawned");
        (parent_at, child_at)
    });
    assert!(parent_at.line() < child_at.line());
    // A child is idle once its first poll has ended.
    wait_until(
        "the hundred children to be idle",
        WITHIN,
        || counts(&recorder, child_at),
        |c| c.as_ref().is_some_and(|c| c.idle == 100),
    );
    let a = recorder.groups();
    let children: Vec<_> = a.groups.iter().filter(|g| g.live == 100).collect();
    assert_eq!(children.len(), 1, "one location holds the hundred");
    let g = children[0];
    assert_eq!((g.spawned, g.terminated), (100, 0));
    assert_eq!(g.idle, 100);
    assert_eq!(g.parents.len(), 1, "one spawning location");
    let (ploc, n) = g.parents.iter().next().expect("parent");
    assert_eq!(*n, 100);
    assert_eq!(ploc.file(), file!());
    assert!(
        ploc.line() < g.site.location.line(),
        "the parent was spawned above"
    );
    assert_eq!(g.ages.iter().sum::<u64>(), 100);
    assert_eq!(g.site.location, child_at);
    assert_eq!(*ploc, parent_at);
    let loc = g.site.location;
    // Pages: all hundred, in id order, 30 at a time.
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let p = recorder.tasks(
            (loc.file(), loc.line(), loc.column()),
            false,
            None,
            after,
            30,
        );
        seen.extend(p.tasks.iter().map(|t| t.id));
        assert!(
            p.tasks
                .iter()
                .all(|t| t.parent != 0 && t.parent_location.is_some())
        );
        match p.next {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(seen.len(), 100);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    // Release half: fifty end.
    release_tx.send_replace(true);
    let c = wait_until(
        "fifty children to end",
        WITHIN,
        || counts(&recorder, loc),
        // A reading walks the live tasks before it sums the ended ones:
        // one taken while tasks end can see both sides of an ending.
        |c| {
            c.as_ref()
                .is_some_and(|c| c.terminated >= 50 && c.live <= 50)
        },
    )
    .expect("group");
    assert_eq!((c.live, c.spawned, c.terminated), (50, 100, 50));
    // The ended ones by lifetime, in the age buckets.
    assert_eq!(c.lifetimes.iter().sum::<u64>(), 50);
    drop(rt);
}

#[test]
fn a_task_inside_a_long_poll_is_running() {
    let recorder = Recorder::new();
    let rt = runtime(&recorder);
    let (release, released) = std::sync::mpsc::channel::<()>();
    let at = rt.block_on(async {
        let (_, at) = spawn_here(async move {
            // A blocking call on a worker: one poll that lasts until the
            // test lets it end.
            let _ = released.recv();
        });
        at
    });
    // The poll under way counts, before it ends.
    let long = Duration::from_millis(300);
    let c = wait_until(
        "a poll of 300 ms under way",
        WITHIN,
        || counts(&recorder, at),
        |c| c.as_ref().is_some_and(|c| c.longest_poll >= long),
    )
    .expect("group");
    assert_eq!((c.live, c.running, c.idle), (1, 1, 0), "{c:?}");
    release.send(()).expect("the task waits");
    let c = wait_until(
        "the task to end",
        WITHIN,
        || counts(&recorder, at),
        |c| c.as_ref().is_some_and(|c| c.terminated == 1),
    )
    .expect("group");
    assert_eq!((c.live, c.running, c.spawned), (0, 0, 1), "{c:?}");
    let a = recorder.groups();
    let g = group(&a, at).expect("group");
    assert!(g.lifetime_ns >= long.as_nanos() as u64, "{}", g.lifetime_ns);
}

#[test]
fn the_history_keeps_each_second_s_totals() {
    let recorder = Recorder::new();
    let rt = runtime(&recorder);
    rt.block_on(async {
        for _ in 0..5 {
            tokio::spawn(async {}).await.expect("join");
        }
    });
    // The terminate hook runs just after the output is handed over.
    wait_until(
        "the five tasks to be gone",
        WITHIN,
        || recorder.live(),
        |live| *live == 0,
    );
    recorder.sample();
    recorder.sample();
    let h = recorder.history();
    let (_, samples) = h
        .iter()
        .find(|(s, _)| s.location.file() == file!())
        .expect("the test's spawn site");
    assert_eq!(samples.len(), 2);
    assert_eq!((samples[1].spawned, samples[1].terminated), (5, 5));
}
