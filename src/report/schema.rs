//! The suspect-task report's schema: what `report --format json` writes
//! (`assets/report.schema.json` is generated from these types), and the
//! wording helpers the Markdown and HTML renderers share. `model` builds
//! it from an analysis.

use crate::analysis::diff::Diff;
use crate::analysis::{DataSource, Reason, SuspectKind, TaskState};
use crate::model::{Frame, TaskKind};
use crate::report::diff::Side;
use crate::text;
use crate::wording;
use schemars::JsonSchema;
use serde::Serialize;

/// What the target's taskscope-agent could do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// The target serves no agent: reasons come from console data.
    Absent,
    /// An agent that cannot capture (platform, cfg); `note` says why.
    Unavailable,
    /// Captures available.
    Ready,
}

/// What `report --format json` and `watch --format json` write.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[schemars(title = "taskscope suspect-task report, version 1")]
pub struct Report {
    #[schemars(extend("const" = "taskscope-report"))]
    pub format: &'static str,
    #[schemars(extend("const" = 1))]
    pub version: u32,
    pub target: String,
    /// Where the data came from: "live", or the snapshot file(s).
    pub source: String,
    /// Which of the target's sources: "hooks" (taskscope-agent's exact
    /// counts per spawn location), "console" (console-subscriber),
    /// "both" (console-subscriber with the agent's captured waits),
    /// "mixed" (targets that differ); absent when not known (a snapshot
    /// from before taskscope recorded it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,
    /// The target's taskscope-agent version, when one answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    pub generated_at: String,
    /// The target's clock at the end of the watch.
    pub target_time: String,
    pub watched_secs: f64,
    pub window_secs: f64,
    pub totals: TotalsOut,
    /// What the target's taskscope-agent gave (`None` when not known, e.g.
    /// for reports from snapshots).
    pub waits: Option<WaitsOut>,
    pub warnings: Vec<String>,
    pub suspects: Vec<GroupOut>,
    pub top_groups: Vec<GroupOut>,
    pub changes: Option<ChangesOut>,
}

