//! Reading a task's async stack from a capture: what it waits on, and a
//! one-line label for grouping tasks with the same stack.

use super::reason::Reason;
use crate::model::{Frame, Trace};

/// What the stack shows the task waiting on. With several leaves (under
/// `select!`/`join!`), the first one that is not a timer wins: a read
/// raced against a sleep is a read with a timeout.
pub fn reason(trace: &Trace) -> Reason {
    primary_leaf(trace).map_or(Reason::NotTokio, |i| leaf_reason(&trace.leaves[i]))
}

/// The leaf that tells what the task waits on (see [`reason`]): where a
/// one-stack view (a pprof sample) should point. Leaves rank by what
/// really stops the task: a real wait first, then a watch on whether the
/// other side gave up (a task racing a socket read against its caller's
/// `oneshot::Sender::poll_closed`, as hyper's client connection does, is
/// reading), then timers (a read raced against a sleep is a read with a
/// timeout); the first leaf of the best rank wins.
pub fn primary_leaf(trace: &Trace) -> Option<usize> {
    let rank = |leaf: &[Frame]| {
        if is_cancellation_watch(leaf) {
            1
        } else if matches!(leaf_reason(leaf), Reason::Sleep | Reason::Interval) {
            2
        } else {
            0
        }
    };
    (0..trace.leaves.len()).min_by_key(|&i| (rank(&trace.leaves[i]), i))
}

/// A leaf that only watches whether the other side is still there: a
/// oneshot or mpsc `Sender::closed` / `poll_closed`, hyper's
/// `poll_canceled`, a `CancellationToken`'s `cancelled()`. Such a watch
/// is raced against the real work; alone, it is still a wait (on the
/// caller giving up), classified by the primitive under it.
fn is_cancellation_watch(leaf: &[Frame]) -> bool {
    leaf.iter()
        .any(|f| taskscope_proto::names::is_cancellation_watch(&f.name, f.file.as_deref()))
}

/// Rules over a leaf's frames, most specific first: the tokio module a
/// frame belongs to (from its source file, or its path in debug builds),
/// and words its function name may hold. High-level operations come before
/// the I/O registration they use (an `accept` also waits for read
/// readiness; an mpsc send also acquires a semaphore).
const RULES: &[(&str, &[&str], Reason)] = &[
    ("tokio/net/", &["accept"], Reason::Accept),
    // A listener's only wait is an accept (release builds name its async
    // fn `{async_fn#0}`).
    ("tokio/net/tcp/listener", &[], Reason::Accept),
    ("tokio/net/unix/listener", &[], Reason::Accept),
    // Signals and processes are built on channels and `watch`.
    ("tokio/signal", &[], Reason::Signal),
    ("tokio/process", &[], Reason::Process),
    ("tokio/sync/mpsc/", &["recv"], Reason::ChannelRecv),
    (
        "tokio/sync/mpsc/",
        &["send", "reserve"],
        Reason::ChannelSend,
    ),
    // `watch` is built on `Notify`: a frame in watch.rs says which.
    ("tokio/sync/watch", &[], Reason::Watch),
    ("tokio/sync/notify", &[], Reason::Notify),
    ("tokio/sync/broadcast", &[], Reason::Broadcast),
    ("tokio/sync/oneshot", &[], Reason::Oneshot),
    ("tokio/sync/mutex", &[], Reason::Mutex),
    ("tokio/sync/rwlock", &[], Reason::RwLock),
    ("tokio/sync/barrier", &[], Reason::Barrier),
    ("tokio/sync/semaphore", &[], Reason::Semaphore),
    ("tokio/sync/batch_semaphore", &[], Reason::Semaphore),
    ("tokio/runtime/task/join", &[], Reason::JoinHandle),
    ("tokio/task/join_set", &[], Reason::JoinHandle),
    ("tokio/time/interval", &[], Reason::Interval),
    ("tokio/time/sleep", &[], Reason::Sleep),
    (
        "tokio/runtime/io/registration",
        &["read"],
        Reason::SocketRead,
    ),
    (
        "tokio/runtime/io/registration",
        &["write"],
        Reason::SocketWrite,
    ),
    ("tokio/net/", &["read", "recv", "peek"], Reason::SocketRead),
    (
        "tokio/net/",
        &["write", "writable", "flush", "send", "shutdown"],
        Reason::SocketWrite,
    ),
    // A readiness wait tokio does not trace, captured where it registered
    // its waker (`ScheduledIo::poll_readiness`), outside `tokio/net`
    // (`AsyncFd`).
    (
        "tokio/runtime/io/",
        &["read", "recv", "peek"],
        Reason::SocketRead,
    ),
    ("tokio/runtime/io/", &["writ", "send"], Reason::SocketWrite),
    ("tokio/io/async_fd", &["read"], Reason::SocketRead),
    ("tokio/io/async_fd", &["writ"], Reason::SocketWrite),
];

