//! One task's details from a real console-subscriber (`WatchTaskDetails`):
//! the poll-time and scheduled-time histograms arrive for the task the view
//! opens, and stop when it closes; the task view draws them with their
//! percentiles.

use crate::common::DemoTarget;
use std::time::{Duration, Instant};
use taskscope::conn::{self, Event};
use taskscope::model::State;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_task_s_histograms_stream_from_the_target() {
    let demo = DemoTarget::start(&["--scenarios", "busy", "--no-agent"]);
    let mut conn = conn::spawn(demo.target(), conn::Options::default());
    let mut state = State::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut busy = None;
    let mut details = None;
    while Instant::now() < deadline {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(1), conn.events.recv()).await
        else {
            continue;
        };
        if let Event::Details(d) = &ev {
            let polls = d.poll.as_ref().map_or(0, |h| h.count);
            let sched = d.scheduled.as_ref().map_or(0, |h| h.count);
            if polls > 10 && sched > 10 {
                details = Some((**d).clone());
                break;
            }
        }
        conn::apply(&mut state, ev);
        if busy.is_none() {
            busy = state
                .console
                .tasks
                .values()
                .find(|t| t.name() == Some("busy-loop"))
                .map(|t| t.id);
            // The view opens the busy task.
            conn.waits.details(busy);
        }
    }
    let d = details.expect("the busy task's histograms");
    assert_eq!(Some(d.task), busy);
    let poll = d.poll.expect("poll times");
    // The busy loop spins 300 µs per poll.
    assert!(
        poll.p50 >= Duration::from_micros(250) && poll.p50 <= Duration::from_millis(50),
        "{poll:?}"
    );
    assert!(poll.p50 <= poll.p90 && poll.p90 <= poll.p99 && poll.p99 <= poll.max);
    assert_eq!(poll.buckets.iter().sum::<u64>(), poll.count);
    // Closing it stops the stream, after what was already on its way: the
    // target's updates go on (one each publish interval, as the details
    // came) with no details among them.
    conn.waits.details(None);
    const QUIET: usize = 20;
    let (mut details, mut updates) = (0, 0);
    let until = Instant::now() + Duration::from_secs(20);
    while updates < QUIET {
        match tokio::time::timeout_at(until.into(), conn.events.recv()).await {
            Ok(Some(Event::Details(_))) => (details, updates) = (details + 1, 0),
            Ok(Some(Event::Update(_))) => updates += 1,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!(
                "no {QUIET} updates in a row without details after closing: \
                 {details} details since, {updates} updates after the last"
            ),
        }
    }
}
