//! The hooks source folded into the model: the target's own groups
//! (taskscope-agent on tokio's runtime hooks) instead of per-task records,
//! and the pages of an open group's tasks.

use super::State;
use crate::model::aggregate::{AggGroup, Aggregates, GroupsUpdate, Page};
use crate::model::{CountHistory, GroupKey, TaskKind, Ts};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

impl State {
    /// A message of the hooks source: the target's own groups. Each
    /// location's spawned/terminated totals, compared with the last ones,
    /// give its births and deaths since, at the target's clock; the first
    /// message of a stream backfills the seconds the agent kept.
    pub fn apply_groups(&mut self, mut up: GroupsUpdate) {
        let now = match self.log.now {
            // Never back in time, never years ahead of what we knew.
            Some(prev) if up.now < prev => prev,
            _ => up.now,
        };
        up.now = now;
        self.log.last_update_at = self.log.now;
        self.log.now = Some(now);
        self.log.health.updates += 1;
        self.log.health.horizon = Some(now);
        let origin = *self.log.history_origin.get_or_insert(now);
        let agg = self.hooks.get_or_insert_with(Aggregates::default);
        if self.log.new_stream {
            self.log.new_stream = false;
            if let (Some(before), true) = (self.log.last_update_at, self.log.health.streams > 0) {
                self.log.gaps.push((before, now));
                if self.log.gaps.len() > 100 {
                    self.log.gaps.remove(0);
                }
            }
            self.log.health.streams += 1;
            self.log.health.full_state = Some(true);
            if agg.since.is_some_and(|s| s != up.since) {
                // Another process: its totals start again from zero, and
                // everything the old one had live ended.
                self.log.health.restarts += 1;
                for (key, g) in agg.groups.drain() {
                    let h = self
                        .log
                        .histories
                        .entry(key)
                        .or_insert_with(|| CountHistory::new(origin));
                    h.flow(now, 0, g.spawned.saturating_sub(g.terminated));
                }
            }
        }
        let fresh = agg.since != Some(up.since);
        agg.since = Some(up.since);
        if fresh && self.log.histories.is_empty() {
            // Backfill from the agent's kept seconds.
            for site in up.history.iter().take(self.config.max_entities) {
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
                let g = agg.groups.entry(key).or_default();
                g.spawned = s0;
                g.terminated = t0;
                self.log.health.backfilled = self.log.health.backfilled.max(now.since(first));
            }
        }
        // Rows of one location (two call-site statics with equal text)
        // add up.
        let mut rows: HashMap<GroupKey, AggGroup> = HashMap::new();
        // A hostile target could send any number of groups.
        let over = up.groups.len().saturating_sub(self.config.max_entities);
        self.log.health.implausible.over_cap += over as u64;
        for row in up.groups.into_iter().take(self.config.max_entities) {
            let key = GroupKey {
                loc: self.log.locations.intern_str(&row.location),
                kind: TaskKind::Task,
            };
            match rows.get_mut(&key) {
                Some(g) => g.absorb(row.group),
                None => {
                    rows.insert(key, row.group);
                }
            }
        }
        let mut seen = HashSet::new();
        for (key, row) in rows {
            seen.insert(key);
            let old = agg.groups.get(&key);
            let (s0, t0) = old.map_or((0, 0), |g| (g.spawned, g.terminated));
            let h = self
                .log
                .histories
                .entry(key)
                .or_insert_with(|| CountHistory::new(origin));
            h.flow(
                now,
                row.spawned.saturating_sub(s0),
                row.terminated.saturating_sub(t0),
            );
            agg.groups.insert(key, row);
        }
        agg.groups.retain(|k, _| seen.contains(k));
        for h in self.log.histories.values_mut() {
            h.advance_to(now);
        }
        // The first report's totals land as births in its second.
        let first = origin.minus(self.log.health.backfilled);
        self.log.health.counts_since =
            Some(Ts::from_secs(first.nanos().div_euclid(1_000_000_000) + 1));
    }

    /// A page of a group's tasks (the hooks source): kept for the group
    /// whose location it names.
    pub fn apply_page(&mut self, page: Page) {
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
mod tests {
    use super::*;
    use crate::model::aggregate::AggRow;
    use crate::model::state::Config;

    fn at(s: i64) -> Ts {
        Ts::from_nanos(1_800_000_000_000_000_000 + s * 1_000_000_000)
    }

    fn row(location: &str, spawned: u64, terminated: u64) -> AggRow {
        AggRow {
            location: location.into(),
            group: AggGroup {
                live: spawned - terminated,
                idle: spawned - terminated,
                spawned,
                terminated,
                ..AggGroup::default()
            },
        }
    }

    fn update(now: i64, since: i64, groups: Vec<AggRow>) -> GroupsUpdate {
        GroupsUpdate {
            now: at(now),
            since: at(since),
            groups,
            history: Vec::new(),
        }
    }

    #[test]
    fn totals_become_births_and_deaths_and_a_restart_ends_everything() {
        let mut st = State::default();
        st.begin_stream();
        st.apply_groups(update(10, 0, vec![row("a.rs:1:1", 5, 1)]));
        st.apply_groups(update(11, 0, vec![row("a.rs:1:1", 9, 2)]));
        let key = *st
            .hooks
            .as_ref()
            .expect("groups")
            .groups
            .keys()
            .next()
            .expect("one");
        let h = &st.log.histories[&key];
        assert_eq!((h.total_births, h.total_deaths, h.current()), (9, 2, 7));
        // Another process on the port: its totals restart from zero.
        st.begin_stream();
        st.apply_groups(update(20, 15, vec![row("a.rs:1:1", 3, 0)]));
        assert_eq!(st.log.health.restarts, 1);
        assert_eq!(st.log.histories[&key].current(), 3);
        // Time never runs backwards.
        st.apply_groups(update(5, 15, vec![row("a.rs:1:1", 3, 0)]));
        assert_eq!(st.log.now, Some(at(20)));
    }

    #[test]
    fn a_flood_of_groups_is_capped() {
        let mut st = State::new(Config {
            max_entities: 10,
            ..Config::default()
        });
        let rows = (0..50).map(|i| row(&format!("f.rs:{i}:1"), 1, 0)).collect();
        st.apply_groups(update(1, 0, rows));
        assert_eq!(st.hooks.as_ref().expect("groups").groups.len(), 10);
        assert_eq!(st.log.health.implausible.over_cap, 40);
    }
}
