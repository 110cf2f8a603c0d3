//! What a real taskscope-agent sends, measured: the largest message of each
//! kind (the groups, a page of a group's tasks, the waits) from the demo
//! target's hooks source, so that the viewer's default limit on the
//! agent's messages is sized for real agents rather than for the worst a
//! target could send.
//!
//! The waits' reply is largest once the target has more tasks than the
//! agent lists in one reply (`MAX_REPLY_TASKS`, 200 000); a page holds at
//! most 10 000 tasks; the groups grow with spawn locations, not tasks. So
//! 250 000 idle tasks give the largest reply of each kind a target of
//! 1 000 000 tasks gives (ignored: it takes a minute and 300 MB; run it
//! with `TASKSCOPE_IDLE_TASKS=1000000 cargo test --test tests
//! real_agent -- --ignored --nocapture` for the figures in PERFORMANCE.md).

use crate::common::DemoTarget;
use prost::Message;
use std::time::{Duration, Instant};
use taskscope_proto::task_dumps_client::TaskDumpsClient;
use taskscope_proto::tasks_client::TasksClient;

#[test]
#[ignore = "a minute and 300 MB: run by hand for PERFORMANCE.md"]
fn a_real_agent_s_largest_messages_fit_the_default_limit() {
    let tasks: usize = std::env::var("TASKSCOPE_IDLE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250_000);
    let target = DemoTarget::start(&[
        "--source",
        "hooks",
        "--scenarios",
        "idle",
        "--idle-tasks",
        &tasks.to_string(),
        "--idle-rate",
        "200000",
    ]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let uri = format!("http://{}", target.addr);
    let (groups, page, captures) = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(uri)
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        let mut tasks_client = TasksClient::new(channel.clone()).max_decoding_message_size(1 << 30);
        let mut stream = tasks_client
            .watch(taskscope_proto::WatchRequest {})
            .await
            .expect("watch")
            .into_inner();
        let mut first = None;
        let mut largest = 0;
        let started = Instant::now();
        loop {
            let g = stream.message().await.expect("message").expect("a message");
            largest = largest.max(g.encoded_len());
            first.get_or_insert(g.encoded_len());
            let live: u64 = g.groups.iter().map(|r| r.live).sum();
            if live as usize >= tasks {
                let biggest = g
                    .groups
                    .iter()
                    .max_by_key(|r| r.live)
                    .and_then(|r| r.location.clone());
                let mut page = None;
                while page.is_none() {
                    match tasks_client
                        .page(taskscope_proto::PageRequest {
                            location: biggest.clone(),
                            after_id: 0,
                            limit: 10_000,
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(p) => page = Some(p.into_inner().encoded_len()),
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => {}
                        Err(s) => panic!("page: {s}"),
                    }
                }
                let mut waits = TaskDumpsClient::new(channel).max_decoding_message_size(1 << 30);
                let asked = Instant::now();
                let captures = loop {
                    match waits.dump(taskscope_proto::DumpRequest { timeout_ms: 2_000 }).await {
                        Ok(d) => break d.into_inner(),
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => {}
                        Err(s) => panic!("capture: {s}"),
                    }
                };
                println!(
                    "{tasks} tasks: groups first {} B, largest {largest} B; page {} B; waits {} B ({} tasks listed, {} unlisted, {} traces) in {:?}",
                    first.unwrap_or(0),
                    page.unwrap_or(0),
                    captures.encoded_len(),
                    captures.tasks.len(),
                    captures.unlisted,
                    captures.traces.len(),
                    asked.elapsed()
                );
                return (largest, page.unwrap_or(0), captures.encoded_len());
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{live} of {tasks} tasks after 2 min"
            );
        }
    });
    let limit = taskscope::conn::Options::default().max_agent_message_size;
    for (what, n) in [("groups", groups), ("page", page), ("waits", captures)] {
        assert!(
            n * 2 <= limit,
            "a real agent's {what} ({n} B) is not within half the limit ({limit} B)"
        );
    }
}
