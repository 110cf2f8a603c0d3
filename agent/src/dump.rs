//! Taking a dump: capture on the target's runtime, then resolve and clean
//! the frames on the agent's thread, deduplicating identical traces.

use crate::proto::{DumpReply, Leaf, TaskTrace, Trace};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Whether this build can take task dumps, and if not, why.
pub fn support() -> Result<(), &'static str> {
    #[cfg(taskdumps)]
    {
        Ok(())
    }
    #[cfg(not(taskdumps))]
    {
        Err(
            "task dumps need Linux on x86, x86_64, aarch64 or s390x and a build with --cfg tokio_unstable",
        )
    }
}

/// A capture not yet resolved to names.
pub struct Captured {
    #[cfg(taskdumps)]
    dump: tokio::runtime::Dump,
    capture: Duration,
    taken_unix_ns: i64,
}

/// Runnable tasks waiting in the workers' local queues. tokio's dump
/// moves them all into one queue of 256 slots and loops forever once that
/// is half full (`Shared::steal_all` in tokio 1.54, see tokio-rs/tokio#7478),
/// hanging the runtime; the agent dumps only while fewer are queued.
#[cfg(taskdumps)]
pub fn queued(handle: &tokio::runtime::Handle) -> usize {
    let m = handle.metrics();
    (0..m.num_workers())
        .map(|w| m.worker_local_queue_depth(w))
        .sum()
}

#[cfg(not(taskdumps))]
pub fn queued(_: &tokio::runtime::Handle) -> usize {
    0
}

/// Most runnable tasks queued at which a dump is still taken (see
/// [`queued`]); tokio hangs beyond 128.
pub const SAFE_QUEUED: usize = 32;

/// Captures `handle`'s tasks: the runtime's workers pause while each task
/// is polled once in tracing mode. Never cancel the returned future half
/// way (see `Agent::dump`).
///
/// A `current_thread` runtime can only be dumped from inside itself (from
/// outside, tokio returns an empty dump without a word), so there the
/// capture runs as a task of that runtime; the capturing task, being the
/// one running, is left out of its own dump. A runtime that never gets
/// to run that task times the capture out, with a reason.
#[cfg(taskdumps)]
pub async fn capture(handle: &tokio::runtime::Handle) -> Result<Captured, String> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let taken_unix_ns = unix_now_ns();
    let t = Instant::now();
    let dump = match handle.runtime_flavor() {
        RuntimeFlavor::CurrentThread => handle
            .spawn(async { Handle::current().dump().await })
            .await
            .map_err(|e| format!("the capture task on the current_thread runtime failed: {e}"))?,
        _ => handle.dump().await,
    };
    Ok(Captured {
        dump,
        capture: t.elapsed(),
        taken_unix_ns,
    })
}

#[cfg(not(taskdumps))]
pub async fn capture(_: &tokio::runtime::Handle) -> Result<Captured, String> {
    Ok(Captured {
        capture: Duration::ZERO,
        taken_unix_ns: unix_now_ns(),
    })
}

/// Resolves and cleans the frames (CPU work: run it off any runtime
/// worker), deduplicating identical traces.
pub fn resolve(c: Captured) -> DumpReply {
    let t = Instant::now();
    #[cfg(taskdumps)]
    let tasks: Vec<(u64, Vec<Vec<String>>)> = c
        .dump
        .tasks()
        .iter()
        .map(|task| {
            let id = task.id().to_string().parse::<u64>().unwrap_or(0);
            let leaves = task
                .trace()
                .resolve_backtraces()
                .iter()
                .map(|bt| {
                    let names: Vec<String> = bt
                        .frames()
                        .flat_map(|f| f.symbols())
                        .filter_map(|s| {
                            let name = s.name_demangled()?;
                            Some(frame(
                                name,
                                s.filename().and_then(|f| f.to_str()),
                                s.lineno(),
                            ))
                        })
                        .collect();
                    clean(&names)
                })
                .collect();
            (id, leaves)
        })
        .collect();
    #[cfg(not(taskdumps))]
    let tasks = Vec::new();
    build(tasks, c.capture, t.elapsed(), c.taken_unix_ns)
}

impl Captured {
    /// When the capture began and ended.
    pub fn window(&self) -> crate::proto::DumpWindow {
        crate::proto::DumpWindow {
            start_unix_ns: self.taken_unix_ns,
            end_unix_ns: self
                .taken_unix_ns
                .saturating_add(self.capture.as_nanos() as i64),
        }
    }
}

/// Deduplicates traces and builds the reply.
pub fn build(
    tasks: Vec<(u64, Vec<Vec<String>>)>,
    capture: Duration,
    resolve: Duration,
    taken_unix_ns: i64,
) -> DumpReply {
    let mut index: HashMap<Trace, u32> = HashMap::new();
    let mut traces = Vec::new();
    let mut out = Vec::with_capacity(tasks.len());
    for (id, leaves) in tasks {
        let trace = Trace {
            leaves: leaves.into_iter().map(|frames| Leaf { frames }).collect(),
        };
        let i = *index.entry(trace).or_insert_with_key(|t| {
            traces.push(t.clone());
            (traces.len() - 1) as u32
        });
        out.push(TaskTrace { id, trace: i });
    }
    DumpReply {
        traces,
        tasks: out,
        capture_ns: capture.as_nanos() as u64,
        resolve_ns: resolve.as_nanos() as u64,
        taken_unix_ns,
    }
}

