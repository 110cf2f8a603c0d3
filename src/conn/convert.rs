//! Wire messages (console-api) to the model's plain [`Update`].

use crate::model::Ts;
use crate::model::update::{
    AsyncOpStats, Attribute, DroppedEvents, Field, FieldValue, NewAsyncOp, NewResource, NewTask,
    OpSource, PollOp, ResourceKind, ResourceStats, SourceLoc, TaskStats, Update,
};
use console_api as api;
use std::time::Duration;

/// Longest string kept from the wire, in bytes: task names, field values,
/// file paths and type names are never near it, and a hostile target's
/// megabyte strings cost no more than this each.
pub const MAX_STRING: usize = 4096;

/// Caps a wire string at [`MAX_STRING`] bytes (on a character boundary),
/// counting the cuts in `cut`.
fn cap(mut s: String, cut: &mut u32) -> String {
    if s.len() > MAX_STRING {
        let mut at = MAX_STRING;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
        s.push('…');
        *cut = cut.saturating_add(1);
    }
    s
}

/// Converts one wire update. Strings are capped, timestamps saturate at
/// the ends of the model's range; what the values mean (a clock that jumps,
/// a task dropped before it was created) is judged by the model.
pub fn update(msg: api::instrument::Update, wire_bytes: usize) -> Update {
    let cut = &mut 0u32;
    let mut up = Update {
        now: msg.now.map(ts),
        // The initial state always carries the metadata list, even an
        // empty one; later updates only when there is new metadata.
        has_metadata: msg.new_metadata.is_some(),
        wire_bytes,
        ..Update::default()
    };
    let mut dropped = DroppedEvents::default();
    if let Some(t) = msg.task_update {
        dropped.tasks = t.dropped_events;
        up.tasks = t
            .new_tasks
            .into_iter()
            .filter_map(|t| task(t, cut))
            .collect();
        up.task_stats = t
            .stats_update
            .into_iter()
            .map(|(id, s)| (id, task_stats(s)))
            .collect();
    }
    if let Some(r) = msg.resource_update {
        dropped.resources = r.dropped_events;
        up.resources = r
            .new_resources
            .into_iter()
            .filter_map(|r| resource(r, cut))
            .collect();
        up.resource_stats = r
            .stats_update
            .into_iter()
            .map(|(id, s)| (id, resource_stats(s, cut)))
            .collect();
        up.poll_ops = r
            .new_poll_ops
            .into_iter()
            .map(|p| poll_op(p, cut))
            .collect();
    }
    if let Some(a) = msg.async_op_update {
        dropped.async_ops = a.dropped_events;
        up.async_ops = a.new_async_ops.into_iter().filter_map(async_op).collect();
        up.async_op_stats = a
            .stats_update
            .into_iter()
            .map(|(id, s)| (id, async_op_stats(s)))
            .collect();
    }
    up.dropped_events = dropped;
    up.strings_cut = *cut;
    up
}

