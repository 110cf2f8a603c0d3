//! Several targets (replicas of one service) in one view: each target is
//! analysed on its own (its own clock, its own growth test), then the
//! groups are merged by spawn location and kind, with a per-target
//! breakdown (`Group::shares`) that says which replica holds the tasks.
//!
//! Task ids from different targets collide, so a merged group's task rows
//! carry their target's index (`TaskRow::target`), to look each task up
//! in its own target's model.

use super::reason::ReasonCount;
use super::types::{Share, display_order};
use super::{Analysis, Group, StackCount, Suspect, Totals};
use crate::model::{GroupKey, Locations};
use std::collections::HashMap;
use std::sync::Arc;

/// What stays the same between merges: the merged groups' keys (so the
/// view's selection survives a refresh).
#[derive(Default, Debug)]
pub struct Merger {
    locations: Locations,
    /// The last merge's groups: merged key → (target, that target's key).
    origins: HashMap<GroupKey, Vec<(usize, GroupKey)>>,
}

impl Merger {
    /// Merges the analyses of several targets (label, analysis), in the
    /// targets' order. `now` and the health are the first target's.
    pub fn merge(&mut self, parts: &[(Arc<str>, &Analysis)]) -> Option<Analysis> {
        let first = parts.first()?.1;
        let mut order: Vec<GroupKey> = Vec::new();
        let mut merged: HashMap<GroupKey, Group> = HashMap::new();
        self.origins.clear();
        for (t, (label, a)) in parts.iter().enumerate() {
            for g in &a.groups {
                let key = GroupKey {
                    loc: self.locations.intern_str(&g.location),
                    kind: g.kind,
                };
                self.origins.entry(key).or_default().push((t, g.key));
                let share = Share {
                    target: label.clone(),
                    live: g.live,
                    delta: g.delta,
                    suspect: g.suspect.is_some(),
                };
                match merged.get_mut(&key) {
                    Some(m) => fold(m, g, t, share),
                    None => {
                        let mut m = g.clone();
                        m.key = key;
                        for row in &mut m.tasks {
                            row.target = t as u16;
                        }
                        if let Some(s) = &mut m.suspect {
                            s.reason = format!("{label}: {}", s.reason);
                        }
                        m.shares = vec![share];
                        order.push(key);
                        merged.insert(key, m);
                    }
                }
            }
        }
        let mut groups: Vec<Group> = order
            .into_iter()
            .filter_map(|k| merged.remove(&k))
            .map(|mut g| {
                g.shares
                    .sort_by(|a, b| b.live.cmp(&a.live).then_with(|| a.target.cmp(&b.target)));
                g.advice = super::advice::advise(&g);
                g
            })
            .collect();
        groups.sort_by(display_order);
        let mut totals = Totals::default();
        for (_, a) in parts {
            totals.live = totals.live.saturating_add(a.totals.live);
            totals.running = totals.running.saturating_add(a.totals.running);
            totals.scheduled = totals.scheduled.saturating_add(a.totals.scheduled);
            totals.idle = totals.idle.saturating_add(a.totals.idle);
            totals.finished = totals.finished.saturating_add(a.totals.finished);
        }
        totals.groups = groups.len() as u32;
        totals.suspects = groups.iter().filter(|g| g.suspect.is_some()).count() as u32;
        Some(Analysis {
            now: first.now,
            groups,
            totals,
            health: first.health.clone(),
            waits: first.waits.clone(),
            source: super::DataSource::common(parts.iter().map(|(_, a)| a.source)),
            agent_version: first.agent_version.clone(),
        })
    }
}

impl Merger {
    /// What the live view and the headless commands both show: each
    /// target's model analysed on its own clock, then, for a fleet, merged
    /// by spawn location (a fleet of one still carries its share). Targets
    /// with no update yet are left out; `None` when none has one.
    pub fn analyse<'a>(
        &mut self,
        fleet: bool,
        targets: impl IntoIterator<Item = (Arc<str>, &'a crate::model::State)>,
        params: &super::Params,
    ) -> Option<Analysis> {
        let mut parts: Vec<(Arc<str>, Analysis)> = targets
            .into_iter()
            .filter_map(|(label, st)| Some((label, Analysis::run(st, st.log.now?, params))))
            .collect();
        if !fleet {
            return parts.pop().map(|(_, a)| a);
        }
        let refs: Vec<(Arc<str>, &Analysis)> = parts.iter().map(|(l, a)| (l.clone(), a)).collect();
        self.merge(&refs)
    }

