//! From a suspect to its fix: the likely cause and the fix, in the user's
//! own stack, from what the group waits on, where it was spawned and what
//! its stacks pass through, the way the Go write-ups we started from end
//! (no read timeout on the server, no timeout on the client call, a
//! channel nobody drains, a loop with no exit).
//!
//! A rule speaks only when the evidence fits it: the group is a suspect,
//! most of its tasks share one wait, and that wait is known (captured,
//! tracked by console data, or inferred from the place's captured tasks or
//! a library's known shape), never `untracked`, `not captured yet` or `out
//! of reach`. Otherwise nothing is said rather than a guess.

use super::reason::Reason;
use super::sites::{self, KnownSite};
use super::types::{Advice, Group, percent};
use crate::model::Frame;

/// Share of a group's live tasks the main wait must hold for a rule to
/// speak.
const MIN_SHARE: u32 = 60;

/// The advice for a suspect group, when a rule fits its evidence.
pub fn advise(g: &Group) -> Option<Advice> {
    g.suspect.as_ref()?;
    let main = g.main_reason()?;
    if percent(main.tasks, g.live.max(1)) < MIN_SHARE {
        return None;
    }
    let e = Evidence {
        reason: main.reason,
        site: sites::known(&g.location),
        frames: g
            .stacks
            .iter()
            .flat_map(|s| s.trace.leaves.iter().flatten())
            .collect(),
    };
    rule(&e).map(|(cause, fix)| Advice { cause, fix })
}

/// What a rule looks at.
struct Evidence<'a> {
    reason: Reason,
    site: Option<KnownSite>,
    /// Every frame of the group's captured stacks.
    frames: Vec<&'a Frame>,
}

impl Evidence<'_> {
    /// Whether a captured frame is in `krate` (`tonic`, `h2`), by its file
    /// (`tonic-0.14.5/src/…`) or its path (`tonic` and two colons).
    fn passes(&self, krate: &str) -> bool {
        let under = krate.replace('-', "_");
        self.frames.iter().any(|f| {
            f.file.as_deref().is_some_and(|file| {
                file.split('/').any(|dir| {
                    dir == krate
                        || dir.strip_prefix(krate).is_some_and(|v| {
                            v.starts_with('-') && v[1..].starts_with(|c: char| c.is_ascii_digit())
                        })
                })
            }) || f
                .name
                .trim_start_matches('<')
                .starts_with(&format!("{under}::"))
        })
    }

    fn site_is(&self, what: &str) -> bool {
        self.site.is_some_and(|s| s.what.starts_with(what))
    }
}

