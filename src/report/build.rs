//! Building the suspect-task report from an analysis, once; it is rendered
//! as Markdown, JSON or HTML. The report's types are in `schema`.

pub use super::schema::*;
use crate::analysis::{Analysis, Group, health};
use crate::model::{CountHistory, GroupKey, State};
use crate::snapshot::Loaded;
use crate::text;
use crate::wording;
use crate::wording::Words;
use std::time::Duration;

pub const FORMAT: &str = "taskscope-report";
pub const VERSION: u32 = 1;
/// Groups listed under "top groups".
const TOP_GROUPS: usize = 15;
/// Sample tasks per suspect group.
const SAMPLES: usize = 5;
/// Distinct async stacks listed per group.
const STACKS: usize = 5;

/// Where the tasks' details and histories come from.
pub trait Source {
    /// Task `id` of target `target` (0 but with several targets merged).
    fn sample(&self, target: usize, id: u64) -> Option<SampleDetail>;
    fn history(&self, key: GroupKey) -> Option<&CountHistory>;
}

/// A task's details beyond its classification.
pub struct SampleDetail {
    pub tokio_id: Option<u64>,
    pub name: Option<String>,
    pub fields: Vec<[String; 2]>,
}

impl<T: Source + ?Sized> Source for &T {
    fn sample(&self, target: usize, id: u64) -> Option<SampleDetail> {
        (**self).sample(target, id)
    }

    fn history(&self, key: GroupKey) -> Option<&CountHistory> {
        (**self).history(key)
    }
}

impl Source for State {
    fn sample(&self, _: usize, id: u64) -> Option<SampleDetail> {
        let t = self.console.tasks.get(&id)?;
        Some(SampleDetail {
            tokio_id: t.tokio_id.map(std::num::NonZeroU64::get),
            name: t.name().map(str::to_string),
            fields: t.field_pairs(),
        })
    }

    fn history(&self, key: GroupKey) -> Option<&CountHistory> {
        self.log.histories.get(&key)
    }
}

impl Source for Loaded {
    fn sample(&self, _: usize, id: u64) -> Option<SampleDetail> {
        let t = self.task(id)?;
        Some(SampleDetail {
            tokio_id: t.tokio_id,
            name: t.name.clone(),
            fields: t.fields.clone(),
        })
    }

    fn history(&self, key: GroupKey) -> Option<&CountHistory> {
        self.histories.get(&key)
    }
}

/// Several targets' models behind one merged analysis
/// ([`crate::analysis::fleet`]): a task's details come from its own
/// target, a group's history from the first target that has the group.
pub struct FleetSource<'a> {
    pub states: Vec<&'a State>,
    pub merger: &'a crate::analysis::fleet::Merger,
}

impl Source for FleetSource<'_> {
    fn sample(&self, target: usize, id: u64) -> Option<SampleDetail> {
        self.states.get(target)?.sample(0, id)
    }

    fn history(&self, key: GroupKey) -> Option<&CountHistory> {
        let &(t, k) = self.merger.origins(key).first()?;
        self.states.get(t)?.history(k)
    }
}

/// What the report says about how the data was gathered.
#[derive(Clone, Debug)]
pub struct Context {
    pub target: String,
    pub source: String,
    pub watched: Duration,
    pub window: Duration,
    pub generated_at_unix_ns: i64,
}

pub fn build(a: &Analysis, src: &dyn Source, ctx: &Context, changes: Option<ChangesOut>) -> Report {
    let group = |g: &Group, with_samples: bool| group_out(g, a, src, ctx, with_samples);
    Report {
        format: FORMAT,
        version: VERSION,
        target: ctx.target.clone(),
        source: ctx.source.clone(),
        data_source: a.source,
        agent_version: a.agent_version.clone(),
        generated_at: text::utc_iso(ctx.generated_at_unix_ns),
        target_time: text::utc_iso(a.now.nanos()),
        watched_secs: ctx.watched.as_secs_f64(),
        window_secs: ctx.window.as_secs_f64(),
        totals: TotalsOut {
            tasks: a.totals.live,
            groups: a.totals.groups,
            suspects: a.totals.suspects,
            running: a.totals.running,
            scheduled: a.totals.scheduled,
            idle: a.totals.idle,
        },
        waits: waits(a),
        warnings: health::warnings(&a.health)
            .into_iter()
            .chain(health::waits_warnings(&a.waits))
            .collect(),
        suspects: a
            .groups
            .iter()
            .filter(|g| g.suspect.is_some())
            .map(|g| group(g, true))
            .collect(),
        top_groups: {
            let mut live: Vec<&Group> = a.groups.iter().filter(|g| g.live > 0).collect();
            live.sort_by(|x, y| {
                y.live
                    .cmp(&x.live)
                    .then_with(|| x.location.cmp(&y.location))
            });
            live.into_iter()
                .take(TOP_GROUPS)
                .map(|g| group(g, false))
                .collect()
        },
        changes,
    }
}