/// A frame as the rules see it: its tokio module (`tokio/time/sleep`, or
/// empty outside tokio), its function name without generics, and its name
/// as sent (release builds name an inlined async fn `{async_fn#0}`, and
/// only the generic arguments of the frames around it still say which:
/// `…::accept::{async_fn#0}::{closure_env#0}>`).
struct Key {
    module: String,
    name: String,
    raw: String,
}

impl Key {
    /// Whether the function's name holds `word`, or a path in its generic
    /// arguments names a function starting with it (`::recv`).
    fn says(&self, word: &str) -> bool {
        self.name.contains(word) || self.raw.contains(&format!("::{word}"))
    }
}

fn key(frame: &Frame) -> Key {
    let name = plain_name(&frame.name);
    let module = match frame.file.as_deref() {
        Some(f) => tokio_module(f).unwrap_or_default(),
        None if name.starts_with("tokio::") => name
            .split("::")
            .take_while(|seg| seg.starts_with(|c: char| c.is_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join("/"),
        None => String::new(),
    };
    Key {
        module,
        name,
        raw: frame.name.clone(),
    }
}

/// `tokio-1.54.1/src/time/sleep.rs` → `tokio/time/sleep`.
fn tokio_module(file: &str) -> Option<String> {
    let (krate, rest) = file.split_once("/src/")?;
    let krate = krate.rsplit('/').next()?;
    let is_tokio = krate == "tokio"
        || krate
            .strip_prefix("tokio-")
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
    if !is_tokio {
        return None;
    }
    let rest = rest.strip_suffix(".rs").unwrap_or(rest);
    let rest = rest.strip_suffix("/mod").unwrap_or(rest);
    Some(format!("tokio/{rest}"))
}

fn leaf_reason(frames: &[Frame]) -> Reason {
    if frames.is_empty() {
        return Reason::NotTokio;
    }
    refine(tokio_reason(frames), frames)
}

/// What the HTTP and gRPC libraries a leaf passes through make of its
/// tokio wait: a caller awaiting a reqwest, hyper or tonic call awaits a
/// response (whatever channel carries it); a server connection reading
/// its socket waits for a request, a client connection for its server.
fn refine(base: Reason, frames: &[Frame]) -> Reason {
    let lib = |krate: &str, path: &str| frames.iter().any(|f| in_library(f, krate, path));
    let named = |word: &str| frames.iter().any(|f| f.name.contains(word));
    if lib("reqwest", "src/") {
        return Reason::ReqwestResponse;
    }
    if lib("tonic", "src/client/") {
        return Reason::GrpcResponse;
    }
    let server = named("dispatch::Server")
        || lib("hyper", "src/server/")
        || lib("hyper", "src/proto/h2/server.rs")
        || lib("hyper-util", "src/server/")
        || lib("h2", "src/server.rs");
    let client_conn = named("dispatch::Client")
        || lib("hyper", "src/proto/h2/client.rs")
        || lib("h2", "src/client.rs")
        || named("client::conn::http1::Connection")
        || named("client::conn::http2::Connection");
    match base {
        Reason::SocketRead if server => Reason::RequestRead,
        Reason::SocketRead if client_conn => Reason::ResponseRead,
        Reason::Oneshot
            if lib("hyper-util", "src/client/legacy/")
                || lib("hyper", "src/client/conn/")
                || named("ResponseFuture")
                || named("SendRequest") =>
        {
            Reason::HyperResponse
        }
        other => other,
    }
}

/// Whether `frame` is in crate `krate`, under `path` (`src/client/`): by
/// its file (`hyper-1.12.0/src/client/…`), or in debug builds without one,
/// by its name's path (`hyper::client::…`).
fn in_library(frame: &Frame, krate: &str, path: &str) -> bool {
    match frame.file.as_deref() {
        Some(file) => {
            let Some((dir, rest)) = file.split_once("/src/") else {
                return false;
            };
            let dir = dir.rsplit('/').next().unwrap_or(dir);
            let same = dir == krate
                || dir
                    .strip_prefix(krate)
                    .and_then(|v| v.strip_prefix('-'))
                    .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()));
            same && format!("src/{rest}").starts_with(path)
        }
        None => {
            let name = plain_name(&frame.name);
            let name = name.trim_start_matches('<');
            let module = format!(
                "{}::{}",
                krate.replace('-', "_"),
                path.trim_start_matches("src/")
                    .trim_end_matches(".rs")
                    .trim_end_matches('/')
                    .replace('/', "::")
            );
            name.starts_with(module.trim_end_matches("::"))
        }
    }
}

