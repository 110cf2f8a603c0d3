//! Sleeps that arrive after their task polled again. console-subscriber
//! updates a task's poll times at once (shared counters), but sends new
//! spans (a `Sleep` made in that poll) through a queue its aggregator
//! drains at its own pace: a target spawning faster than that lags behind,
//! by a minute or more. A task that sleeps 30 s per round then polls again
//! before its round's `Sleep` arrives; by the time it arrives it is dropped
//! and no live sleep is left to link (the classification test of
//! `tests/looping_sleepers.rs`).
//!
//! So the model keeps the poll windows of the last moments, until the
//! spans made in them must have arrived, and when a `Sleep` arrives it
//! notes which spawn group's windows alone hold its creation. A sleep site
//! (the `sleep()` call's location) is a group's when a fair share of its
//! sleeps were made inside some known task's poll and nearly all of those
//! inside that group's: the group's tasks sleep. Per site, not per sleep:
//! under lag the task that made a sleep may itself be too new to be known
//! (its spans queue behind, so its polls were never seen), and a single
//! sleep can then land in a neighbour's window; a site's sleeps do not,
//! time after time (a request site's sleeps fall in no known window).
//!
//! The analysis then reads a task of such a group whose last poll is newer
//! than every span received, idle with one waker, as sleeping: inferred,
//! and flagged so (`Verdict::ambiguous`, with no resource).

use super::location::{GroupKey, LocId};
use super::time::Ts;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// At most this many windows are kept (the oldest go first), and this
/// many sleep sites (a hostile target could make up any number).
const MAX_WINDOWS: usize = 16_384;
const MAX_SITES: usize = 10_000;
/// Polls longer than this are not sleep-then-park polls (which take
/// microseconds); it also bounds how far back a sleep's lookup scans, so
/// a burst of thousands of new tasks costs thousands of steps, not
/// millions.
const MAX_POLL: Duration = Duration::from_millis(10);
/// Spans from several threads reach the queue a little out of order.
const SLACK: Duration = Duration::from_secs(1);
/// A site not seen this long (target time) is forgotten.
const REMEMBER: Duration = Duration::from_secs(600);
/// A site's counts are halved past this many sleeps (recent ones weigh).
const DECAY_AT: u32 = 512;
/// A group owns a site when this share of the site's sleeps fell in known
/// windows (at least `MIN_HELD` of them), and it holds `OWN_SHARE` of those.
const HELD_SHARE: (u32, u32) = (1, 4);
const MIN_HELD: u32 = 3;
const OWN_SHARE: (u32, u32) = (4, 5);

/// One sleep site's sleeps: how many, how many fell in known windows, and
/// in whose windows alone.
#[derive(Clone, Debug)]
struct Site {
    sleeps: u32,
    held: u32,
    by_group: HashMap<GroupKey, u32>,
    last: Ts,
}

#[derive(Clone, Debug, Default)]
pub struct LateSleeps {
    /// (start, task) → (end, group).
    windows: BTreeMap<(Ts, u64), (Ts, GroupKey)>,
    sites: HashMap<Option<LocId>, Site>,
    /// Groups that own a site (from `sites`, at the last prune).
    sleepers: HashSet<GroupKey>,
    /// The newest creation time of any span received: spans made after it
    /// have not arrived yet.
    seen_until: Option<Ts>,
}

impl LateSleeps {
    /// A task's new own poll window.
    pub fn polled(&mut self, task: u64, group: GroupKey, start: Ts, end: Ts) {
        if end < start || end.since(start) > MAX_POLL {
            return;
        }
        // Spans of a poll older than everything received have all arrived.
        if self.seen_until.is_some_and(|s| end < s.minus(SLACK)) {
            return;
        }
        self.windows.insert((start, task), (end, group));
        while self.windows.len() > MAX_WINDOWS {
            self.windows.pop_first();
        }
    }

    /// A span (task, resource, async op) created at `at` arrived.
    pub fn span_arrived(&mut self, at: Ts) {
        self.seen_until = Some(self.seen_until.map_or(at, |s| s.max(at)));
    }

    /// A `Sleep` made at `site`, created at `at`, arrived.
    pub fn sleep_arrived(&mut self, at: Ts, site: Option<LocId>) {
        let mut owner: Option<GroupKey> = None;
        let mut shared = false;
        let mut held = false;
        let from = (at.minus(MAX_POLL), 0);
        for (_, (end, group)) in self.windows.range(from..=(at, u64::MAX)) {
            if *end < at {
                continue;
            }
            held = true;
            match owner {
                Some(g) if g != *group => shared = true,
                _ => owner = Some(*group),
            }
        }
        if self.sites.len() >= MAX_SITES && !self.sites.contains_key(&site) {
            return;
        }
        let s = self.sites.entry(site).or_insert_with(|| Site {
            sleeps: 0,
            held: 0,
            by_group: HashMap::new(),
            last: at,
        });
        s.sleeps += 1;
        s.held += u32::from(held);
        s.last = s.last.max(at);
        if let (Some(g), false) = (owner, shared) {
            *s.by_group.entry(g).or_default() += 1;
        }
        if s.sleeps > DECAY_AT {
            s.sleeps /= 2;
            s.held /= 2;
            s.by_group.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
        }
    }