fn waits(a: &Analysis) -> Option<WaitsOut> {
    use crate::model::Agent;
    let d = &a.waits;
    let (agent, note) = match &d.agent {
        Agent::Unknown => return None,
        Agent::Absent => (AgentStatus::Absent, None),
        Agent::Unavailable(why) => (AgentStatus::Unavailable, Some(why.clone())),
        Agent::Ready { .. } => (AgentStatus::Ready, d.error.clone()),
    };
    Some(WaitsOut {
        agent,
        note,
        last: d.last.map(|c| CaptureCostOut {
            age_secs: secs(a.now.since(c.taken_at)),
            tasks: c.tasks as u64,
            distinct_stacks: c.traces as u64,
            paused_secs: secs(c.capture),
            resolve_secs: secs(c.resolve),
            bytes: c.bytes as u64,
        }),
    })
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn group_out(
    g: &Group,
    a: &Analysis,
    src: &dyn Source,
    ctx: &Context,
    with_samples: bool,
) -> GroupOut {
    let history = src
        .history(g.key)
        .map(|h| {
            h.series()
                .into_iter()
                .map(|(t, c)| (t.secs_f64(), c))
                .collect()
        })
        .unwrap_or_default();
    let samples = if with_samples {
        g.tasks
            .iter()
            .filter(|r| r.verdict.state != crate::analysis::TaskState::Completed)
            .take(SAMPLES)
            .map(|r| {
                let d = src.sample(usize::from(r.target), r.id);
                SampleOut {
                    id: r.id,
                    tokio_id: d.as_ref().and_then(|d| d.tokio_id),
                    name: d.as_ref().and_then(|d| d.name.clone()),
                    state: r.verdict.state,
                    reason: r.verdict.reason,
                    for_secs: r.verdict.duration(a.now).map(secs),
                    age_secs: r.created.map(|c| secs(a.now.since(c))),
                    fields: d.map(|d| d.fields).unwrap_or_default(),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let window_min = ctx.window.as_secs_f64() / 60.0;
    GroupOut {
        location: g.location.to_string(),
        kind: g.kind,
        tasks: g.live,
        change_over_window: g.delta,
        per_minute: if window_min > 0.0 {
            g.delta as f64 / window_min
        } else {
            0.0
        },
        suspect: g.suspect.as_ref().map(|s| SuspectOut {
            kind: s.kind,
            reason: s.reason.clone(),
        }),
        advice: g.advice.as_ref().map(|a| super::schema::AdviceOut {
            cause: a.cause.clone(),
            fix: a.fix.clone(),
        }),
        running: g.running,
        scheduled: g.scheduled,
        idle: g.idle,
        oldest_secs: g.oldest.map(secs),
        longest_idle_secs: g.longest_idle.map(secs),
        blocked_on: g
            .reasons
            .iter()
            .map(|r| MixOut {
                reason: r.reason,
                label: r.reason.short(),
                phrase: r.reason.phrase(),
                tasks: r.tasks,
                percent: wording::percent(r.tasks, g.live),
                longest_secs: secs(r.longest),
                captured: r.captured,
                inferred: r.inferred,
            })
            .collect(),
        waits: g.waits_text(),
        stacks: g
            .stacks
            .iter()
            .take(STACKS)
            .map(|s| StackOut {
                tasks: s.tasks,
                reason: s.reason,
                label: s.label.clone(),
                leaves: s.trace.leaves.clone(),
            })
            .collect(),
        names: g
            .names
            .iter()
            .map(|(n, c)| NameOut {
                name: n.to_string(),
                tasks: *c,
            })
            .collect(),
        distinct_names: g.distinct_names,
        spawned_from: g
            .spawned_from
            .iter()
            .map(|(l, n)| NameOut {
                name: l.to_string(),
                tasks: (*n).min(u64::from(u32::MAX)) as u32,
            })
            .collect(),
        history,
        samples,
        warnings: g
            .lints
            .iter()
            .map(|(l, n)| WarningOut {
                lint: *l,
                label: l.label(),
                phrase: l.phrase(),
                tasks: *n,
            })
            .collect(),
        targets: g
            .shares
            .iter()
            .map(|s| TargetShareOut {
                target: s.target.to_string(),
                tasks: s.live,
                change_over_window: s.delta,
                suspect: s.suspect,
            })
            .collect(),
    }
}

pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
