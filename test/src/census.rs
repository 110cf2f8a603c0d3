//! What a check reads from the agent: the runtime's live tasks (the hooks
//! recorder: where each was spawned, by which task, whether its wait can be
//! captured) and the waits of those it can reach (the agent's captures).

use std::collections::HashMap;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};
use taskscope_agent::hooks::{Recorder, Site};
use taskscope_agent::{Agent, DumpError, proto};
use taskscope_core::model::{Frame, Trace};

/// One live task of the watched runtime.
#[derive(Clone)]
pub struct LiveTask {
    /// tokio's task id.
    pub id: u64,
    /// Where it counts, as the agent and the view name it.
    pub site: &'static Site,
    /// The task that spawned it (0: spawned outside any task).
    pub parent: u64,
    /// Where that task was spawned.
    pub parent_location: Option<&'static Location<'static>>,
    /// Whether its wait can be captured (spawned through the agent).
    pub reachable: bool,
    /// Inside a poll right now.
    pub running: bool,
}

fn parts(l: &'static Location<'static>) -> (&'static str, u32, u32) {
    (l.file(), l.line(), l.column())
}

/// Tasks listed per request to the recorder.
const PAGE: usize = 4096;

/// Every live task of the runtime `recorder` watches.
pub fn live_tasks(recorder: &Recorder) -> Vec<LiveTask> {
    let mut out = Vec::new();
    for g in recorder.groups().groups.iter().filter(|g| g.live > 0) {
        let site = g.site;
        let mut after = 0;
        loop {
            let page = recorder.tasks(
                parts(site.location),
                site.split,
                site.spawner.map(parts),
                after,
                PAGE,
            );
            out.extend(page.tasks.iter().map(|t| LiveTask {
                id: t.id,
                site,
                parent: t.parent,
                parent_location: t.parent_location,
                reachable: t.reachable,
                running: t.running_since_unix_ns.is_some(),
            }));
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
    }
    out
}

/// The captured waits of the tasks the agent can reach, by task id; or why
/// there are none (a platform without captures).
pub type Captures = Result<HashMap<u64, Arc<Trace>>, String>;

/// How long one request for waits may wait for its tasks to answer.
const ROUND: Duration = Duration::from_millis(500);
/// How long to keep asking while another check's request is served (the
/// agent serves one at a time; checks on a shared runtime take turns).
const BUSY_FOR: Duration = Duration::from_secs(5);

/// Asks the agent for a round of captures and returns every capture that
/// holds. Run it on the runtime the agent watches: its tasks answer on
/// their next poll.
pub async fn captures(agent: &Agent) -> Captures {
    let started = Instant::now();
    loop {
        match agent.dump(ROUND).await {
            Ok(reply) => return Ok(traces(&reply)),
            Err(DumpError::Busy) if started.elapsed() < BUSY_FOR => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The reply's traces by task id, as the core's model reads them.
fn traces(reply: &proto::DumpReply) -> HashMap<u64, Arc<Trace>> {
    let traces: Vec<Arc<Trace>> = reply.traces.iter().map(|t| Arc::new(trace(t))).collect();
    reply
        .tasks
        .iter()
        .filter_map(|t| Some((t.id, traces.get(t.trace as usize)?.clone())))
        .collect()
}

/// A wire trace as the core's model: an empty file or a zero line is one
/// not known.
pub fn trace(t: &proto::Trace) -> Trace {
    Trace {
        leaves: t
            .leaves
            .iter()
            .map(|leaf| {
                leaf.frames
                    .iter()
                    .map(|f| Frame {
                        name: f.name.clone(),
                        file: (!f.file.is_empty()).then(|| f.file.clone()),
                        line: (f.line != 0).then_some(f.line),
                    })
                    .collect()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_files_and_lines_are_none() {
        let wire = proto::Trace {
            leaves: vec![proto::Leaf {
                frames: vec![
                    proto::Frame {
                        name: "app::f::{{closure}}".into(),
                        file: "src/f.rs".into(),
                        line: 3,
                    },
                    proto::Frame {
                        name: "poll".into(),
                        file: String::new(),
                        line: 0,
                    },
                ],
            }],
        };
        let t = trace(&wire);
        assert_eq!(t.leaves[0][0].file.as_deref(), Some("src/f.rs"));
        assert_eq!(t.leaves[0][0].line, Some(3));
        assert_eq!(t.leaves[0][1], Frame::from("poll"));
    }
}