fn rule(e: &Evidence) -> Option<(String, String)> {
    let grpc = e.passes("tonic") || e.site_is("tonic") || e.site_is("gRPC");
    let http2 = grpc || e.passes("h2");
    let s = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
    match e.reason {
        Reason::RequestRead if http2 => s(
            "HTTP/2 connections held open by clients that went quiet: the server sends no keepalive pings and has no idle limit",
            "HTTP/2 keepalive finds dead peers and a maximum connection age ends old ones: tonic's Server::builder().http2_keepalive_interval(Some(d)).http2_keepalive_timeout(Some(t)).max_connection_age(age); with the agent's tonic drop-in, .configure(|b| { b.http2().timer(TokioTimer::new()).keep_alive_interval(d).keep_alive_timeout(t); })",
        ),
        Reason::RequestRead => s(
            "keep-alive connections of clients that went quiet: the server has no header-read timeout (hyper's needs a timer, and axum::serve sets none)",
            "set a timer, which turns on hyper's 30 s header-read timeout: taskscope_agent::axum::serve(listener, app).configure(|b| { b.http1().timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30)); }), or hyper-util's auto::Builder with .http1().timer(…); a tower_http TimeoutLayer bounds slow requests, not idle connections",
        ),
        Reason::SocketRead => s(
            "reads with no timeout on connections whose peer went quiet (or never sent)",
            "bound each read: tokio::time::timeout(d, stream.read(&mut buf)), or an idle timer in a select! beside the read that closes the connection",
        ),
        Reason::ReqwestResponse => s(
            "calls to a peer that does not answer, with no deadline: reqwest has no timeout by default",
            "reqwest::ClientBuilder::timeout(d) (and connect_timeout) on the client, or RequestBuilder::timeout(d) per call, or tokio::time::timeout around send()",
        ),
        Reason::HyperResponse => s(
            "calls to a peer that does not answer, with no deadline: hyper's client has no request timeout",
            "tokio::time::timeout(d, client.request(req)) (or sender.send_request), and a pool idle timeout on hyper-util's client",
        ),
        Reason::GrpcResponse => s(
            "gRPC calls to a server that does not answer, with no deadline",
            "a deadline on the channel, Endpoint::timeout(d) (tonic's transport), or per call, request.set_timeout(d) (sent as grpc-timeout)",
        ),
        Reason::ResponseRead => s(
            "client connections waiting on a server that does not answer: the calls that opened them have no timeout (each stuck call keeps its pooled connection)",
            "a timeout on the calls (reqwest::ClientBuilder::timeout(d); tokio::time::timeout around a hyper call), and pool limits: pool_idle_timeout, pool_max_idle_per_host",
        ),
        Reason::ChannelSend => s(
            "producers blocked sending into a full bounded channel: its consumer stalled or is gone (a receiver kept alive but not drained)",
            "find the task that owns the Receiver and why it stopped; bound each send: sender.send_timeout(v, d), or tokio::select! the send against a CancellationToken, or try_send and shed the load",
        ),
        Reason::ChannelRecv => s(
            "receivers waiting on channels whose senders are alive but silent: a Sender (or a clone) kept somewhere keeps every receiver waiting",
            "drop the Senders when the work is done (recv then returns None), or stop the receivers with a CancellationToken in a select!",
        ),
        Reason::Watch if grpc => s(
            "streaming calls the clients never close: each open call keeps its stream task",
            "a server-side limit on streams (end the stream after a deadline, tokio::time::timeout in the handler), HTTP/2 keepalive to find dead peers (http2_keepalive_interval / timeout) and max_connection_age; clients drop their Streaming when done",
        ),
        Reason::Sleep | Reason::Interval => s(
            "tasks sleeping with no way out (loops that sleep between rounds, or long sleeps): nothing tells them to stop",
            "give each one a way out: a CancellationToken (tokio_util::sync) checked in a tokio::select! beside the sleep, or keep their JoinHandles and abort() them when their owner goes",
        ),
        Reason::Oneshot => s(
            "tasks waiting on a oneshot reply that never comes: its Sender is still held but never used (a dropped Sender would end the wait with an error)",
            "send the reply, or drop the Sender, on every path (errors and cancellation included); bound the wait with tokio::time::timeout",
        ),
        Reason::Notify => s(
            "tasks waiting on a Notify nobody signals: whoever should call notify_one / notify_waiters did not (notify_waiters does not wake tasks that start waiting after it)",
            "signal on every path that should end the wait (notify_one stores a permit for a waiter yet to come); or wait with a timeout or a CancellationToken in a select!",
        ),
        Reason::Mutex | Reason::RwLock | Reason::Semaphore => s(
            "tasks queued for a lock or permit that its holder does not release (held across an await that never completes)",
            "find the holder (its group waits on something else) and drop the guard before awaiting; bound the wait: tokio::time::timeout around lock() / acquire()",
        ),
        Reason::NoWaker => s(
            "futures that returned Pending without keeping the waker they were given (a hand-written poll, or a wrapper that drops cx): nothing can wake them again",
            "in every poll that returns Pending, register cx.waker() with what will complete (or wake it at once to be polled again); a future that is never woken is a bug, not a wait",
        ),
        Reason::JoinHandle => s(
            "tasks awaiting other tasks that never finish",
            "fix the awaited tasks (their group says what they wait on), or await them with a timeout and abort() on expiry",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::reason::ReasonCount;
    use crate::analysis::types::{Suspect, SuspectKind};
    use crate::model::{GroupKey, LocId, TaskKind, Trace};
    use std::sync::Arc;

    fn suspect(location: &str, reason: Reason, tasks: u32, live: u32) -> Group {
        let mut g = Group::new(
            GroupKey {
                loc: LocId(0),
                kind: TaskKind::Task,
            },
            Arc::from(location),
        );
        g.live = live;
        g.reasons = vec![ReasonCount {
            reason,
            tasks,
            captured: tasks,
            ..ReasonCount::default()
        }];
        g.suspect = Some(Suspect {
            kind: SuspectKind::Growing,
            reason: "+10 in 60s".into(),
        });
        g
    }

    #[test]
    fn a_rule_speaks_only_for_a_suspect_whose_wait_is_known_and_shared() {
        let g = suspect("src/server.rs:88:9", Reason::SocketRead, 10, 10);
        assert!(advise(&g).is_some_and(|a| a.fix.contains("tokio::time::timeout")));
        // Not a suspect, or the wait not shared, or not known: nothing.
        let mut calm = g.clone();
        calm.suspect = None;
        assert_eq!(advise(&calm), None);
        assert_eq!(
            advise(&suspect("src/a.rs:1:1", Reason::SocketRead, 5, 10)),
            None
        );
        for unknown in [
            Reason::Untracked,
            Reason::OutOfReach,
            Reason::Uncaptured,
            Reason::NotTokio,
            Reason::Running,
        ] {
            assert_eq!(
                advise(&suspect("src/a.rs:1:1", unknown, 10, 10)),
                None,
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn the_server_and_its_protocol_choose_the_fix() {
        // axum's own server, out of reach, its wait inferred from its shape.
        let g = suspect(
            "axum-0.8.9/src/serve/mod.rs:389:5",
            Reason::RequestRead,
            12,
            12,
        );
        let a = advise(&g).expect("advice");
        assert!(a.fix.contains("header_read_timeout"), "{a:?}");
        // A tonic server's connections: HTTP/2 keepalive.
        let g = suspect(
            "tonic-0.14.5/src/transport/server/mod.rs:925:5",
            Reason::RequestRead,
            3,
            3,
        );
        assert!(advise(&g).is_some_and(|a| a.fix.contains("keepalive")));
        // A drop-in's captured connections, by their frames.
        let mut g = suspect("src/main.rs:42:5", Reason::RequestRead, 3, 3);
        g.stacks = vec![crate::analysis::StackCount {
            trace: Arc::new(Trace {
                leaves: vec![vec![Frame {
                    name: "poll".into(),
                    file: Some("h2-0.4.20/src/server.rs".into()),
                    line: Some(1),
                }]],
            }),
            label: String::new(),
            reason: Reason::RequestRead,
            tasks: 3,
        }];
        assert!(advise(&g).is_some_and(|a| a.fix.contains("keep_alive_interval")));
    }

    #[test]
    fn each_kind_of_leak_has_its_fix() {
        for (reason, word) in [
            (Reason::ReqwestResponse, "ClientBuilder::timeout"),
            (Reason::HyperResponse, "tokio::time::timeout"),
            (Reason::GrpcResponse, "Endpoint::timeout"),
            (Reason::ResponseRead, "pool_idle_timeout"),
            (Reason::ChannelSend, "send_timeout"),
            (Reason::ChannelRecv, "drop the Senders"),
            (Reason::Sleep, "CancellationToken"),
            (Reason::Oneshot, "drop the Sender"),
            (Reason::Notify, "notify_one"),
            (Reason::Mutex, "drop the guard"),
            (Reason::JoinHandle, "abort()"),
            (Reason::NoWaker, "cx.waker()"),
        ] {
            let a = advise(&suspect("src/a.rs:1:1", reason, 10, 10)).expect("advice");
            assert!(a.fix.contains(word), "{reason:?}: {a:?}");
        }
    }
}
