//! Between the live model and snapshots: taking one, and analysing one
//! with the same grouping code the live view uses.

use super::format::*;
use crate::analysis::console_groups::{Classified, build_groups};
use crate::analysis::judge::Frame;
use crate::analysis::{Analysis, Params, Verdict, WaitIndex};
use crate::model::counted::Aggregates;
use crate::model::history::{Bucket, HistoryParts};
use crate::model::update::DroppedEvents;
use crate::model::{
    Captures, CountHistory, GroupKey, Health, Locations, State, TaskKind, Trace, Ts,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What a snapshot says about itself beyond the state.
#[derive(Clone, Debug)]
pub struct Meta {
    pub target: String,
    pub taken_at_unix_ns: i64,
    pub watched: Duration,
    pub window: Duration,
}

fn ns(t: Option<Ts>) -> Option<i64> {
    t.map(Ts::nanos)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Takes a snapshot of the state, classifying every task as the live view does.
pub fn take(state: &State, meta: &Meta) -> Option<Snapshot> {
    let now = state.log.now?;
    let index = WaitIndex::build(state);
    let mut tasks: Vec<TaskRecord> = state
        .console
        .tasks
        .values()
        .map(|t| {
            let v = index.classify(t, now);
            TaskRecord {
                id: t.id,
                tokio_id: t.tokio_id.map(std::num::NonZeroU64::get),
                location: state.log.locations.name(t.group.loc).to_string(),
                kind: t.group.kind,
                name: t.name().map(str::to_string),
                fields: t.field_pairs(),
                state: v.state,
                reason: v.reason,
                since_ns: ns(v.since),
                created_ns: ns(t.stats.created_at),
                resource: v.resource_id(),
                ambiguous: v.ambiguous,
                polls: t.stats.polls,
                live_wakers: t.stats.live_wakers(),
                for_secs: v.duration(now).map(|d| d.as_secs_f64()),
                age_secs: t.stats.created_at.map(|c| now.since(c).as_secs_f64()),
                captured: v.captured,
                trace: v.trace(),
                lints: crate::analysis::lint::of_task(t, &v).iter().collect(),
            }
        })
        .collect();
    tasks.sort_unstable_by_key(|t| t.id);
    let mut groups: Vec<GroupRecord> = state
        .log
        .histories
        .iter()
        .map(|(key, h)| GroupRecord {
            location: state.log.locations.name(key.loc).to_string(),
            kind: key.kind,
            history: history_record(&h.to_parts()),
        })
        .collect();
    groups.sort_by(|a, b| (&a.location, a.kind.label()).cmp(&(&b.location, b.kind.label())));
    let h = &state.log.health;
    Some(Snapshot {
        format: FORMAT.into(),
        version: VERSION,
        target: meta.target.clone(),
        taken_at_unix_ns: meta.taken_at_unix_ns,
        target_now_ns: now.nanos(),
        horizon_ns: h.horizon.unwrap_or(now).nanos(),
        watched_ms: ms(meta.watched),
        window_ms: ms(meta.window),
        data_source: crate::analysis::DataSource::of(state),
        agent_version: state.agent_version(),
        health: HealthRecord {
            updates: h.updates,
            streams: h.streams,
            full_state: h.full_state,
            dropped_task_events: h.dropped_events.tasks,
            dropped_resource_events: h.dropped_events.resources,
            dropped_async_op_events: h.dropped_events.async_ops,
            unseen_tasks: h.unseen_tasks as u64,
            lag_ms: ms(h.lag),
            last_update_bytes: h.last_update_bytes as u64,
            max_update_bytes: h.max_update_bytes as u64,
            backfilled_ms: ms(h.backfilled),
            restarts: h.restarts,
            counts_since_ns: h.counts_since.map(Ts::nanos),
        },
        groups,
        tasks,
        traces: state
            .captures
            .as_ref()
            .map(|d| d.traces.iter().map(|t| t.leaves.clone()).collect())
            .unwrap_or_default(),
        aggregates: aggregate_records(state),
    })
}

/// The hooks source's groups, for the file.
fn aggregate_records(state: &State) -> Vec<AggregateRecord> {
    let Some(agg) = &state.hooks else {
        return Vec::new();
    };
    let mut out: Vec<AggregateRecord> = agg
        .groups
        .iter()
        .map(|(key, g)| {
            let location = state.log.locations.name(key.loc).to_string();
            let stacks = state
                .captures
                .as_ref()
                .and_then(|d| d.by_location.get(&location))
                .map(|v| v.iter().map(|&(t, n)| [t, n]).collect())
                .unwrap_or_default();
            AggregateRecord {
                location,
                group: g.clone(),
                stacks,
            }
        })
        .collect();
    out.sort_by(|a, b| a.location.cmp(&b.location));
    out
}

fn history_record(p: &HistoryParts) -> HistoryRecord {
    HistoryRecord {
        base: p.base,
        total_births: p.total_births,
        total_deaths: p.total_deaths,
        levels: p
            .levels
            .iter()
            .map(|(w, f, b)| LevelRecord {
                width_secs: *w,
                front: *f,
                buckets: b.iter().map(|b| [b.births, b.deaths]).collect(),
            })
            .collect(),
    }
}

fn history_parts(r: &HistoryRecord) -> HistoryParts {
    HistoryParts {
        base: r.base,
        total_births: r.total_births,
        total_deaths: r.total_deaths,
        levels: r
            .levels
            .iter()
            .map(|l| {
                let buckets = l
                    .buckets
                    .iter()
                    .map(|b| Bucket {
                        births: b[0],
                        deaths: b[1],
                    })
                    .collect();
                (l.width_secs, l.front, buckets)
            })
            .collect(),
    }
}

/// A loaded snapshot, ready to analyse.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub locations: Locations,
    pub histories: HashMap<GroupKey, CountHistory>,
    keys: Vec<GroupKey>,
    verdicts: Vec<Verdict>,
    by_id: HashMap<u64, usize>,
    traces: Vec<Arc<Trace>>,
    /// The hooks source's groups, and the capture's waits by location.
    aggregates: Option<Aggregates>,
    captures: Option<Captures>,
}

impl Loaded {
    /// Checks every record and resolves keys; errors name the record.
    pub fn new(snapshot: Snapshot) -> Result<Loaded, String> {
        let mut locations = Locations::default();
        let mut histories = HashMap::new();
        for g in &snapshot.groups {
            let key = GroupKey {
                loc: locations.intern_str(&g.location),
                kind: g.kind,
            };
            let h = CountHistory::from_parts(&history_parts(&g.history))
                .map_err(|e| format!("group {:?}: {e}", g.location))?;
            histories.insert(key, h);
        }
        let mut keys = Vec::with_capacity(snapshot.tasks.len());
        let mut verdicts = Vec::with_capacity(snapshot.tasks.len());
        for t in &snapshot.tasks {
            keys.push(GroupKey {
                loc: locations.intern_str(&t.location),
                kind: t.kind,
            });
            let mut v = Verdict::new(t.state, t.reason, t.since_ns.map(Ts::from_nanos));
            v.resource = t.resource.and_then(std::num::NonZeroU64::new);
            v.ambiguous = t.ambiguous;
            v.captured = t.captured;
            v.set_trace(t.trace);
            verdicts.push(v);
            if let Some(i) = t.trace
                && i as usize >= snapshot.traces.len()
            {
                return Err(format!("task {}: trace {i} is not in the file", t.id));
            }
        }
        let by_id = snapshot
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        let traces: Vec<Arc<Trace>> = snapshot
            .traces
            .iter()
            .map(|leaves| {
                Arc::new(Trace {
                    leaves: leaves.clone(),
                })
            })
            .collect();
        let (aggregates, captures) = loaded_aggregates(&snapshot, &mut locations, &traces)?;
        Ok(Loaded {
            snapshot,
            locations,
            histories,
            keys,
            verdicts,
            by_id,
            traces,
            aggregates,
            captures,
        })
    }

    /// The record of task `id`.
    pub fn task(&self, id: u64) -> Option<&TaskRecord> {
        self.by_id
            .get(&id)
            .and_then(|&i| self.snapshot.tasks.get(i))
    }

    pub fn now(&self) -> Ts {
        Ts::from_nanos(self.snapshot.target_now_ns)
    }

    pub fn health(&self) -> Health {
        let h = &self.snapshot.health;
        Health {
            updates: h.updates,
            streams: h.streams,
            full_state: h.full_state,
            dropped_events: DroppedEvents {
                tasks: h.dropped_task_events,
                resources: h.dropped_resource_events,
                async_ops: h.dropped_async_op_events,
            },
            unseen_tasks: usize::try_from(h.unseen_tasks).unwrap_or(usize::MAX),
            lag: Duration::from_millis(h.lag_ms),
            horizon: Some(Ts::from_nanos(self.snapshot.horizon_ns)),
            last_update_bytes: usize::try_from(h.last_update_bytes).unwrap_or(usize::MAX),
            max_update_bytes: usize::try_from(h.max_update_bytes).unwrap_or(usize::MAX),
            backfilled: Duration::from_millis(h.backfilled_ms),
            restarts: h.restarts,
            counts_since: h.counts_since_ns.map(Ts::from_nanos),
            ..Health::default()
        }
    }

    /// The same analysis the live view computed when the snapshot was taken.
    pub fn analyze(&self, params: &Params) -> Analysis {
        let tasks = self
            .snapshot
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| Classified {
                id: t.id,
                group: self.keys[i],
                name: t.name.as_deref(),
                created: t.created_ns.map(Ts::from_nanos),
                verdict: self.verdicts[i],
                lints: t.lints.iter().copied().collect(),
            });
        let frame = Frame {
            locations: &self.locations,
            histories: &self.histories,
            now: self.now(),
            horizon: Ts::from_nanos(self.snapshot.horizon_ns),
            counts_since: self.snapshot.health.counts_since_ns.map(Ts::from_nanos),
            gaps: &[],
            traces: &self.traces,
            aggregates: self.aggregates.as_ref(),
            captures: self.captures.as_ref(),
        };
        let (groups, totals) = build_groups(tasks, &frame, params);
        Analysis {
            now: self.now(),
            groups,
            totals,
            health: self.health(),
            waits: Default::default(),
            source: self.snapshot.data_source,
            agent_version: self.snapshot.agent_version.clone(),
        }
    }
}

