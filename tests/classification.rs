//! Each blocking primitive, run under a real console-subscriber, is
//! classified as what it is (README: "How taskscope tells what a task
//! waits on"). One row of that table per assertion: first from console
//! data alone (a target without the agent), then with `taskscope-agent`'s
//! captures, which name the waits console data cannot see.

use crate::common::{self, DemoTarget, group, spawn_line, watch_until};
use std::time::Duration;
use taskscope::analysis::{Params, Reason};

#[test]
fn each_primitive_is_classified_from_real_console_data() {
    let target = DemoTarget::start(&[
        "--no-agent",
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,mutex-wait,busy,recv",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "5",
    ]);
    let expected = [
        ("idle-conn", Reason::Untracked),      // TcpStream::read
        ("full-channel", Reason::ChannelSend), // mpsc::Sender::send on a full channel
        ("recv", Reason::Untracked),           // mpsc::Receiver::recv
        ("sleepers", Reason::Sleep),           // tokio::time::sleep
        ("mutex-wait", Reason::Mutex),         // Mutex::lock
        ("oneshot", Reason::Oneshot),          // oneshot::Receiver
        ("busy", Reason::Running),             // CPU-bound with yield_now
    ];
    let (_state, a) = watch_until(
        target.target(),
        Duration::from_secs(60),
        Params::default(),
        |a| {
            expected.iter().all(|(l, reason)| {
                group(a, &spawn_line(l)).is_some_and(|g| {
                    let want = if *l == "busy" { 1 } else { 5 };
                    g.live == want
                        && g.main_reason().map(|r| (r.reason, r.tasks)) == Some((*reason, want))
                })
            })
        },
    );
    for (l, reason) in expected {
        let g = group(&a, &spawn_line(l)).expect("group");
        assert_eq!(g.main_reason().map(|r| r.reason), Some(reason), "{l}");
    }
}

#[test]
fn with_the_agent_every_wait_is_named_from_task_dumps() {
    let target = DemoTarget::start(&[
        "--scenarios",
        "idle-conn,full-channel,sleepers,oneshot,mutex-wait,recv,notify,join",
        "--leak-every",
        "50ms",
        "--max-per-leak",
        "5",
    ]);
    let expected = [
        ("idle-conn", Reason::SocketRead),     // TcpStream::read
        ("recv", Reason::ChannelRecv),         // mpsc::Receiver::recv
        ("notify", Reason::Notify),            // Notify::notified
        ("join", Reason::JoinHandle),          // awaiting a JoinHandle
        ("sleepers", Reason::Sleep),           // tokio::time::sleep
        ("full-channel", Reason::ChannelSend), // confirmed by the capture
        ("mutex-wait", Reason::Mutex),
        ("oneshot", Reason::Oneshot),
    ];
    // One capture, once the 40 tasks exist (5 per scenario, 50 ms apart).
    let (_state, a) = common::watch_until_with_waits(
        target.target(),
        Duration::from_secs(60),
        Params::default(),
        Duration::from_secs(2),
        |a| {
            expected.iter().all(|(l, reason)| {
                group(a, &spawn_line(l)).is_some_and(|g| {
                    g.live == 5
                        && g.reasons.first().map(|r| (r.reason, r.tasks, r.captured))
                            == Some((*reason, 5, 5))
                })
            })
        },
    );
    for (l, reason) in expected {
        let g = group(&a, &spawn_line(l)).expect("group");
        let main = g.main_reason().expect("a reason");
        assert_eq!((main.reason, main.captured), (reason, 5), "{l}");
        // The group's stack names the tokio call it waits in.
        assert_eq!(g.stacks.len(), 1, "{l}: {:?}", g.stacks);
        assert_eq!(g.stacks[0].tasks, 5, "{l}");
        assert_eq!(g.stacks[0].reason, reason, "{l}");
    }
    assert!(a.waits.last.is_some_and(|c| c.tasks >= 40), "{:?}", a.waits);
}