fn ts(t: prost_types::Timestamp) -> Ts {
    let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    Ts::from_nanos(i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn dur(d: Option<prost_types::Duration>) -> Duration {
    match d {
        Some(d) if d.seconds >= 0 && d.nanos >= 0 => {
            Duration::new(d.seconds as u64, 0).saturating_add(Duration::from_nanos(d.nanos as u64))
        }
        _ => Duration::ZERO,
    }
}

fn id(i: Option<api::Id>) -> Option<u64> {
    i.map(|i| i.id)
}

fn location(l: Option<api::Location>, cut: &mut u32) -> Option<SourceLoc> {
    let l = l?;
    Some(SourceLoc {
        file: cap(l.file?, cut),
        line: l.line,
        column: l.column,
    })
}

fn field(f: api::Field, cut: &mut u32) -> Option<Field> {
    let name = match f.name? {
        api::field::Name::StrName(s) => cap(s, cut),
        // Field indexes into metadata are never sent by console-subscriber
        // 0.5; keep the field under a placeholder name rather than drop it.
        api::field::Name::NameIdx(i) => format!("field#{i}"),
    };
    let value = match f.value? {
        api::field::Value::DebugVal(s) => FieldValue::Debug(cap(s, cut)),
        api::field::Value::StrVal(s) => FieldValue::Str(cap(s, cut)),
        api::field::Value::U64Val(v) => FieldValue::U64(v),
        api::field::Value::I64Val(v) => FieldValue::I64(v),
        api::field::Value::BoolVal(v) => FieldValue::Bool(v),
    };
    Some(Field { name, value })
}

fn task(t: api::tasks::Task, cut: &mut u32) -> Option<NewTask> {
    Some(NewTask {
        id: id(t.id)?,
        location: location(t.location, cut),
        fields: t.fields.into_iter().filter_map(|f| field(f, cut)).collect(),
    })
}

/// A `WatchTaskDetails` message: the histograms, summarised.
pub fn details(task: u64, d: api::tasks::TaskDetails) -> crate::model::details::TaskDetails {
    use crate::model::details::Histogram;
    use api::tasks::task_details::PollTimesHistogram;
    let with_outliers = |h: api::tasks::DurationHistogram| {
        Histogram::decode(&h.raw_histogram).map(|mut s| {
            s.high_outliers = h.high_outliers;
            s.highest_outlier = h.highest_outlier.map(std::time::Duration::from_nanos);
            s
        })
    };
    crate::model::details::TaskDetails {
        task,
        at: d.now.map(ts),
        poll: match d.poll_times_histogram {
            Some(PollTimesHistogram::Histogram(h)) => with_outliers(h),
            Some(PollTimesHistogram::LegacyHistogram(raw)) => Histogram::decode(&raw),
            None => None,
        },
        scheduled: d.scheduled_times_histogram.and_then(with_outliers),
    }
}

fn task_stats(s: api::tasks::Stats) -> TaskStats {
    let poll = s.poll_stats.unwrap_or_default();
    TaskStats {
        created_at: s.created_at.map(ts),
        dropped_at: s.dropped_at.map(ts),
        // Truncated on purpose: see TaskStats.
        waker_clones: s.waker_clones as u32,
        waker_drops: s.waker_drops as u32,
        wakes: s.wakes.min(u64::from(u32::MAX)) as u32,
        self_wakes: s.self_wakes.min(u64::from(u32::MAX)) as u32,
        last_wake: s.last_wake.map(ts),
        polls: poll.polls,
        first_poll: poll.first_poll.map(ts),
        last_poll_started: poll.last_poll_started.map(ts),
        last_poll_ended: poll.last_poll_ended.map(ts),
        busy_ns: nanos(dur(poll.busy_time)),
        scheduled_ns: nanos(dur(s.scheduled_time)),
    }
}

fn resource(r: api::resources::Resource, cut: &mut u32) -> Option<NewResource> {
    use api::resources::resource::kind::Kind;
    let kind = match r.kind.and_then(|k| k.kind) {
        Some(Kind::Known(0)) => ResourceKind::Timer,
        Some(Kind::Known(n)) => ResourceKind::Other(format!("known#{n}")),
        Some(Kind::Other(s)) => ResourceKind::Other(cap(s, cut)),
        None => ResourceKind::Other(String::new()),
    };
    Some(NewResource {
        id: id(r.id)?,
        concrete_type: cap(r.concrete_type, cut),
        kind,
        location: location(r.location, cut),
        parent: id(r.parent_resource_id),
        internal: r.is_internal,
    })
}

fn resource_stats(s: api::resources::Stats, cut: &mut u32) -> ResourceStats {
    ResourceStats {
        created_at: s.created_at.map(ts),
        dropped_at: s.dropped_at.map(ts),
        attributes: s
            .attributes
            .into_iter()
            .filter_map(|a| {
                Some(Attribute {
                    field: field(a.field?, cut)?,
                    unit: a.unit.map(|u| cap(u, cut)),
                })
            })
            .collect(),
    }
}

fn poll_op(p: api::resources::PollOp, cut: &mut u32) -> PollOp {
    PollOp {
        task: id(p.task_id),
        resource: id(p.resource_id),
        async_op: id(p.async_op_id),
        name: cap(p.name, cut),
        ready: p.is_ready,
    }
}

fn async_op(a: api::async_ops::AsyncOp) -> Option<NewAsyncOp> {
    Some(NewAsyncOp {
        id: id(a.id)?,
        source: OpSource::parse(&a.source),
        parent: id(a.parent_async_op_id),
        resource: id(a.resource_id),
    })
}

fn async_op_stats(s: api::async_ops::Stats) -> AsyncOpStats {
    AsyncOpStats {
        created_at: s.created_at.map(ts),
        dropped_at: s.dropped_at.map(ts),
        task: id(s.task_id),
        polls: s.poll_stats.map(|p| p.polls).unwrap_or(0),
    }
}