impl Report {
    /// Which source, in words: "hooks source (taskscope-agent 0.1.0)".
    pub fn data(&self) -> Option<String> {
        Some(self.data_source?.describe(self.agent_version.as_deref()))
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WaitsOut {
    pub agent: AgentStatus,
    /// Why captures are unavailable, or why the last one failed.
    pub note: Option<String>,
    /// The capture the reasons come from.
    pub last: Option<CaptureCostOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct CaptureCostOut {
    /// Seconds between the capture and the end of the watch (target clock).
    pub age_secs: f64,
    pub tasks: u64,
    pub distinct_stacks: u64,
    /// How long the target's runtime was held for the capture.
    pub paused_secs: f64,
    pub resolve_secs: f64,
    pub bytes: u64,
}

impl WaitsOut {
    /// One sentence for the Markdown and HTML headers.
    pub fn describe(&self) -> String {
        let last = match &self.last {
            Some(c) => format!(
                "reasons marked from a capture taken {} before the end: {} tasks, {} distinct stacks, the target paused {}",
                text::secs(Some(c.age_secs)),
                text::count(c.tasks),
                c.distinct_stacks,
                text::secs(Some(c.paused_secs))
            ),
            None => "no capture taken".into(),
        };
        match (self.agent, &self.note) {
            (AgentStatus::Absent, _) => {
                "none: the target has no taskscope-agent (reasons from console data)".into()
            }
            (AgentStatus::Unavailable, Some(why)) => format!("unavailable: {why}"),
            (_, Some(err)) => format!("{last}; the last capture failed: {err}"),
            _ => last,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TotalsOut {
    pub tasks: u32,
    pub groups: u32,
    pub suspects: u32,
    pub running: u32,
    pub scheduled: u32,
    pub idle: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct GroupOut {
    pub location: String,
    pub kind: TaskKind,
    pub tasks: u32,
    pub change_over_window: i64,
    pub per_minute: f64,
    pub suspect: Option<SuspectOut>,
    /// A suspect's likely cause and its fix, when a rule fits its
    /// evidence (what it waits on, where it was spawned, its stacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<AdviceOut>,
    pub running: u32,
    pub scheduled: u32,
    pub idle: u32,
    pub oldest_secs: Option<f64>,
    pub longest_idle_secs: Option<f64>,
    pub blocked_on: Vec<MixOut>,
    /// How the group's waits are known (the hooks source): captured,
    /// inferred, out of reach; for a library's site out of reach, what its
    /// tasks are and how to capture them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waits: Option<String>,
    /// Live tasks split by identical async stack, largest first (empty
    /// without a capture).
    pub stacks: Vec<StackOut>,
    pub names: Vec<NameOut>,
    pub distinct_names: u32,
    /// Where the tasks that spawned these were spawned, most first (the
    /// hooks source; empty otherwise).
    pub spawned_from: Vec<NameOut>,
    /// `[target time (Unix seconds), count]`, oldest first.
    pub history: Vec<(f64, i64)>,
    pub samples: Vec<SampleOut>,
    /// With several targets (`watch A B C`): each target's part of the
    /// group, most tasks first; absent for one target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetShareOut>,
    /// tokio-console's warnings on the group's live tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<WarningOut>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct AdviceOut {
    pub cause: String,
    pub fix: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct WarningOut {
    pub lint: crate::analysis::lint::Lint,
    /// "self-wakes", "never yields", "large future", "auto-boxed future".
    pub label: &'static str,
    /// What it means, as a sentence's predicate.
    pub phrase: &'static str,
    pub tasks: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TargetShareOut {
    pub target: String,
    pub tasks: u32,
    pub change_over_window: i64,
    /// Whether the group is suspect on this target.
    pub suspect: bool,
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

    /// " [a, b, c +N names]": the group's most common names, through
    /// `escape`.
    pub fn names_suffix(&self, escape: fn(&str) -> String) -> String {
        let names = self.names.iter().map(|n| n.name.as_str());
        let parents = self
            .spawned_from
            .iter()
            .map(|p| (p.name.as_str(), u64::from(p.tasks)));
        let shares = self
            .targets
            .iter()
            .map(|t| (t.target.as_str(), t.tasks, t.suspect));
        let lints = self.warnings.iter().map(|w| (w.label, u64::from(w.tasks)));
        wording::names(names, self.distinct_names, 3, 60, escape)
            + &wording::targets(shares, 8, escape)
            + &wording::ancestry(parents, 3, escape)
            + &escape(&wording::lints(lints))
    }
}

impl SampleOut {
    /// tokio's task id, or the span id when the target sent none.
    pub fn label(&self) -> String {
        self.tokio_id
            .map(|i| i.to_string())
            .unwrap_or_else(|| format!("span {}", self.id))
    }

    /// The sample-table row both renderings print: task, name, what it
    /// waits on, for how long, age and fields, each through `escape`.
    pub fn cells(&self, escape: fn(&str) -> String) -> [String; 6] {
        [
            self.label(),
            escape(self.name.as_deref().unwrap_or("")),
            self.reason.key().to_string(),
            text::secs(self.for_secs),
            text::secs(self.age_secs),
            self.fields_text(escape),
        ]
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

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SuspectOut {
    pub kind: SuspectKind,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct MixOut {
    pub reason: Reason,
    pub label: &'static str,
    pub phrase: &'static str,
    pub tasks: u32,
    pub percent: u32,
    pub longest_secs: f64,
    /// How many of them have this reason from a capture (a capture: a
    /// fact).
    pub captured: u32,
    /// How many of them have it inferred, not seen: from their site's
    /// captured tasks, or from a library's known shape. The rest have it
    /// from what the source itself says (console data, or the agent's
    /// counts: running, not captured yet, out of reach).
    pub inferred: u32,
}

impl MixOut {
    /// Where most of these tasks' reason comes from.
    pub fn source(&self) -> &'static str {
        wording::source(self.captured, self.inferred, self.tasks, self.reason)
    }
}

/// Tasks of a group sharing one async stack (from a capture).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct StackOut {
    pub tasks: u32,
    pub reason: Reason,
    /// One line: the task's own frame and the tokio call it waits in.
    pub label: String,
    /// Each leaf's frames, outermost first.
    pub leaves: Vec<Vec<Frame>>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct NameOut {
    pub name: String,
    pub tasks: u32,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct SampleOut {
    pub id: u64,
    pub tokio_id: Option<u64>,
    pub name: Option<String>,
    pub state: TaskState,
    pub reason: Reason,
    pub for_secs: Option<f64>,
    pub age_secs: Option<f64>,
    pub fields: Vec<[String; 2]>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ChangesOut {
    pub old: Side,
    pub new: Side,
    #[serde(flatten)]
    pub diff: Diff,
}