/// Keeps the frames that say what the task is doing: from the outermost
/// `poll` of the task's future down to the tokio leaf, without the tracing
/// machinery below the leaf and the scheduler above the task, and without
/// symbol hashes. `names` is innermost first, as backtraces are.
pub fn clean(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = names.iter().map(|n| strip_hash(n)).collect();
    out.reverse();
    out
}

/// One frame as sent: `name (file:line)`. Release builds name inlined
/// frames without their module path (`poll_elapsed`), so the source file
/// is what says which type a frame belongs to. Files inside the cargo
/// registry or the standard library keep only the part from the crate's
/// directory on (`tokio-1.54.1/src/time/sleep.rs`).
pub fn frame(name: &str, file: Option<&str>, line: Option<u32>) -> String {
    let name = strip_hash(name);
    let Some(file) = file else { return name };
    let file = short_path(file);
    match line {
        Some(l) => format!("{name} ({file}:{l})"),
        None => format!("{name} ({file})"),
    }
}

fn short_path(file: &str) -> &str {
    // …/.cargo/registry/src/index.crates.io-…/tokio-1.54.1/src/… → tokio-1.54.1/src/…
    if let Some(i) = file.find("/registry/src/") {
        let rest = &file[i + "/registry/src/".len()..];
        return rest.split_once('/').map_or(rest, |(_, r)| r);
    }
    // …/.cargo/git/checkouts/tokio-…/abc123/tokio/src/… → tokio/src/…
    if let Some(i) = file.find("/git/checkouts/") {
        let rest = &file[i + "/git/checkouts/".len()..];
        let mut parts = rest.splitn(3, '/');
        let (_, _, r) = (parts.next(), parts.next(), parts.next());
        return r.unwrap_or(rest);
    }
    // /rustc/<hash>/library/core/… → library/core/…
    if let Some(i) = file.find("/library/") {
        return &file[i + 1..];
    }
    file
}

/// `foo::bar::h0123456789abcdef` → `foo::bar`.
fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, tail)) if tail.len() == 16 && tail.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head.to_string()
        }
        _ => name.to_string(),
    }
}

fn unix_now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_traces_are_sent_once() {
        let read = vec![vec![
            "a::f".to_string(),
            "tokio::net::X::poll_read".to_string(),
        ]];
        let sleep = vec![vec![
            "a::g".to_string(),
            "tokio::time::sleep::Sleep::poll".to_string(),
        ]];
        let r = build(
            vec![(1, read.clone()), (2, sleep), (3, read)],
            Duration::from_millis(2),
            Duration::from_millis(5),
            7,
        );
        assert_eq!(r.traces.len(), 2);
        assert_eq!(
            r.tasks.iter().map(|t| (t.id, t.trace)).collect::<Vec<_>>(),
            vec![(1, 0), (2, 1), (3, 0)]
        );
        assert_eq!(
            (r.capture_ns, r.resolve_ns, r.taken_unix_ns),
            (2_000_000, 5_000_000, 7)
        );
    }

    #[test]
    fn frames_carry_their_source_file() {
        assert_eq!(
            frame(
                "poll_elapsed",
                Some(
                    "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/sleep.rs"
                ),
                Some(420)
            ),
            "poll_elapsed (tokio-1.54.1/src/time/sleep.rs:420)"
        );
        assert_eq!(
            frame(
                "poll",
                Some("/rustc/abc/library/core/src/future/mod.rs"),
                None
            ),
            "poll (library/core/src/future/mod.rs)"
        );
        assert_eq!(
            frame("app::f::hfedcba9876543210", Some("src/server.rs"), Some(9)),
            "app::f (src/server.rs:9)"
        );
        assert_eq!(frame("f", None, Some(1)), "f");
    }

    #[test]
    fn frames_lose_their_hashes_and_run_outermost_first() {
        let names = vec![
            "tokio::sync::notify::Notified::poll_notified::h0123456789abcdef".to_string(),
            "app::main::{{closure}}::hfedcba9876543210".to_string(),
        ];
        assert_eq!(
            clean(&names),
            vec![
                "app::main::{{closure}}",
                "tokio::sync::notify::Notified::poll_notified"
            ]
        );
        assert_eq!(strip_hash("a::hello"), "a::hello");
    }

    #[test]
    fn an_agent_without_a_runtime_says_why_it_cannot_dump() {
        let agent = crate::Agent::new();
        let why = agent.ready().expect_err("no runtime attached");
        assert!(why.contains("runtime") || why.contains("Linux"), "{why}");
    }
}
