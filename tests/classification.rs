//! Each blocking primitive, run under a real console-subscriber, is
//! classified as what it is (README: "How taskscope tells what a task
//! waits on"). One row of that table per assertion.

mod common;

use common::{DemoTarget, group, spawn_line, watch_until};
use std::time::Duration;
use taskscope::analysis::{Params, Reason};

#[test]
fn each_primitive_is_classified_from_real_console_data() {
    let target = DemoTarget::start(&[
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