/// The tokio wait a leaf's frames show.
fn tokio_reason(frames: &[Frame]) -> Reason {
    let keys: Vec<Key> = frames.iter().map(key).collect();
    // A bounded channel's send (or reserve) waits for a permit of the
    // channel's semaphore; a receive never does. Builds whose debug info is
    // line tables only (release profiles, most services) name the async
    // fns of `mpsc/bounded.rs` `{async_fn#0}`: the files say it.
    let in_module = |m: &str| keys.iter().any(|k| k.module.starts_with(m));
    if in_module("tokio/sync/mpsc/") && in_module("tokio/sync/batch_semaphore") {
        return Reason::ChannelSend;
    }
    for (module, words, reason) in RULES {
        let hit = keys.iter().any(|k| {
            k.module.starts_with(module) && (words.is_empty() || words.iter().any(|w| k.says(w)))
        });
        if hit {
            return *reason;
        }
    }
    if keys.iter().any(|k| !k.module.is_empty()) {
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
                None => frames.first(),
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

/// A frame outside the task's own code: tokio, the standard library, a
/// dependency from the cargo registry.
fn is_library(frame: &Frame) -> bool {
    if let Some(f) = frame.file.as_deref() {
        // Registry crates arrive as `name-1.2.3/src/…` (see the agent).
        let first = f.split('/').next().unwrap_or("");
        let versioned = first
            .rsplit_once('-')
            .is_some_and(|(_, v)| v.starts_with(|c: char| c.is_ascii_digit()));
        return tokio_module(f).is_some() || f.starts_with("library/") || versioned;
    }
    let n = frame.name.trim_start_matches('<');
    [
        "tokio::", "core::", "std::", "alloc::", "futures", "&mut ", "&",
    ]
    .iter()
    .any(|p| n.starts_with(p))
}

/// The name without generic arguments; `<T as Trait>::m` becomes `T::m`.
fn plain_name(name: &str) -> String {
    taskscope_proto::names::plain(name)
}

/// A frame for people: `<tokio::io::util::read::Read<R> as Future>::poll`
/// → `Read::poll`; `app::server::handle::{{closure}}` →
/// `server::handle::{closure}`. A bare name (release builds name inlined
/// frames so) gets its file: `poll_elapsed [time/sleep.rs:420]`.
pub fn short(frame: &Frame) -> String {
    let plain = plain_name(&frame.name);
    let parts: Vec<&str> = plain.split("::").collect();
    // Keep the last segments that name something (not closures).
    let named = parts.iter().rposition(|p| !p.starts_with('{')).unwrap_or(0);
    let start = named.saturating_sub(1);
    let short = parts[start..].join("::");
    if parts.len() > 1 {
        return short;
    }
    match &frame.file {
        Some(file) => {
            // The last two path components: `time/sleep.rs:420`.
            let mut comps: Vec<&str> = file.rsplit('/').take(2).collect();
            comps.reverse();
            match frame.line {
                Some(line) => format!("{short} [{}:{line}]", comps.join("/")),
                None => format!("{short} [{}]", comps.join("/")),
            }
        }
        None => short,
    }
}

/// A frame's function with its module, without generics, for tools that
/// show one name per function (pprof): `poll<u64>` in
/// `tokio-1.54.1/src/sync/oneshot.rs` → `tokio::sync::oneshot::poll`
/// (`taskscope_proto::names::qualified`, which the agent's profiles use
/// too).
pub fn qualified(frame: &Frame) -> String {
    taskscope_proto::names::qualified(&frame.name, frame.file.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_carry_their_module() {
        assert_eq!(
            qualified(&frame("poll<u64> (tokio-1.54.1/src/sync/oneshot.rs:1284)")),
            "tokio::sync::oneshot::poll"
        );
        assert_eq!(
            qualified(&frame("poll (library/core/src/future/mod.rs:9)")),
            "core::future::poll"
        );
        assert_eq!(
            qualified(&frame("{closure#0} (src/demo/target.rs:12)")),
            "demo::target::{closure#0}"
        );
        assert_eq!(
            qualified(&frame("app::server::handle::{{closure}} (src/server.rs:3)")),
            "app::server::handle::{closure}"
        );
        assert_eq!(qualified(&Frame::from("bare")), "bare");
    }

    /// A frame written as a backtrace prints it: `name (file:line)`.
    fn frame(text: &str) -> Frame {
        let Some((name, loc)) = text.strip_suffix(')').and_then(|f| f.rsplit_once(" (")) else {
            return Frame::from(text);
        };
        let (file, line) = match loc.rsplit_once(':') {
            Some((f, l)) => (f, l.parse().ok()),
            None => (loc, None),
        };
        Frame {
            name: name.into(),
            file: Some(file.into()),
            line,
        }
    }

    fn trace(leaves: &[&[&str]]) -> Trace {
        Trace {
            leaves: leaves
                .iter()
                .map(|l| l.iter().map(|s| frame(s)).collect())
                .collect(),
        }
    }

    // Frames as tokio 1.54.1 resolves them in a real capture (x86_64 Linux).
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

    // The same waits as a release build names them: bare inlined names,
    // with their source files.
    fn release(frames: &[&str]) -> Trace {
        trace(&[frames])
    }

    #[test]
    fn processes_signals_and_udp_read_as_themselves_in_release_builds() {
        let t = "tokio-1.54.1/src";
        let process = [
            "app::{async_block#0} (src/main.rs:9)".to_string(),
            format!("{{async_fn#0}} ({t}/process/mod.rs:1130)"),
            format!("poll ({t}/process/unix/mod.rs:242)"),
        ];
        let refs: Vec<&str> = process.iter().map(String::as_str).collect();
        assert_eq!(reason(&release(&refs)), Reason::Process);
        // A signal's receiver is a `watch` underneath: the signal wins.
        let signal = [
            "app::{async_block#1} (src/main.rs:12)".to_string(),
            format!("{{async_fn#0}} ({t}/signal/unix.rs:427)"),
            format!("{{async_fn#0}}<()> ({t}/sync/watch.rs:1017)"),
        ];
        let refs: Vec<&str> = signal.iter().map(String::as_str).collect();
        assert_eq!(reason(&release(&refs)), Reason::Signal);
        // A UDP receive registers its waker through `async_io`, whose
        // generic arguments say which call made it.
        let udp = [
            "app::{async_block#2} (src/main.rs:15)".to_string(),
            format!("{{async_fn#0}} ({t}/net/udp.rs:1332)"),
            format!(
                "{{async_fn#0}}<usize, tokio::net::udp::{{impl#0}}::recv_from::{{async_fn#0}}::{{closure_env#0}}> ({t}/runtime/io/registration.rs:231)"
            ),
            format!("poll ({t}/runtime/io/scheduled_io.rs:539)"),
            "clone (library/core/src/task/wake.rs:619)".to_string(),
        ];
        let refs: Vec<&str> = udp.iter().map(String::as_str).collect();
        assert_eq!(reason(&release(&refs)), Reason::SocketRead);
    }

    #[test]
    fn release_frames_are_read_by_their_files() {
        let t = "tokio-1.54.1/src";
        let read = [
            format!("poll_read_priv ({t}/net/tcp/stream.rs:1300)"),
            format!("poll_read<mio::net::tcp::stream::TcpStream> ({t}/io/poll_evented.rs:170)"),
            format!("poll_read_ready ({t}/runtime/io/registration.rs:120)"),
            format!("poll_ready ({t}/runtime/io/registration.rs:160)"),
        ];
        let refs: Vec<&str> = read.iter().map(String::as_str).collect();
        assert_eq!(reason(&release(&refs)), Reason::SocketRead);
        let cases = [
            (
                "recv<u64, tokio::sync::mpsc::bounded::Semaphore> (tokio-1.54.1/src/sync/mpsc/chan.rs:300)",
                Reason::ChannelRecv,
            ),
            (
                "poll_elapsed (tokio-1.54.1/src/time/sleep.rs:420)",
                Reason::Sleep,
            ),
            (
                "poll_notified (tokio-1.54.1/src/sync/notify.rs:900)",
                Reason::Notify,
            ),
            (
                "poll<()> (tokio-1.54.1/src/runtime/task/join.rs:320)",
                Reason::JoinHandle,
            ),
            (
                "poll_tick (tokio-1.54.1/src/time/interval.rs:470)",
                Reason::Interval,
            ),
            ("{async_fn#0} (src/server.rs:88)", Reason::NotTokio),
        ];
        for (frame, want) in cases {
            assert_eq!(reason(&release(&[frame])), want, "{frame}");
        }
        // A send into a full bounded channel, as the demo's producers
        // resolve with line tables only: no `send` in any name.
        let send = [
            "{async_block#0} (src/demo/target.rs:201)",
            "{async_fn#0}<u64> (tokio-1.54.1/src/sync/mpsc/bounded.rs:817)",
            "{async_fn#0}<u64> (tokio-1.54.1/src/sync/mpsc/bounded.rs:1117)",
            "{async_fn#0}<u64> (tokio-1.54.1/src/sync/mpsc/bounded.rs:1302)",
            "poll (tokio-1.54.1/src/sync/batch_semaphore.rs:642)",
        ];
        assert_eq!(reason(&release(&send)), Reason::ChannelSend);
        // A semaphore of the service's own stays one.
        let own = [
            "{async_fn#0} (tokio-1.54.1/src/sync/semaphore.rs:600)",
            "poll (tokio-1.54.1/src/sync/batch_semaphore.rs:642)",
        ];
        assert_eq!(reason(&release(&own)), Reason::Semaphore);
        // A future from another crate that mentions tokio in its generics.
        let other = "poll<tokio::time::sleep::Sleep> (futures-util-0.3.31/src/future/select.rs:10)";
        assert_eq!(reason(&release(&[other])), Reason::NotTokio);
        assert_eq!(
            label(&release(&[
                "{async_fn#0} (src/server.rs:88)",
                "poll_elapsed (tokio-1.54.1/src/time/sleep.rs:420)"
            ])),
            "{async_fn#0} [src/server.rs:88] → poll_elapsed [time/sleep.rs:420]"
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
