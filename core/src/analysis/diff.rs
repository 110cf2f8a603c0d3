//! What changed between two moments, by spawn location: the taskscope
//! equivalent of `go tool pprof -diff_base`. One diff serves the TUI view,
//! `diff --format text|json`, the live baseline and reports.

use super::{Analysis, Group, ReasonCount};
use crate::model::TaskKind;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Grown,
    Shrunk,
    /// Same count, but most tasks now wait on something else.
    MixChanged,
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DiffRow {
    pub location: Arc<str>,
    pub kind: TaskKind,
    pub change: Change,
    pub before: u32,
    pub after: u32,
    pub delta: i64,
    /// Change per minute of target time between the two moments.
    pub per_minute: f64,
    pub mix_before: String,
    pub mix_after: String,
    /// The newer side's suspect reason, if any.
    pub suspect: Option<String>,
}

impl DiffRow {
    /// "100% sleep" when the mix held, "100% running → 100% interval" when
    /// it changed.
    pub fn mix_text(&self) -> String {
        if self.mix_before == self.mix_after || self.mix_before.is_empty() {
            self.mix_after.clone()
        } else if self.mix_after.is_empty() {
            self.mix_before.clone()
        } else {
            format!("{} → {}", self.mix_before, self.mix_after)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Diff {
    /// Target time between the two moments, in seconds.
    #[serde(serialize_with = "secs")]
    #[schemars(with = "f64")]
    pub elapsed: Duration,
    pub tasks_before: u32,
    pub tasks_after: u32,
    pub rows: Vec<DiffRow>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The reason most tasks of a group wait on, ignoring the transient
/// running/scheduled states (a task woken every second flips between them
/// and its wait from one moment to the next, which is not a change).
fn main_wait(reasons: &[ReasonCount]) -> Option<super::Reason> {
    reasons
        .iter()
        .filter(|r| r.reason.is_wait())
        .max_by(|a, b| a.tasks.cmp(&b.tasks).then(b.reason.cmp(&a.reason)))
        .map(|r| r.reason)
}

/// Compares two analyses by group (location and kind). Groups whose count
/// and mix are unchanged are left out, so identical inputs give no rows.
pub fn diff(old: &Analysis, new: &Analysis) -> Diff {
    let key = |g: &Group| (g.location.clone(), g.kind);
    let before: HashMap<(Arc<str>, TaskKind), &Group> = old
        .groups
        .iter()
        .filter(|g| g.live > 0)
        .map(|g| (key(g), g))
        .collect();
    let after: HashMap<(Arc<str>, TaskKind), &Group> = new
        .groups
        .iter()
        .filter(|g| g.live > 0)
        .map(|g| (key(g), g))
        .collect();
    let elapsed = new.now.since(old.now);
    let minutes = elapsed.as_secs_f64() / 60.0;
    let mut rows = Vec::new();
    let mut keys: Vec<&(Arc<str>, TaskKind)> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (b, a) = (before.get(k), after.get(k));
        let (nb, na) = (b.map_or(0, |g| g.live), a.map_or(0, |g| g.live));
        let delta = i64::from(na) - i64::from(nb);
        let change = match (b, a) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            _ if delta > 0 => Change::Grown,
            _ if delta < 0 => Change::Shrunk,
            (Some(b), Some(a)) if matches!((main_wait(&b.reasons), main_wait(&a.reasons)), (Some(x), Some(y)) if x != y && !x.same_wait(y)) => {
                Change::MixChanged
            }
            _ => continue,
        };
        rows.push(DiffRow {
            location: k.0.clone(),
            kind: k.1,
            change,
            before: nb,
            after: na,
            delta,
            per_minute: if minutes > 0.0 {
                delta as f64 / minutes
            } else {
                0.0
            },
            mix_before: b
                .map(|g| super::reason::mix_text(&g.reasons, 3))
                .unwrap_or_default(),
            mix_after: a
                .map(|g| super::reason::mix_text(&g.reasons, 3))
                .unwrap_or_default(),
            suspect: a.and_then(|g| g.suspect.as_ref()).map(|s| s.reason.clone()),
        });
    }
    rows.sort_by(|x, y| {
        y.suspect
            .is_some()
            .cmp(&x.suspect.is_some())
            .then(y.delta.abs().cmp(&x.delta.abs()))
            .then_with(|| x.location.cmp(&y.location))
    });
    Diff {
        elapsed,
        tasks_before: old.totals.live,
        tasks_after: new.totals.live,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Reason, Totals};
    use crate::model::{GroupKey, LocId, Ts};

    fn group(loc: &str, live: u32, reason: Reason) -> Group {
        let mut g = Group::new(
            GroupKey {
                loc: LocId(0),
                kind: TaskKind::Task,
            },
            Arc::from(loc),
        );
        g.live = live;
        g.idle = live;
        g.reasons = vec![ReasonCount {
            reason,
            tasks: live,
            longest: Duration::ZERO,
            ..ReasonCount::default()
        }];
        g
    }

    fn analysis(secs: i64, groups: Vec<Group>) -> Analysis {
        Analysis {
            now: Ts::from_secs(1_800_000_000 + secs),
            totals: Totals {
                live: groups.iter().map(|g| g.live).sum(),
                ..Totals::default()
            },
            groups,
            health: Default::default(),
            waits: Default::default(),
            source: None,
            agent_version: None,
        }
    }

    #[test]
    fn identical_states_give_an_empty_diff() {
        let a = analysis(
            0,
            vec![
                group("a.rs:1:1", 5, Reason::Sleep),
                group("b.rs:1:1", 2, Reason::Untracked),
            ],
        );
        assert!(diff(&a, &a).rows.is_empty());
    }

    #[test]
    fn changes_are_classified_and_sorted_by_absolute_growth() {
        let old = analysis(
            0,
            vec![
                group("grow.rs:1:1", 10, Reason::ChannelSend),
                group("shrink.rs:1:1", 8, Reason::Untracked),
                group("gone.rs:1:1", 3, Reason::Sleep),
                group("mix.rs:1:1", 4, Reason::Sleep),
            ],
        );
        let new = analysis(
            120,
            vec![
                group("grow.rs:1:1", 70, Reason::ChannelSend),
                group("shrink.rs:1:1", 2, Reason::Untracked),
                group("new.rs:1:1", 1, Reason::Oneshot),
                group("mix.rs:1:1", 4, Reason::Mutex),
            ],
        );
        let d = diff(&old, &new);
        let got: Vec<(&str, Change, i64)> = d
            .rows
            .iter()
            .map(|r| (&*r.location, r.change, r.delta))
            .collect();
        assert_eq!(
            got,
            vec![
                ("grow.rs:1:1", Change::Grown, 60),
                ("shrink.rs:1:1", Change::Shrunk, -6),
                ("gone.rs:1:1", Change::Removed, -3),
                ("new.rs:1:1", Change::Added, 1),
                ("mix.rs:1:1", Change::MixChanged, 0),
            ]
        );
        assert_eq!(d.rows[0].per_minute, 30.0);
        assert_eq!(d.elapsed, Duration::from_secs(120));
    }

    #[test]
    fn a_capture_naming_an_untracked_wait_is_not_a_change() {
        let old = analysis(0, vec![group("conn.rs:1:1", 5, Reason::Untracked)]);
        let new = analysis(60, vec![group("conn.rs:1:1", 5, Reason::SocketRead)]);
        assert!(diff(&old, &new).rows.is_empty());
        let old = analysis(0, vec![group("send.rs:1:1", 5, Reason::Semaphore)]);
        let new = analysis(60, vec![group("send.rs:1:1", 5, Reason::ChannelSend)]);
        assert!(diff(&old, &new).rows.is_empty());
        // A real change still is one.
        let new = analysis(60, vec![group("send.rs:1:1", 5, Reason::ChannelRecv)]);
        assert_eq!(diff(&old, &new).rows.len(), 1);
    }

    #[test]
    fn suspects_lead_the_diff() {
        let old = analysis(
            0,
            vec![
                group("big.rs:1:1", 10, Reason::Sleep),
                group("leak.rs:1:1", 1, Reason::Sleep),
            ],
        );
        let mut leak = group("leak.rs:1:1", 3, Reason::Sleep);
        leak.suspect = Some(crate::analysis::Suspect {
            kind: crate::analysis::SuspectKind::Growing,
            reason: "+2".into(),
        });
        let new = analysis(60, vec![group("big.rs:1:1", 100, Reason::Sleep), leak]);
        let d = diff(&old, &new);
        assert_eq!(&*d.rows[0].location, "leak.rs:1:1");
    }

    #[test]
    fn diff_is_antisymmetric() {
        let a = analysis(
            0,
            vec![
                group("x.rs:1:1", 5, Reason::Sleep),
                group("y.rs:1:1", 9, Reason::Sleep),
            ],
        );
        let b = analysis(
            60,
            vec![
                group("x.rs:1:1", 8, Reason::Sleep),
                group("z.rs:1:1", 2, Reason::Sleep),
            ],
        );
        let mut fwd: Vec<(Arc<str>, i64)> = diff(&a, &b)
            .rows
            .iter()
            .map(|r| (r.location.clone(), r.delta))
            .collect();
        let mut back: Vec<(Arc<str>, i64)> = diff(&b, &a)
            .rows
            .iter()
            .map(|r| (r.location.clone(), -r.delta))
            .collect();
        fwd.sort();
        back.sort();
        assert_eq!(fwd, back);
    }
}
