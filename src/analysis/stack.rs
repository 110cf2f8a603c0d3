//! Reading a task's async stack from a task dump: what it waits on, and a
//! one-line label for grouping tasks with the same stack.

use super::blocked::Reason;
use crate::model::Trace;

/// What the stack shows the task waiting on. With several leaves (under
/// `select!`/`join!`), the first one that is not a timer wins: a read
/// raced against a sleep is a read with a timeout.
pub fn reason(trace: &Trace) -> Reason {
    let reasons: Vec<Reason> = trace.leaves.iter().map(|l| leaf_reason(l)).collect();
    reasons
        .iter()
        .copied()
        .find(|r| !matches!(r, Reason::Sleep | Reason::Interval))
        .or_else(|| reasons.first().copied())
        .unwrap_or(Reason::NotTokio)
}

/// Patterns over a leaf's frames, most specific first. High-level
/// operations come before the I/O registration they use (an `accept` also
/// waits for read readiness; an mpsc send also acquires a semaphore).
const RULES: &[(&[&str], Reason)] = &[
    (&["Listener::accept"], Reason::Accept),
    (&["Listener::poll_accept"], Reason::Accept),
    (&["tokio::sync::mpsc::", "recv"], Reason::ChannelRecv),
    (&["tokio::sync::mpsc::", "send"], Reason::ChannelSend),
    (&["tokio::sync::mpsc::", "reserve"], Reason::ChannelSend),
    (&["tokio::sync::notify::"], Reason::Notify),
    (&["tokio::sync::watch::"], Reason::Watch),
    (&["tokio::sync::broadcast::"], Reason::Broadcast),
    (&["tokio::sync::oneshot::"], Reason::Oneshot),
    (&["tokio::sync::mutex::"], Reason::Mutex),
    (&["tokio::sync::rwlock"], Reason::RwLock),
    (&["tokio::sync::barrier::"], Reason::Barrier),
    (&["tokio::sync::semaphore::"], Reason::Semaphore),
    (&["tokio::sync::batch_semaphore::"], Reason::Semaphore),
    (
        &["tokio::runtime::task::join::JoinHandle"],
        Reason::JoinHandle,
    ),
    (&["tokio::task::join_set::JoinSet"], Reason::JoinHandle),
    (&["tokio::time::interval::Interval"], Reason::Interval),
    (&["tokio::time::sleep::Sleep"], Reason::Sleep),
    (&["poll_read_ready"], Reason::SocketRead),
    (&["tokio::net::", "read"], Reason::SocketRead),
    (&["tokio::net::", "recv"], Reason::SocketRead),
    (&["tokio::net::", "peek"], Reason::SocketRead),
    (&["poll_write_ready"], Reason::SocketWrite),
    (&["tokio::net::", "write"], Reason::SocketWrite),
    (&["tokio::net::", "flush"], Reason::SocketWrite),
    (&["tokio::net::", "send"], Reason::SocketWrite),
];

fn leaf_reason(frames: &[String]) -> Reason {
    if frames.is_empty() {
        return Reason::NotTokio;
    }
    for (needles, reason) in RULES {
        if frames.iter().any(|f| needles.iter().all(|n| f.contains(n))) {
            return *reason;
        }
    }
    if frames.iter().any(|f| f.contains("tokio::")) {
        Reason::OtherLeaf
    } else {
        Reason::NotTokio
    }
}

