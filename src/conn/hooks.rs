//! The hooks source on the wire (`taskscope.agent.v1.Tasks`): the
//! target's own groups, streamed. Target strings are sanitized and capped
//! here, where they enter, like the console's.

use super::capped::Decoded;
use super::chan::Chan as Channel;
use crate::model::Ts;
use crate::model::caps::{MAX_PAGE_TASKS, MAX_PATH};
use crate::model::counted::{
    AggGroup, AggRow, GroupsUpdate, PagedTask, RawLoc, SiteHistory, TaskPage,
};
use crate::model::location::format_location;
use crate::model::update::SourceLoc;
use std::time::Duration;
use taskscope_proto::{self as proto, Groups, Loc};

/// Which source to read when a target serves both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceChoice {
    /// The hooks source when the target serves it, else console-subscriber.
    #[default]
    Auto,
    /// Only taskscope-agent's hooks source.
    Hooks,
    /// Only console-subscriber (per-task data, reasons from console ops).
    Console,
}

/// Opens the groups stream; `UNIMPLEMENTED` when the target serves no
/// hooks source. The agent walks its tasks for one client at a time and
/// refuses the others (`RESOURCE_EXHAUSTED`) meanwhile: those are asked
/// again shortly (the caller bounds the whole with its connect timeout).
/// Each message is at most `limit` bytes, decoded within the caps.
pub async fn watch(
    channel: Channel,
    limit: usize,
) -> Result<tonic::Streaming<Decoded<Groups>>, tonic::Status> {
    let mut pause = Duration::from_millis(50);
    loop {
        match super::calls::watch(channel.clone(), limit).await {
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

pub(crate) fn location(l: Option<Loc>) -> String {
    let l = l.unwrap_or_default();
    let text = format_location(&SourceLoc {
        file: crate::text::sanitize(&l.file, MAX_PATH),
        line: Some(l.line),
        column: Some(l.column),
    });
    crate::text::sanitize(&text, MAX_PATH + 32)
}

/// A group's name in the model: its location, or for a line the target
/// splits by spawner, `LOCATION ← SPAWNER` (`taskscope_proto::names`).
pub(crate) fn place(l: Option<Loc>, split: bool, spawner: Option<Loc>) -> String {
    let at = location(l);
    if !split {
        return at;
    }
    let by = spawner.map(|s| location(Some(s))).unwrap_or_default();
    crate::text::sanitize(
        &taskscope_proto::names::split_location(&at, &by),
        2 * MAX_PATH + 64,
    )
}

fn raw(l: Option<&Loc>) -> RawLoc {
    l.map_or((String::new(), 0, 0), |l| {
        (l.file.clone(), l.line, l.column)
    })
}

/// Fetches the open group's tasks, again every two seconds while it stays
/// open, until the stream ends (the caller aborts this task then). Each
/// request is given `within` (a page that does not come is asked again);
/// only the first page is asked for, however many the target says follow.
pub async fn pages(
    channel: Channel,
    requests: super::Requests,
    tx: tokio::sync::mpsc::Sender<super::Event>,
    limit: usize,
    within: Duration,
) {
    loop {
        let Some(at) = requests.opened() else {
            requests.open_changed().await;
            continue;
        };
        let wire = |l: &RawLoc| Loc {
            file: l.0.clone(),
            line: l.1,
            column: l.2,
        };
        let req = proto::PageRequest {
            location: Some(wire(&at.at)),
            split: at.split,
            spawner: at.spawner.as_ref().map(wire),
            after_id: 0,
            limit: MAX_PAGE_TASKS as u32,
        };
        let reply = tokio::time::timeout(within, super::calls::page(channel.clone(), limit, req));
        if let Ok(Ok(Decoded { msg: page, cut })) = reply.await {
            let page = TaskPage {
                at,
                more: page.next_after_id != 0,
                tasks: page
                    .tasks
                    .into_iter()
                    .map(|t| PagedTask {
                        id: t.id,
                        reachable: t.reachable,
                        parent: t.parent_id,
                        parent_location: t.parent_location.map(|l| location(Some(l))),
                        created: ts(t.created_unix_ns),
                        polls: t.polls,
                        busy: Duration::from_nanos(t.busy_ns),
                        running_since: ts(t.running_since_unix_ns),
                        idle_since: ts(t.idle_since_unix_ns),
                    })
                    .collect(),
            };
            let events = [
                cut.any().then_some(super::Event::Capped(cut)),
                Some(super::Event::Page(Box::new(page))),
            ];
            for ev in events.into_iter().flatten() {
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), requests.open_changed()).await;
    }
}

fn ts(unix_ns: i64) -> Option<Ts> {
    (unix_ns > 0).then(|| Ts::from_nanos(unix_ns))
}

/// The wire message as the model's update; `received`: when it arrived.
pub fn convert(d: Decoded<Groups>, received: std::time::Instant) -> GroupsUpdate {
    let Decoded { msg: g, cut } = d;
    GroupsUpdate {
        received: Some(received),
        capped: cut,
        now: Ts::from_nanos(g.now_unix_ns.max(1)),
        since: Ts::from_nanos(g.since_unix_ns.max(1)),
        groups: g
            .groups
            .into_iter()
            .map(|r| AggRow {
                location: place(r.location.clone(), r.split, r.spawner.clone()),
                group: AggGroup {
                    raw: raw(r.location.as_ref()),
                    split: r.split,
                    spawner: r.spawner.as_ref().filter(|_| r.split).map(|s| raw(Some(s))),
                    live: r.live,
                    running: r.running,
                    idle: r.idle,
                    spawned: r.spawned,
                    terminated: r.terminated,
                    polls: r.polls,
                    busy: Duration::from_nanos(r.busy_ns),
                    oldest_created: ts(r.oldest_created_unix_ns),
                    earliest_idle: ts(r.earliest_idle_unix_ns),
                    longest_poll: Duration::from_nanos(r.longest_poll_ns),
                    parents: r
                        .parents
                        .into_iter()
                        .take(crate::model::counted::MAX_PARENTS)
                        .map(|p| (std::sync::Arc::from(location(p.location)), p.tasks))
                        .collect(),
                    unparented: r.unparented,
                    ages: r.ages,
                    terminated_lifetime: Duration::from_nanos(r.terminated_lifetime_ns),
                    lifetimes: r.lifetimes,
                    reachable: r.reachable,
                    waits_held: r.waits_held,
                    newest_wait: ts(r.newest_wait_unix_ns),
                }
                .bounded(),
            })
            .collect(),
        history: g
            .history
            .into_iter()
            .map(|h| SiteHistory {
                location: place(h.location, h.split, h.spawner),
                first_unix_sec: h.first_unix_sec.min(i64::MAX as u64 / 1_000_000_000) as i64,
                // Within the history cap since decoding.
                spawned: h.spawned,
                terminated: h.terminated,
            })
            .collect(),
    }
}
