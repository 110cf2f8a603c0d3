//! The suspect-task report as data: built once from an analysis, rendered
//! as Markdown, JSON (schema: `assets/report.schema.json`) or HTML.

use crate::analysis::diff::Diff;
use crate::analysis::{Analysis, Group, SuspectKind, health, wording};
use crate::model::{CountHistory, GroupKey, State, TaskKind};
use crate::report::diff::Side;
use crate::snapshot::Loaded;
use crate::text;
use serde::Serialize;
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
    fn sample(&self, id: u64) -> Option<SampleDetail>;
    fn history(&self, key: GroupKey) -> Option<&CountHistory>;
}

/// A task's details beyond its classification.
pub struct SampleDetail {
    pub tokio_id: Option<u64>,
    pub name: Option<String>,
    pub fields: Vec<[String; 2]>,
}

impl Source for State {
    fn sample(&self, id: u64) -> Option<SampleDetail> {
        let t = self.tasks.get(&id)?;
        Some(SampleDetail {
            tokio_id: t.tokio_id.map(std::num::NonZeroU64::get),
            name: t.name.as_deref().map(str::to_string),
            fields: t
                .fields
                .iter()
                .map(|(k, v)| [k.to_string(), v.to_string()])
                .collect(),
        })
    }

    fn history(&self, key: GroupKey) -> Option<&CountHistory> {
        self.histories.get(&key)
    }
}