/// The hooks source's groups from the file, and their captured waits as a
/// capture by location (for the same analysis as live).
fn loaded_aggregates(
    snapshot: &Snapshot,
    locations: &mut Locations,
    traces: &[Arc<Trace>],
) -> Result<(Option<Aggregates>, Option<Captures>), String> {
    if snapshot.aggregates.is_empty() {
        return Ok((None, None));
    }
    let mut agg = Aggregates::default();
    let mut by_location: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
    for r in &snapshot.aggregates {
        if let Some([t, _]) = r.stacks.iter().find(|[t, _]| *t as usize >= traces.len()) {
            return Err(format!(
                "group {:?}: trace {t} is not in the file",
                r.location
            ));
        }
        if !r.stacks.is_empty() {
            by_location.insert(
                r.location.clone(),
                r.stacks.iter().map(|[t, n]| (*t, *n)).collect(),
            );
        }
        let key = GroupKey {
            loc: locations.intern_str(&r.location),
            kind: TaskKind::Task,
        };
        agg.groups.insert(key, r.group.clone().bounded());
    }
    let captures = (!by_location.is_empty()).then(|| Captures {
        taken_at: Ts::from_nanos(snapshot.target_now_ns),
        capture: Duration::ZERO,
        round: Duration::ZERO,
        resolve: Duration::ZERO,
        bytes: 0,
        traces: traces.to_vec(),
        by_task: HashMap::new(),
        by_location,
        captured_at: Default::default(),
        agent_wakers: Default::default(),
    });
    Ok((Some(agg), captures))
}
