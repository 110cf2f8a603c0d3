//! The hooks source folded into the model: the target's own groups
//! (taskscope-agent on tokio's runtime hooks) instead of per-task records,
//! and the pages of an open group's tasks. Each message is judged before
//! it is folded in: its clock (`target_clock.rs`), then each group report
//! and each site's history (`plausible.rs`); what cannot be true is set
//! aside and counted, the rest is folded in as if the liars were not
//! there. At most [`caps::MAX_TRACKED`] locations are followed.

use super::State;
use crate::model::caps;
use crate::model::counted::{AggGroup, Aggregates, GroupsUpdate, TaskPage, Tracked};
use crate::model::plausible;
use crate::model::target_clock::Verdict;
use crate::model::{CountHistory, GroupKey, TaskKind, Ts};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

impl State {
    /// A message of the hooks source: the target's own groups. Each
    /// location's spawned/terminated totals, compared with the last ones,
    /// give its births and deaths since, at the target's clock; the first
    /// message of a stream backfills the seconds the agent kept.
    pub fn apply_groups(&mut self, up: GroupsUpdate) {
        self.log.health.capped.add(&up.capped);
        let agg = self.hooks.get_or_insert_with(Aggregates::default);
        let new_agent = self.log.new_stream && agg.since.is_some_and(|s| s != up.since);
        let now = match agg.clock.judge(up.now, up.since, up.received, new_agent) {
            Verdict::Accept(t) => t,
            Verdict::SetAside => {
                self.log.health.set_aside.clock += 1;
                return;
            }
        };
        self.log.last_update_at = self.log.now;
        self.log.now = Some(now);
        self.log.health.updates += 1;
        self.log.health.horizon = Some(now);
        let origin = *self.log.history_origin.get_or_insert(now);
        if self.log.new_stream {
            self.begin_hooks_stream(now, up.since, origin);
        }
        let Some(agg) = self.hooks.as_mut() else {
            return;
        };
        let fresh = agg.since != Some(up.since);
        agg.since = Some(up.since);
        let rows = self.judge_rows(up.groups, up.now, up.since);
        let accepted: Vec<&String> = rows.iter().map(|(l, _)| l).collect();
        self.make_room(&accepted);
        if fresh && self.log.histories.is_empty() {
            self.backfill(&up.history, &rows, up.now, up.since, origin);
        }
        let mut groups = HashMap::new();
        for (location, row) in rows {
            let key = GroupKey {
                loc: self.log.locations.intern_str(&location),
                kind: TaskKind::Task,
            };
            let Some(agg) = self.hooks.as_mut() else {
                return;
            };
            let before = agg
                .tracked
                .get(&key)
                .map_or((0, 0), |t| (t.spawned, t.terminated));
            let h = self
                .log
                .histories
                .entry(key)
                .or_insert_with(|| CountHistory::new(origin));
            h.flow(
                now,
                row.spawned.saturating_sub(before.0),
                row.terminated.saturating_sub(before.1),
            );
            agg.tracked.insert(
                key,
                Tracked {
                    spawned: row.spawned,
                    terminated: row.terminated,
                    seen: now,
                },
            );
            groups.insert(key, row);
        }
        if let Some(agg) = self.hooks.as_mut() {
            agg.groups = groups;
        }
        for h in self.log.histories.values_mut() {
            h.advance_to(now);
        }
        // The first report's totals land as births in its second.
        let first = origin.minus(self.log.health.backfilled);
        self.log.health.counts_since =
            Some(Ts::from_secs(first.nanos().div_euclid(1_000_000_000) + 1));
    }

    /// A new stream's first message: the gap since the last one, and when
    /// the agent is another process (a restart), the end of everything
    /// the old one had live.
    fn begin_hooks_stream(&mut self, now: Ts, since: Ts, origin: Ts) {
        self.log.new_stream = false;
        if let (Some(before), true) = (self.log.last_update_at, self.log.health.streams > 0) {
            self.log.gaps.push((before, now));
            if self.log.gaps.len() > 100 {
                self.log.gaps.remove(0);
            }
        }
        self.log.health.streams += 1;
        self.log.health.full_state = Some(true);
        let Some(agg) = self.hooks.as_mut() else {
            return;
        };
        if agg.since.is_some_and(|s| s != since) {
            // Another process: its totals start again from zero, and
            // everything the old one had live ended.
            self.log.health.restarts += 1;
            agg.groups.clear();
            for (key, t) in agg.tracked.iter_mut() {
                let h = self
                    .log
                    .histories
                    .entry(*key)
                    .or_insert_with(|| CountHistory::new(origin));
                h.flow(now, 0, t.spawned.saturating_sub(t.terminated));
                (t.spawned, t.terminated) = (0, 0);
            }
        }
    }