    /// Forgets windows whose spans must have arrived and sites not seen
    /// for long, and settles which groups own a site.
    pub fn prune(&mut self, now: Ts) {
        if let Some(seen) = self.seen_until {
            let keep = (seen.minus(SLACK + MAX_POLL), 0);
            self.windows = self.windows.split_off(&keep);
        }
        self.sites.retain(|_, s| now.since(s.last) < REMEMBER);
        self.sleepers = self
            .sites
            .values()
            .filter(|s| s.held >= MIN_HELD && s.held * HELD_SHARE.1 >= s.sleeps * HELD_SHARE.0)
            .flat_map(|s| {
                s.by_group
                    .iter()
                    .filter(|(_, n)| **n * OWN_SHARE.1 >= s.held * OWN_SHARE.0)
                    .map(|(g, _)| *g)
            })
            .collect();
    }

    /// Whether spans made at or after `at` may not have arrived yet.
    pub fn unseen(&self, at: Ts) -> bool {
        self.seen_until.is_none_or(|s| at > s)
    }

    /// Whether `group`'s tasks own a sleep site.
    pub fn sleeps(&self, group: GroupKey) -> bool {
        self.sleepers.contains(&group)
    }

    pub fn windows(&self) -> usize {
        self.windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::location::TaskKind;

    fn ts(ms: u64) -> Ts {
        Ts::from_nanos(1_800_000_000_000_000_000 + ms as i64 * 1_000_000)
    }

    fn group(n: u32) -> GroupKey {
        GroupKey {
            loc: LocId(n),
            kind: TaskKind::Task,
        }
    }

    const LOOP_SITE: Option<LocId> = Some(LocId(100));
    const REQUEST_SITE: Option<LocId> = Some(LocId(200));

    #[test]
    fn sleeps_that_arrive_late_teach_the_group_that_makes_them() {
        let mut l = LateSleeps::default();
        l.span_arrived(ts(1_000));
        // Three loopers (group 1) poll at 5 s and make a sleep each, and
        // again at 35 s.
        for t in 0..3u64 {
            let at = 5_000 + t * 10;
            l.polled(t, group(1), ts(at), ts(at + 1));
            l.polled(t, group(1), ts(at + 30_000), ts(at + 30_001));
        }
        assert!(l.unseen(ts(35_000)));
        // The subscriber, 30 s behind, sends the first round's sleeps.
        for t in 0..3u64 {
            l.span_arrived(ts(5_000 + t * 10));
            l.sleep_arrived(ts(5_000 + t * 10), LOOP_SITE);
        }
        l.prune(ts(36_000));
        assert!(l.sleeps(group(1)));
        // Everything up to 38 s arrived: the windows go.
        l.span_arrived(ts(38_000));
        l.prune(ts(40_000));
        assert_eq!(l.windows(), 0);
        assert!(!l.unseen(ts(35_000)));
        // Ten minutes later the site is forgotten.
        l.prune(ts(700_000));
        assert!(!l.sleeps(group(1)));
    }

    #[test]
    fn a_neighbour_polled_as_some_sleeps_were_made_does_not_own_them() {
        let mut l = LateSleeps::default();
        // Requests too new to be known make sleeps at one site, 20 of
        // them; a pool worker (group 2) happened to poll as 4 were made:
        // it holds all the held ones, but most fell in no known window.
        for i in 0..20u64 {
            let at = 1_000 + i * 100;
            if i % 5 == 0 {
                l.polled(50 + i, group(2), ts(at), ts(at + 2));
            }
            l.sleep_arrived(ts(at + 1), REQUEST_SITE);
        }
        l.prune(ts(5_000));
        assert!(!l.sleeps(group(2)));
        // A sleep two groups' windows hold teaches neither.
        l.polled(1, group(3), ts(6_000), ts(6_004));
        l.polled(2, group(4), ts(6_002), ts(6_006));
        for _ in 0..4 {
            l.sleep_arrived(ts(6_003), Some(LocId(300)));
        }
        l.prune(ts(7_000));
        assert!(!l.sleeps(group(3)) && !l.sleeps(group(4)));
    }
}
