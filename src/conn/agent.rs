//! The opt-in task-dump agent (`taskscope-agent`), served beside the
//! console on the target's port: detection, and dumps on request or at a
//! low rate. Runs beside each stream, on the same HTTP/2 connection.

use super::chan::Chan as Channel;
use super::{Event, Options, Requests};
use crate::model::{Agent, Frame, TaskDump, Trace, Ts};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use taskscope_proto::task_dumps_client::TaskDumpsClient;
use taskscope_proto::{self as proto, DumpReply, DumpRequest, InfoReply, InfoRequest};
use tokio::sync::mpsc;

/// The longest minimum interval believed from an agent (an hour).
const MAX_MIN_INTERVAL_MS: u64 = 3_600_000;

/// Text the target's agent sent, made inert for a terminal.
fn said(s: &str) -> String {
    crate::text::sanitize(s, super::error::MAX_REASON)
}

/// A dump is never asked for sooner than this many times its last
/// capture took (a 50 ms pause allows at most one dump per 5 s).
const COST_FACTOR: u32 = 100;

/// Detects the agent, then takes dumps: one right away (when
/// `opts.dumps.on_connect`), then every `opts.dumps.interval` and on each
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
    if tx.send(Event::Agent(agent, recent)).await.is_err() || !ready || !opts.dumps.enabled {
        return;
    }
    let mut now = opts.dumps.on_connect;
    let mut least = min_interval;
    if now && !opts.dumps.first_after.is_zero() {
        // Wait, unless asked for a dump sooner.
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(opts.dumps.first_after) => {}
        }
    }
    loop {
        if !now {
            let wait = opts.dumps.interval.map(|i| i.max(least));
            tokio::select! {
                _ = trigger.notified() => {}
                _ = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
            }
        }
        now = false;
        if tx.send(Event::DumpStarted).await.is_err() {
            return;
        }
        let req = DumpRequest {
            timeout_ms: opts.dumps.timeout.as_millis() as u64,
        };
        let ev = match dump_retrying_while_busy(&channel, req, &opts).await {
            Ok(reply) => match convert(reply) {
                Some(d) => {
                    least = min_interval.max(d.capture * COST_FACTOR);
                    Ok(Box::new(d))
                }
                None => Err("the agent's dump had no timestamp".to_string()),
            },
            Err(s) => Err(said(s.message())),
        };
        if tx.send(Event::Dump(ev)).await.is_err() {
            return;
        }
    }
}

/// Asks for a dump; while another client's dump is being taken the agent
/// answers `RESOURCE_EXHAUSTED` at once (it queues nothing), so ask again
/// shortly, within the time a dump may take.
async fn dump_retrying_while_busy(
    channel: &Channel,
    req: DumpRequest,
    opts: &Options,
) -> Result<DumpReply, tonic::Status> {
    let give_up = tokio::time::Instant::now() + opts.dumps.timeout * 6;
    let mut pause = Duration::from_millis(100);
    loop {
        match dump(channel, req, opts).await {
            Err(s)
                if s.code() == tonic::Code::ResourceExhausted
                    && tokio::time::Instant::now() + pause < give_up =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// `Info`: whether the target has an agent, and what it can do.
async fn info(channel: &Channel, opts: &Options) -> Result<InfoReply, tonic::Status> {
    let mut client = client(channel, opts).await?;
    within_dump_time(opts, client.info(InfoRequest {})).await
}

/// One `Dump`.
async fn dump(
    channel: &Channel,
    req: DumpRequest,
    opts: &Options,
) -> Result<DumpReply, tonic::Status> {
    let mut client = client(channel, opts).await?;
    within_dump_time(opts, client.dump(req)).await
}

/// The agent's client, once the channel takes a call; replies up to
/// `opts.max_message_size`.
async fn client(
    channel: &Channel,
    opts: &Options,
) -> Result<TaskDumpsClient<Channel>, tonic::Status> {
    let channel = channel
        .clone()
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    Ok(TaskDumpsClient::new(channel).max_decoding_message_size(opts.max_message_size))
}

async fn within_dump_time<T>(
    opts: &Options,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    // The agent's own timeout covers the capture; resolving and sending
    // 100 000 tasks' traces takes longer.
    match tokio::time::timeout(opts.dumps.timeout * 6, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded(
            "the agent did not answer in time",
        )),
    }
}

/// A wire frame, sanitized (names and paths come from the target).
fn frame(f: proto::Frame) -> Frame {
    let clean = |s: &str| crate::text::sanitize(s, super::convert::MAX_STRING);
    Frame {
        name: clean(&f.name),
        file: (!f.file.is_empty()).then(|| clean(&f.file)),
        line: (f.line > 0).then_some(f.line),
    }
}

/// The wire reply as the model's plain dump.
pub(crate) fn convert(mut reply: DumpReply) -> Option<TaskDump> {
    let bytes = reply.encoded_len();
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
    Some(TaskDump {
        taken_at,
        capture: Duration::from_nanos(reply.capture_ns),
        round: Duration::from_nanos(reply.round_ns.min(60_000_000_000)),
        resolve: Duration::from_nanos(reply.resolve_ns),
        bytes,
        traces,
        by_task,
        captured_at,
        agent_wakers: agent_wakers.into_iter().take(1_000_000).collect(),
        by_location,
    })
}
