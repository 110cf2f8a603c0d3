//! Taking a dump: capture on the target's runtime, then resolve and clean
//! the frames on the agent's thread, deduplicating identical traces.

use crate::proto::{DumpReply, Frame, Leaf, TaskTrace, Trace};
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
    let tasks: Vec<(u64, Vec<Vec<Frame>>)> = c
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
                    let frames: Vec<Frame> = bt
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
                    clean(frames)
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
    tasks: Vec<(u64, Vec<Vec<Frame>>)>,
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
        out.push(TaskTrace {
            id,
            trace: i,
            location: 0,
        });
    }
    DumpReply {
        traces,
        tasks: out,
        capture_ns: capture.as_nanos() as u64,
        resolve_ns: resolve.as_nanos() as u64,
        taken_unix_ns,
        locations: Vec::new(),
    }
}

/// Puts the frames outermost first: from the outermost `poll` of the
/// task's future down to the tokio leaf. `frames` is innermost first, as
/// backtraces are.
pub fn clean(mut frames: Vec<Frame>) -> Vec<Frame> {
    frames.reverse();
    frames
}

/// One frame as sent, without its symbol hash. Release builds name inlined
/// frames without their module path (`poll_elapsed`), so the source file
/// is what says which type a frame belongs to. Files inside the cargo
/// registry or the standard library keep only the part from the crate's
/// directory on (`tokio-1.54.1/src/time/sleep.rs`).
pub fn frame(name: &str, file: Option<&str>, line: Option<u32>) -> Frame {
    Frame {
        name: strip_hash(name),
        file: file.map(short_path).unwrap_or_default().to_string(),
        line: line.unwrap_or(0),
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
        let f = |name: &str| frame(name, None, None);
        let read = vec![vec![f("a::f"), f("tokio::net::X::poll_read")]];
        let sleep = vec![vec![f("a::g"), f("tokio::time::sleep::Sleep::poll")]];
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

    fn sent(f: Frame) -> (String, String, u32) {
        (f.name, f.file, f.line)
    }

    #[test]
    fn frames_carry_their_source_file() {
        assert_eq!(
            sent(frame(
                "poll_elapsed",
                Some(
                    "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.54.1/src/time/sleep.rs"
                ),
                Some(420)
            )),
            (
                "poll_elapsed".into(),
                "tokio-1.54.1/src/time/sleep.rs".into(),
                420
            )
        );
        assert_eq!(
            sent(frame(
                "poll",
                Some("/rustc/abc/library/core/src/future/mod.rs"),
                None
            )),
            ("poll".into(), "library/core/src/future/mod.rs".into(), 0)
        );
        assert_eq!(
            sent(frame(
                "app::f::hfedcba9876543210",
                Some("src/server.rs"),
                Some(9)
            )),
            ("app::f".into(), "src/server.rs".into(), 9)
        );
        assert_eq!(sent(frame("f", None, Some(1))), ("f".into(), "".into(), 1));
    }

    #[test]
    fn frames_lose_their_hashes_and_run_outermost_first() {
        let frames = vec![
            frame(
                "tokio::sync::notify::Notified::poll_notified::h0123456789abcdef",
                None,
                None,
            ),
            frame("app::main::{{closure}}::hfedcba9876543210", None, None),
        ];
        let names: Vec<String> = clean(frames).into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
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