    /// Where the last merge's group `key` came from: (target index, the
    /// group's key in that target's model), in the targets' order.
    pub fn origins(&self, key: GroupKey) -> &[(usize, GroupKey)] {
        self.origins.get(&key).map_or(&[], Vec::as_slice)
    }
}

/// Adds target `t`'s group `g` to the merged group `m`.
fn fold(m: &mut Group, g: &Group, t: usize, share: Share) {
    m.live += g.live;
    m.running += g.running;
    m.scheduled += g.scheduled;
    m.idle += g.idle;
    m.finished += g.finished;
    m.oldest = m.oldest.max(g.oldest);
    m.longest_idle = m.longest_idle.max(g.longest_idle);
    m.delta += g.delta;
    m.reasons = merge_reasons(&m.reasons, &g.reasons);
    m.names = merge_counted(&m.names, &g.names, 5);
    m.distinct_names = m.distinct_names.max(g.distinct_names);
    let len = m.spark.len().max(g.spark.len());
    // Sparks end at each target's now: align them on the right.
    let pad = |s: &[Option<u64>]| {
        let mut v = vec![None; len - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (a, b) = (pad(&m.spark), pad(&g.spark));
    m.spark = a
        .iter()
        .zip(&b)
        .map(|(x, y)| match (x, y) {
            (None, None) => None,
            _ => Some(x.unwrap_or(0) + y.unwrap_or(0)),
        })
        .collect();
    m.tasks.extend(g.tasks.iter().map(|r| {
        let mut r = *r;
        r.target = t as u16;
        r
    }));
    m.growth.growing |= g.growth.growing;
    m.growth.z = m.growth.z.max(g.growth.z);
    m.growth.delta += g.growth.delta;
    m.growth.seconds = m.growth.seconds.max(g.growth.seconds);
    m.growth.persisting += g.growth.persisting;
    m.suspect = match (m.suspect.take(), &g.suspect) {
        (Some(mut s), Some(_)) => {
            if !s.reason.ends_with("more targets)") {
                s.reason.push_str(" (and on more targets)");
            }
            Some(s)
        }
        (Some(s), None) => Some(s),
        (None, Some(s)) => Some(Suspect {
            kind: s.kind,
            reason: format!("{}: {}", share.target, s.reason),
        }),
        (None, None) => None,
    };
    m.stacks = merge_stacks(&m.stacks, &g.stacks);
    m.spawned_from = merge_counted(&m.spawned_from, &g.spawned_from, usize::MAX);
    m.spawned_outside += g.spawned_outside;
    m.lints = merge_counted(&m.lints, &g.lints, usize::MAX);
    m.shares.push(share);
}

fn merge_reasons(a: &[ReasonCount], b: &[ReasonCount]) -> Vec<ReasonCount> {
    let mut out: Vec<ReasonCount> = a.to_vec();
    for r in b {
        match out.iter_mut().find(|o| o.reason == r.reason) {
            Some(o) => {
                o.tasks += r.tasks;
                o.captured += r.captured;
                o.inferred += r.inferred;
                o.longest = o.longest.max(r.longest);
            }
            None => out.push(*r),
        }
    }
    out.sort_by(|x, y| y.tasks.cmp(&x.tasks).then(x.reason.cmp(&y.reason)));
    out
}

fn merge_stacks(a: &[StackCount], b: &[StackCount]) -> Vec<StackCount> {
    let mut out: Vec<StackCount> = a.to_vec();
    for s in b {
        match out
            .iter_mut()
            .find(|o| o.label == s.label && o.reason == s.reason)
        {
            Some(o) => o.tasks += s.tasks,
            None => out.push(s.clone()),
        }
    }
    out.sort_by(|x, y| y.tasks.cmp(&x.tasks).then_with(|| x.label.cmp(&y.label)));
    out
}

/// `(key, count)` lists summed by key, most first, the first `keep`.
fn merge_counted<K: Clone + Ord, N: std::ops::AddAssign + Ord + Copy>(
    a: &[(K, N)],
    b: &[(K, N)],
    keep: usize,
) -> Vec<(K, N)> {
    let mut out: Vec<(K, N)> = a.to_vec();
    for (k, n) in b {
        match out.iter_mut().find(|(o, _)| o == k) {
            Some((_, m)) => *m += *n,
            None => out.push((k.clone(), *n)),
        }
    }
    out.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    out.truncate(keep);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Growth, SuspectKind, TaskRow};
    use crate::model::{LocId, TaskKind, Ts};

    fn group(loc: &str, id: u32, live: u32, delta: i64, suspect: bool) -> Group {
        let mut g = Group::new(
            GroupKey {
                loc: LocId(id),
                kind: TaskKind::Task,
            },
            loc.into(),
        );
        g.live = live;
        g.idle = live;
        g.delta = delta;
        g.growth = Growth {
            growing: suspect,
            delta,
            ..Growth::default()
        };
        g.suspect = suspect.then(|| Suspect {
            kind: SuspectKind::Growing,
            reason: format!("+{delta}"),
        });
        g.tasks = (0..live)
            .map(|i| TaskRow {
                id: u64::from(i) + 1,
                target: 0,
                verdict: crate::analysis::Verdict::new(
                    crate::analysis::TaskState::Idle,
                    crate::analysis::Reason::Idle,
                    None,
                ),
                created: None,
            })
            .collect();
        g.spark = vec![Some(u64::from(live))];
        g
    }

    fn analysis(groups: Vec<Group>) -> Analysis {
        let mut totals = Totals::default();
        for g in &groups {
            totals.live = totals.live.saturating_add(g.live);
        }
        Analysis {
            now: Ts::from_nanos(1),
            groups,
            totals,
            health: Default::default(),
            waits: Default::default(),
            source: None,
            agent_version: None,
        }
    }

    #[test]
    fn groups_merge_by_location_with_a_share_per_target() {
        // The same location has different interned ids on each target.
        let a = analysis(vec![
            group("src/conn.rs:88:5", 0, 40, 30, true),
            group("src/pool.rs:1:1", 1, 4, 0, false),
        ]);
        let b = analysis(vec![
            group("src/pool.rs:1:1", 0, 4, 0, false),
            group("src/conn.rs:88:5", 1, 3, 0, false),
        ]);
        let mut m = Merger::default();
        let out = m.merge(&[("a:1".into(), &a), ("b:2".into(), &b)]).unwrap();
        assert_eq!(out.totals.live, 51);
        assert_eq!(out.totals.groups, 2);
        assert_eq!(out.totals.suspects, 1);
        let conn = &out.groups[0];
        assert_eq!(&*conn.location, "src/conn.rs:88:5");
        assert_eq!(conn.live, 43);
        assert_eq!(conn.delta, 30);
        assert_eq!(conn.suspect.as_ref().unwrap().reason, "a:1: +30");
        let shares: Vec<(&str, u32, bool)> = conn
            .shares
            .iter()
            .map(|s| (&*s.target, s.live, s.suspect))
            .collect();
        assert_eq!(shares, [("a:1", 40, true), ("b:2", 3, false)]);
        assert_eq!(conn.spark, [Some(43)]);
        // Rows say which target they come from.
        let from_b: Vec<u64> = conn
            .tasks
            .iter()
            .filter(|r| r.target == 1)
            .map(|r| r.id)
            .collect();
        assert_eq!(from_b, [1, 2, 3]);
        assert_eq!(
            m.origins(conn.key),
            [(0, a.groups[0].key), (1, b.groups[1].key)]
        );
        // Keys are stable across merges.
        let again = m.merge(&[("a:1".into(), &a), ("b:2".into(), &b)]).unwrap();
        assert_eq!(again.groups[0].key, conn.key);
    }
}