impl Source for Loaded {
    fn sample(&self, id: u64) -> Option<SampleDetail> {
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

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub version: u32,
    pub target: String,
    /// Where the data came from: "live", or the snapshot file(s).
    pub source: String,
    pub generated_at: String,
    /// The target's clock at the end of the watch.
    pub target_time: String,
    pub watched_secs: f64,
    pub window_secs: f64,
    pub totals: TotalsOut,
    /// What the target's taskscope-agent gave (`None` when not known, e.g.
    /// for reports from snapshots).
    pub task_dumps: Option<TaskDumpsOut>,
    pub warnings: Vec<String>,
    pub suspects: Vec<GroupOut>,
    pub top_groups: Vec<GroupOut>,
    pub changes: Option<ChangesOut>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskDumpsOut {
    /// "absent", "unavailable" or "ready".
    pub agent: &'static str,
    /// Why dumps are unavailable, or why the last one failed.
    pub note: Option<String>,
    /// The dump the reasons come from.
    pub last: Option<DumpCostOut>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DumpCostOut {
    /// Seconds between the dump and the end of the watch (target clock).
    pub age_secs: f64,
    pub tasks: u64,
    pub distinct_stacks: u64,
    /// How long the target's runtime was held for the capture.
    pub paused_secs: f64,
    pub resolve_secs: f64,
    pub bytes: u64,
}

impl TaskDumpsOut {
    fn of(a: &Analysis) -> Option<TaskDumpsOut> {
        use crate::model::Agent;
        let d = &a.dumps;
        let (agent, note) = match &d.agent {
            Agent::Unknown => return None,
            Agent::Absent => ("absent", None),
            Agent::Unavailable(why) => ("unavailable", Some(why.clone())),
            Agent::Ready { .. } => ("ready", d.error.clone()),
        };
        Some(TaskDumpsOut {
            agent,
            note,
            last: d.last.map(|c| DumpCostOut {
                age_secs: secs(a.now.since(c.taken_at)),
                tasks: c.tasks as u64,
                distinct_stacks: c.traces as u64,
                paused_secs: secs(c.capture),
                resolve_secs: secs(c.resolve),
                bytes: c.bytes as u64,
            }),
        })
    }

    /// One sentence for the Markdown and HTML headers.
    pub fn describe(&self) -> String {
        let last = match &self.last {
            Some(c) => format!(
                "reasons marked from a task dump taken {} before the end: {} tasks, {} distinct stacks, the target paused {}",
                text::secs(Some(c.age_secs)),
                text::count(c.tasks),
                c.distinct_stacks,
                text::secs(Some(c.paused_secs))
            ),
            None => "no dump taken".into(),
        };
        match (self.agent, &self.note) {
            ("absent", _) => {
                "none: the target has no taskscope-agent (reasons from console data)".into()
            }
            ("unavailable", Some(why)) => format!("unavailable: {why}"),
            (_, Some(err)) => format!("{last}; the last dump failed: {err}"),
            _ => last,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TotalsOut {
    pub tasks: u32,
    pub groups: u32,
    pub suspects: u32,
    pub running: u32,
    pub scheduled: u32,
    pub idle: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupOut {
    pub location: String,
    #[serde(serialize_with = "TaskKind::serialize_label")]
    pub kind: TaskKind,
    pub tasks: u32,
    pub change_over_window: i64,
    pub per_minute: f64,
    pub suspect: Option<SuspectOut>,
    pub running: u32,
    pub scheduled: u32,
    pub idle: u32,
    pub oldest_secs: Option<f64>,
    pub longest_idle_secs: Option<f64>,
    pub blocked_on: Vec<MixOut>,
    /// Live tasks split by identical async stack, largest first (empty
    /// without a task dump).
    pub stacks: Vec<StackOut>,
    pub names: Vec<NameOut>,
    pub distinct_names: u32,
    /// `[target time (Unix seconds), count]`, oldest first.
    pub history: Vec<(f64, i64)>,
    pub samples: Vec<SampleOut>,
}

impl GroupOut {
    /// "97% chan send, 3% running".
    pub fn mix_text(&self) -> String {
        self.blocked_on
            .iter()
            .take(3)
            .map(|m| format!("{}% {}", m.percent, m.label))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// " (blocking)" for tasks that are not plain tasks, through `escape`.
    pub fn kind_suffix(&self, escape: fn(&str) -> String) -> String {
        escape(&wording::kind_suffix(self.kind))
    }

    /// "a ×3, b ×1": every name kept, with counts, through `escape`.
    pub fn names_counts(&self, escape: fn(&str) -> String) -> String {
        let v: Vec<String> = self
            .names
            .iter()
            .map(|n| format!("{} ×{}", escape(&n.name), n.tasks))
            .collect();
        v.join(", ")
    }

    /// " [a, b, c +N]": the group's most common names, through `escape`.
    pub fn names_suffix(&self, escape: fn(&str) -> String) -> String {
        if self.names.is_empty() {
            return String::new();
        }
        let shown: Vec<String> = self
            .names
            .iter()
            .take(3)
            .map(|n| escape(&text::sanitize(&n.name, 60)))
            .collect();
        let more = (self.distinct_names as usize).saturating_sub(shown.len());
        let more = if more > 0 {
            format!(" +{more}")
        } else {
            String::new()
        };
        format!(" [{}{more}]", shown.join(", "))
    }
}

impl SampleOut {
    /// tokio's task id, or the span id when the target sent none.
    pub fn label(&self) -> String {
        self.tokio_id
            .map(|i| i.to_string())
            .unwrap_or_else(|| format!("span {}", self.id))
    }

    /// "k=v k=v", each part through `escape`.
    pub fn fields_text(&self, escape: fn(&str) -> String) -> String {
        let parts: Vec<String> = self
            .fields
            .iter()
            .map(|[k, v]| format!("{}={}", escape(k), escape(v)))
            .collect();
        parts.join(" ")
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SuspectOut {
    /// "growing" or "stuck".
    pub kind: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct MixOut {
    pub reason: &'static str,
    pub label: &'static str,
    pub phrase: &'static str,
    pub tasks: u32,
    pub percent: u32,
    pub longest_secs: f64,
    /// How many of them have this reason from a task dump (the rest from
    /// console data).
    pub from_dump: u32,
}

impl MixOut {
    /// Where most of these tasks' reason comes from.
    pub fn source(&self) -> &'static str {
        wording::source(self.from_dump, self.tasks)
    }
}

/// Tasks of a group sharing one async stack (from a task dump).
#[derive(Clone, Debug, Serialize)]
pub struct StackOut {
    pub tasks: u32,
    pub reason: &'static str,
    /// One line: the task's own frame and the tokio call it waits in.
    pub label: String,
    /// Each leaf's frames, outermost first.
    pub leaves: Vec<Vec<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NameOut {
    pub name: String,
    pub tasks: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct SampleOut {
    pub id: u64,
    pub tokio_id: Option<u64>,
    pub name: Option<String>,
    pub state: &'static str,
    pub reason: &'static str,
    pub for_secs: Option<f64>,
    pub age_secs: Option<f64>,
    pub fields: Vec<[String; 2]>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChangesOut {
    pub old: Side,
    pub new: Side,
    #[serde(flatten)]
    pub diff: Diff,
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
        task_dumps: TaskDumpsOut::of(a),
        warnings: health::warnings(&a.health)
            .into_iter()
            .chain(health::dump_warnings(&a.dumps))
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
                let d = src.sample(r.id);
                SampleOut {
                    id: r.id,
                    tokio_id: d.as_ref().and_then(|d| d.tokio_id),
                    name: d.as_ref().and_then(|d| d.name.clone()),
                    state: r.verdict.state.key(),
                    reason: r.verdict.reason.key(),
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
            kind: match s.kind {
                SuspectKind::Growing => "growing",
                SuspectKind::Stuck => "stuck",
            },
            reason: s.reason.clone(),
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
                reason: r.reason.key(),
                label: r.reason.short(),
                phrase: r.reason.phrase(),
                tasks: r.tasks,
                percent: wording::percent(r.tasks, g.live),
                longest_secs: secs(r.longest),
                from_dump: r.from_dump,
            })
            .collect(),
        stacks: g
            .stacks
            .iter()
            .take(STACKS)
            .map(|s| StackOut {
                tasks: s.tasks,
                reason: s.reason.key(),
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
        history,
        samples,
    }
}

pub fn to_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
