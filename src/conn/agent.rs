//! The opt-in capture agent (`taskscope-agent`), served beside the
//! console on the target's port: detection, and captures on request or at a
//! low rate. Runs beside each stream, on the same HTTP/2 connection.

use super::capped::Decoded;
use super::chan::Chan as Channel;
use super::{Event, Options, Requests};
use crate::model::{Agent, Captures, Frame, Trace, Ts};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use taskscope_proto::{self as proto, DumpReply, DumpRequest, InfoReply};
use tokio::sync::mpsc;

/// The longest minimum interval believed from an agent (an hour).
const MAX_MIN_INTERVAL_MS: u64 = 3_600_000;

/// Text the target's agent sent, made inert for a terminal.
fn said(s: &str) -> String {
    crate::text::sanitize(s, super::error::MAX_REASON)
}

/// A capture is never asked for sooner than this many times its last
/// capture took (a 50 ms pause allows at most one capture per 5 s).
const COST_FACTOR: u32 = 100;

/// Detects the agent, then takes captures: one right away (when
/// `opts.captures.on_connect`), then every `opts.captures.interval` and on each
/// trigger. Ends when the receiver is gone.
pub(crate) async fn run(
    channel: Channel,
    opts: Options,
    tx: mpsc::Sender<Event>,
    trigger: Requests,
) {
    let info = info(&channel, &opts).await;
    let recent: Vec<(Ts, Ts)> = match &info {
        Ok(r) => r
            .recent_dumps
            .iter()
            // A capture holds the runtime for milliseconds; a window of
            // more than a minute is not one (and would hide every poll).
            .filter(|w| {
                w.start_unix_ns > 0
                    && w.end_unix_ns >= w.start_unix_ns
                    && w.end_unix_ns - w.start_unix_ns <= 60_000_000_000
            })
            .map(|w| {
                (
                    Ts::from_nanos(w.start_unix_ns),
                    Ts::from_nanos(w.end_unix_ns),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let agent = match info {
        Ok(r) if r.dumps_supported => Agent::Ready {
            version: said(&r.agent_version),
            min_interval: Duration::from_millis(r.min_interval_ms.min(MAX_MIN_INTERVAL_MS)),
            holds_wakers: r.holds_wakers,
        },
        Ok(r) => Agent::Unavailable(said(&r.why_not)),
        Err(s) if s.code() == tonic::Code::Unimplemented => Agent::Absent,
        Err(s) => Agent::Unavailable(format!("the agent did not answer: {}", said(s.message()))),
    };
    let ready = matches!(agent, Agent::Ready { .. });
    let min_interval = match &agent {
        Agent::Ready { min_interval, .. } => *min_interval,
        _ => Duration::ZERO,
    };
    if tx.send(Event::Agent(agent, recent)).await.is_err() || !ready || !opts.waits.enabled {
        return;
    }
    let mut now = opts.waits.on_connect;
    let mut least = min_interval;
    if now && !opts.waits.first_after.is_zero() {
        // Wait, unless asked for a capture sooner.
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(opts.waits.first_after) => {}
        }
    }
    loop {
        if !now {
            let wait = opts.waits.interval.map(|i| i.max(least));
            tokio::select! {
                _ = trigger.notified() => {}
                _ = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
            }
        }
        now = false;
        if tx.send(Event::WaitsAsked).await.is_err() {
            return;
        }
        // The agent waits at most 2 s for the tasks it asks; half the time
        // this request may take leaves the rest for its reply.
        let req = DumpRequest {
            timeout_ms: (opts.waits.timeout / 2).as_millis() as u64,
        };
        let ev = match waits_retrying_while_busy(&channel, req, &opts).await {
            Ok(Decoded { msg, cut }) => {
                if cut.any() && tx.send(Event::Capped(cut)).await.is_err() {
                    return;
                }
                match convert(msg) {
                    Some(d) => {
                        least = min_interval.max(d.capture * COST_FACTOR);
                        Ok(Box::new(d))
                    }
                    None => Err("the agent's capture had no timestamp".to_string()),
                }
            }
            Err(s) => Err(why_failed(&s, &opts)),
        };
        if tx.send(Event::Captures(ev)).await.is_err() {
            return;
        }
    }
}

/// Why a request for waits failed, in words.
fn why_failed(s: &tonic::Status, opts: &Options) -> String {
    match super::error::ConnError::from_status("", s, true).for_agent() {
        super::error::ConnError::TooLarge { size, limit, .. } => format!(
            "the agent's reply was {size} bytes, over the limit of {limit} (--max-agent-message-size)"
        ),
        _ if s.code() == tonic::Code::DeadlineExceeded => format!(
            "the agent did not answer within {} (--waits-timeout)",
            crate::text::duration(opts.waits.timeout)
        ),
        _ => said(s.message()),
    }
}

/// Asks for a capture; while another client's capture is being taken the agent
/// answers `RESOURCE_EXHAUSTED` at once (it queues nothing), so ask again
/// shortly. The whole, reply included, takes at most `--waits-timeout`.
async fn waits_retrying_while_busy(
    channel: &Channel,
    req: DumpRequest,
    opts: &Options,
) -> Result<Decoded<DumpReply>, tonic::Status> {
    let limit = opts.max_agent_message_size;
    let asking = async {
        let mut pause = Duration::from_millis(100);
        loop {
            match super::calls::captures(channel.clone(), limit, req).await {
                Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    };
    within(opts.waits.timeout, asking).await
}

/// `Info`: whether the target has an agent, and what it can do.
async fn info(channel: &Channel, opts: &Options) -> Result<InfoReply, tonic::Status> {
    let call = super::calls::info(channel.clone(), opts.max_agent_message_size);
    within(opts.connect_timeout, call).await.map(|d| d.msg)
}

async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, tonic::Status>>,
) -> Result<T, tonic::Status> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(tonic::Status::deadline_exceeded(
            "the agent did not answer in time",
        )),
    }
}

/// A wire frame, sanitized (names and paths come from the target).
fn frame(f: proto::Frame) -> Frame {
    let clean = |s: &str| crate::text::sanitize(s, crate::model::caps::MAX_FRAME_TEXT);
    Frame {
        name: clean(&f.name),
        file: (!f.file.is_empty()).then(|| clean(&f.file)),
        line: (f.line > 0).then_some(f.line),
    }
}

/// The wire reply as the model's plain capture.
pub(crate) fn convert(mut reply: DumpReply) -> Option<Captures> {
    let bytes = prost::Message::encoded_len(&reply);
    let agent_wakers = std::mem::take(&mut reply.agent_wakers);
    let taken_at = (reply.taken_unix_ns > 0).then(|| Ts::from_nanos(reply.taken_unix_ns))?;
    let traces = reply
        .traces
        .into_iter()
        .map(|t| {
            Arc::new(Trace {
                leaves: t
                    .leaves
                    .into_iter()
                    .map(|l| l.frames.into_iter().map(frame).collect())
                    .collect(),
            })
        })
        .collect::<Vec<_>>();
    let by_task: HashMap<u64, u32> = reply
        .tasks
        .iter()
        .filter(|t| (t.trace as usize) < traces.len())
        .map(|t| (t.id, t.trace))
        .collect();
    let captured_at: HashMap<u64, Ts> = reply
        .tasks
        .iter()
        .filter(|t| t.captured_unix_ns > 0 && (t.trace as usize) < traces.len())
        .map(|t| (t.id, Ts::from_nanos(t.captured_unix_ns)))
        .collect();
    let locations: Vec<String> = reply
        .locations
        .into_iter()
        .map(|l| super::hooks::location(Some(l)))
        .collect();
    // Per place: its location, and for a split line its spawner's (0:
    // outside any task).
    let mut counts: HashMap<(usize, bool, usize, u32), u32> = HashMap::new();
    for t in &reply.tasks {
        let Some(i) = (t.location as usize).checked_sub(1) else {
            continue;
        };
        let by = if t.split { t.spawner as usize } else { 0 };
        if i < locations.len() && by <= locations.len() && (t.trace as usize) < traces.len() {
            *counts.entry((i, t.split, by, t.trace)).or_default() += 1;
        }
    }
    let mut by_location: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    for ((i, split, by, trace), n) in counts {
        let name = match (split, by.checked_sub(1)) {
            (false, _) => locations[i].clone(),
            (true, by) => taskscope_proto::names::split_location(
                &locations[i],
                by.map_or("", |b| locations[b].as_str()),
            ),
        };
        by_location.entry(name).or_default().push((trace, n));
    }
    Some(Captures {
        taken_at,
        capture: Duration::from_nanos(reply.capture_ns),
        round: Duration::from_nanos(reply.round_ns.min(60_000_000_000)),
        resolve: Duration::from_nanos(reply.resolve_ns),
        bytes,
        traces,
        by_task,
        captured_at,
        agent_wakers: agent_wakers.into_iter().collect(),
        by_location,
    })
}