/// One line for a stack: the task's innermost own frame, then the first
/// tokio frame below it, e.g. `server::handle::{closure} → Read::poll`.
/// Leaves are joined with ` | `.
pub fn label(trace: &Trace) -> String {
    if trace.leaves.is_empty() {
        return "(no tokio leaf)".into();
    }
    trace
        .leaves
        .iter()
        .map(|frames| {
            let own = frames.iter().rposition(|f| !is_library(f));
            let own_name = own.map(|i| short(&frames[i]));
            let lib = match own {
                Some(i) => frames.get(i + 1),
                None => frames.last(),
            };
            match (own_name, lib) {
                (Some(o), Some(l)) => format!("{o} → {}", short(l)),
                (Some(o), None) => o,
                (None, Some(l)) => short(l),
                (None, None) => "?".into(),
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn is_library(frame: &str) -> bool {
    let f = frame.trim_start_matches('<');
    [
        "tokio::", "core::", "std::", "alloc::", "futures", "&mut ", "&",
    ]
    .iter()
    .any(|p| f.starts_with(p))
}

/// `<tokio::io::util::read::Read<R> as core::future::future::Future>::poll`
/// → `Read::poll`; `app::server::handle::{{closure}}` →
/// `server::handle::{closure}`.
pub fn short(frame: &str) -> String {
    let mut s = frame.to_string();
    // `<T as Trait>::m` → `T::m`
    if let Some(rest) = s.strip_prefix('<')
        && let Some((ty, _)) = rest.split_once(" as ")
        && let Some((_, method)) = rest.rsplit_once(">::")
    {
        s = format!("{ty}::{method}");
    }
    // Drop generic arguments.
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    for c in s.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.replace("{{closure}}", "{closure}");
    let parts: Vec<&str> = out.split("::").collect();
    // Keep the last segments that name something (not closures).
    let named = parts.iter().rposition(|p| !p.starts_with('{')).unwrap_or(0);
    let start = named.saturating_sub(1);
    parts[start..].join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(leaves: &[&[&str]]) -> Trace {
        Trace {
            leaves: leaves
                .iter()
                .map(|l| l.iter().map(|s| s.to_string()).collect())
                .collect(),
        }
    }

    // Frames as tokio 1.54.1 resolves them in a real dump (x86_64 Linux).
    const READ: &[&str] = &[
        "app::main::{{closure}}::{{closure}}",
        "<tokio::io::util::read::Read<R> as core::future::future::Future>::poll",
        "<&mut T as tokio::io::async_read::AsyncRead>::poll_read",
        "tokio::net::tcp::stream::TcpStream::poll_read_priv",
        "tokio::io::poll_evented::PollEvented<E>::poll_read",
        "tokio::runtime::io::registration::Registration::poll_read_ready",
        "tokio::runtime::io::registration::Registration::poll_ready",
    ];
    const RECV: &[&str] = &[
        "app::main::{{closure}}::{{closure}}",
        "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}",
        "<core::future::poll_fn::PollFn<F> as core::future::future::Future>::poll",
        "tokio::sync::mpsc::chan::Rx<T,S>::recv",
    ];
    const SLEEP: &[&str] = &[
        "app::main::{{closure}}::{{closure}}",
        "<tokio::time::sleep::Sleep as core::future::future::Future>::poll",
        "tokio::time::sleep::Sleep::poll_elapsed",
    ];

    #[test]
    fn leaves_map_to_reasons() {
        assert_eq!(reason(&trace(&[READ])), Reason::SocketRead);
        assert_eq!(reason(&trace(&[RECV])), Reason::ChannelRecv);
        assert_eq!(reason(&trace(&[SLEEP])), Reason::Sleep);
        let join = [
            "app::f::{{closure}}",
            "<tokio::runtime::task::join::JoinHandle<T> as core::future::future::Future>::poll",
        ];
        assert_eq!(reason(&trace(&[&join])), Reason::JoinHandle);
        let notify = [
            "app::f",
            "<tokio::sync::notify::Notified as core::future::future::Future>::poll",
        ];
        assert_eq!(reason(&trace(&[&notify])), Reason::Notify);
        let accept = [
            "app::serve::{{closure}}",
            "tokio::net::tcp::listener::TcpListener::accept::{{closure}}",
            "tokio::runtime::io::registration::Registration::async_io::{{closure}}",
            "tokio::runtime::io::registration::Registration::poll_read_ready",
        ];
        assert_eq!(reason(&trace(&[&accept])), Reason::Accept);
        assert_eq!(reason(&trace(&[])), Reason::NotTokio);
        assert_eq!(reason(&trace(&[&["app::f"]])), Reason::NotTokio);
        assert_eq!(
            reason(&trace(&[&["app::f", "tokio::fs::File::poll_read_inner"]])),
            Reason::OtherLeaf
        );
    }

    #[test]
    fn a_read_raced_against_a_sleep_is_a_read() {
        assert_eq!(reason(&trace(&[SLEEP, READ])), Reason::SocketRead);
    }

    #[test]
    fn labels_name_the_own_frame_and_the_tokio_call() {
        assert_eq!(
            label(&trace(&[READ])),
            "app::main::{closure}::{closure} → Read::poll"
        );
        assert_eq!(
            label(&trace(&[RECV])),
            "app::main::{closure}::{closure} → Receiver::recv::{closure}"
        );
        assert_eq!(label(&trace(&[])), "(no tokio leaf)");
    }
}