    /// The message's group reports by location (two call-site statics
    /// with equal text add up), those that hold together; the others are
    /// counted as set aside.
    fn judge_rows(
        &mut self,
        rows: Vec<crate::model::counted::AggRow>,
        now: Ts,
        since: Ts,
    ) -> Vec<(String, AggGroup)> {
        let cap = self.config.max_entities.min(caps::MAX_GROUPS);
        let over = rows.len().saturating_sub(cap);
        self.log.health.capped.groups += over as u64;
        let mut order = Vec::new();
        let mut by_location: HashMap<String, AggGroup> = HashMap::new();
        for row in rows.into_iter().take(cap) {
            match by_location.get_mut(&row.location) {
                Some(g) => g.absorb(row.group),
                None => {
                    order.push(row.location.clone());
                    by_location.insert(row.location, row.group);
                }
            }
        }
        let mut out = Vec::new();
        for location in order {
            let Some(g) = by_location.remove(&location) else {
                continue;
            };
            let before = self.log.locations.get(&location).and_then(|loc| {
                let t = self.hooks.as_ref()?.tracked.get(&GroupKey {
                    loc,
                    kind: TaskKind::Task,
                })?;
                Some((t.spawned, t.terminated))
            });
            match plausible::group(&g, now, since, before) {
                Ok(()) => out.push((location, g)),
                Err(why) => self.log.health.set_aside.count(why),
            }
        }
        out
    }

    /// Makes room for `locations` among the followed ones: those no
    /// message named for longest (and not named now) are forgotten, with
    /// their histories, until the new ones fit in [`caps::MAX_TRACKED`].
    fn make_room(&mut self, locations: &[&String]) {
        let Some(agg) = self.hooks.as_mut() else {
            return;
        };
        let known: HashSet<GroupKey> = locations
            .iter()
            .filter_map(|l| self.log.locations.get(l))
            .map(|loc| GroupKey {
                loc,
                kind: TaskKind::Task,
            })
            .filter(|k| agg.tracked.contains_key(k))
            .collect();
        let new = locations.len() - known.len();
        let excess = (agg.tracked.len() + new).saturating_sub(caps::MAX_TRACKED);
        if excess == 0 {
            return;
        }
        let mut old: Vec<(Ts, GroupKey)> = agg
            .tracked
            .iter()
            .filter(|(k, _)| !known.contains(k))
            .map(|(k, t)| (t.seen, *k))
            .collect();
        old.sort();
        for (_, key) in old.into_iter().take(excess) {
            agg.tracked.remove(&key);
            agg.groups.remove(&key);
            if agg.page.as_ref().is_some_and(|(k, _)| *k == key) {
                agg.page = None;
            }
            self.log.histories.remove(&key);
            self.log.locations.forget(key.loc);
            self.log.health.forgotten += 1;
        }
    }

    /// Rebuilds the accepted sites' counts from the seconds the agent
    /// kept (the first message only), those that hold together.
    fn backfill(
        &mut self,
        history: &[crate::model::counted::SiteHistory],
        rows: &[(String, AggGroup)],
        now: Ts,
        since: Ts,
        origin: Ts,
    ) {
        let totals: HashMap<&str, (u64, u64)> = rows
            .iter()
            .map(|(l, g)| (l.as_str(), (g.spawned, g.terminated)))
            .collect();
        for site in history.iter().take(self.config.max_entities) {
            let now_totals = totals.get(site.location.as_str()).copied();
            if !plausible::history(site, now, since, now_totals) {
                self.log.health.set_aside.history += 1;
                continue;
            }
            let key = GroupKey {
                loc: self.log.locations.intern_str(&site.location),
                kind: TaskKind::Task,
            };
            let first = Ts::from_nanos(site.first_unix_sec.saturating_mul(1_000_000_000));
            let h = self
                .log
                .histories
                .entry(key)
                .or_insert_with(|| CountHistory::new(first.min(origin)));
            let (mut s0, mut t0) = (0u64, 0u64);
            for (i, (s, t)) in site.spawned.iter().zip(&site.terminated).enumerate() {
                let at = first.plus(Duration::from_secs(i as u64));
                h.flow(at, s.saturating_sub(s0), t.saturating_sub(t0));
                (s0, t0) = (*s, *t);
            }
            if let Some(agg) = self.hooks.as_mut() {
                agg.tracked.insert(
                    key,
                    Tracked {
                        spawned: s0,
                        terminated: t0,
                        seen: first,
                    },
                );
            }
            let last = self.log.now.unwrap_or(now);
            self.log.health.backfilled = self.log.health.backfilled.max(last.since(first));
        }
    }

    /// A page of a group's tasks (the hooks source): kept for the group
    /// whose location it names.
    pub fn apply_page(&mut self, page: TaskPage) {
        let Some(agg) = self.hooks.as_mut() else {
            return;
        };
        let key = agg
            .groups
            .iter()
            .find(|(_, g)| g.place() == page.at)
            .map(|(k, _)| *k);
        agg.page = key.map(|k| (k, page));
    }
}

#[cfg(test)]
#[path = "hooks_tests.rs"]
mod tests;
