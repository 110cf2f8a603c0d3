//! What a hooks source cannot have sent, judged one group and one message
//! at a time, so that a liar beside an honest group changes nothing about
//! how the honest one is judged. A real taskscope-agent's numbers hold
//! together: every live task was spawned, a walk counts each live task
//! once (in a poll or idle, in one age bucket), totals only grow, and its
//! clock is its start plus a monotonic clock, so nothing in it is older
//! than its start or newer than its `now`. A group report that breaks one
//! of these is set aside whole (not folded in, not shown, counted); the
//! clock's rules are in `target_clock.rs`.
//!
//! The agent reads its totals right after its walk, so a few tasks that
//! spawn or end meanwhile may be counted on one side only: the counting
//! rules allow for that ([`slack`]); the time rules allow 2 s.

use super::counted::{AggGroup, SiteHistory, age_bucket_bounds};
use super::time::Ts;
use std::time::Duration;

/// How far a timestamp may stray past the agent's start or its `now`.
pub const TIME_SLACK: Duration = Duration::from_secs(2);

/// More tasks a second than any runtime spawns (tokio spawns a few
/// million a second on many cores).
const MAX_SPAWN_RATE: u128 = 1_000_000_000;

/// What was set aside since attaching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAside {
    /// Group reports with counts the target cannot have (live or
    /// terminated above spawned, more tasks in states, age buckets,
    /// spawners or captures than live, more spawned than time allows).
    pub counts: u64,
    /// Group reports with times outside the agent's life (tasks older than
    /// its start, instants after its `now`, ages beyond its uptime).
    pub ages: u64,
    /// Group reports whose totals went backwards.
    pub backwards: u64,
    /// Messages whose clock ran backwards, ran ahead of real time, or
    /// whose start moved mid-stream.
    pub clock: u64,
    /// Sites whose history the target cannot have kept.
    pub history: u64,
}

impl SetAside {
    pub fn any(&self) -> bool {
        *self != SetAside::default()
    }
}

/// Why a group report was set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Counts,
    Ages,
    Backwards,
}

impl SetAside {
    pub fn count(&mut self, why: Why) {
        let n = match why {
            Why::Counts => &mut self.counts,
            Why::Ages => &mut self.ages,
            Why::Backwards => &mut self.backwards,
        };
        *n = n.saturating_add(1);
    }
}

/// Room for tasks counted on one side of a walk only.
pub fn slack(n: u64) -> u128 {
    u128::from(n) + u128::from(n / 64) + 64
}

fn sum(v: impl IntoIterator<Item = u64>) -> u128 {
    v.into_iter().map(u128::from).sum()
}

/// Judges one group report of a message taken at `now` by an agent that
/// started at `since`; `before` is the location's last accepted totals
/// (spawned, terminated) from the same agent.
pub fn group(g: &AggGroup, now: Ts, since: Ts, before: Option<(u64, u64)>) -> Result<(), Why> {
    let up = now.since(since) + TIME_SLACK;
    let live = slack(g.live);
    let counts_hold = u128::from(g.terminated) <= slack(g.spawned)
        && u128::from(g.live) <= slack(g.spawned)
        && u128::from(g.running) + u128::from(g.idle) <= live
        && sum(g.ages.iter().copied()) <= live
        && sum(g.parents.iter().map(|p| p.1)) + u128::from(g.unparented) <= live
        && u128::from(g.reachable) <= live
        && u128::from(g.waits_held) <= slack(g.reachable)
        && sum(g.lifetimes.iter().copied()) <= slack(g.terminated)
        && u128::from(g.spawned) <= MAX_SPAWN_RATE * (up.as_secs() as u128 + 1);
    if !counts_hold {
        return Err(Why::Counts);
    }
    let (start, end) = (since.minus(TIME_SLACK), now.plus(TIME_SLACK));
    let within = |t: Option<Ts>| t.is_none_or(|t| t >= start && t <= end);
    let beyond = |buckets: &[u64]| {
        buckets
            .iter()
            .enumerate()
            .any(|(i, n)| *n > 0 && age_bucket_bounds(i).0 > up)
    };
    let ages_hold = within(g.oldest_created)
        && within(g.earliest_idle)
        && within(g.newest_wait)
        && g.longest_poll <= up
        && !beyond(&g.ages)
        && !beyond(&g.lifetimes)
        && g.terminated_lifetime.as_nanos() <= u128::from(g.terminated) * up.as_nanos();
    if !ages_hold {
        return Err(Why::Ages);
    }
    if before.is_some_and(|(s, t)| g.spawned < s || g.terminated < t) {
        return Err(Why::Backwards);
    }
    Ok(())
}

/// Whether a site's kept seconds are a history the agent can have kept:
/// within its life, totals that never fall, never more ended than
/// spawned, no more spawns a second than a runtime makes, and ending at
/// or below the site's totals now (`now_totals`, when its group report
/// holds: the seconds were read from the same counters, earlier).
pub fn history(h: &SiteHistory, now: Ts, since: Ts, now_totals: Option<(u64, u64)>) -> bool {
    let first = Ts::from_secs(h.first_unix_sec);
    let secs = h.spawned.len().max(h.terminated.len()) as u64;
    let last = first.plus(Duration::from_secs(secs.saturating_sub(1)));
    let in_life = first >= since.minus(TIME_SLACK) && last <= now.plus(TIME_SLACK);
    let rising = |v: &[u64]| v.windows(2).all(|w| w[0] <= w[1]);
    let rate = |v: &[u64]| {
        v.windows(2)
            .all(|w| u128::from(w[1] - w[0]) <= MAX_SPAWN_RATE)
    };
    in_life
        && h.spawned.len() == h.terminated.len()
        && rising(&h.spawned)
        && rising(&h.terminated)
        && rate(&h.spawned)
        && h.spawned
            .iter()
            .zip(&h.terminated)
            .all(|(s, t)| u128::from(*t) <= slack(*s))
        && now_totals.is_some_and(|(s, t)| {
            h.spawned.last().is_none_or(|l| *l <= s) && h.terminated.last().is_none_or(|l| *l <= t)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn at(s: i64) -> Ts {
        Ts::from_secs(1_800_000_000 + s)
    }

    /// 40 tasks spawned over 100 s, 10 ended; 30 live, idle, ages spread.
    fn honest() -> AggGroup {
        AggGroup {
            live: 30,
            idle: 28,
            running: 2,
            spawned: 40,
            terminated: 10,
            oldest_created: Some(at(5)),
            earliest_idle: Some(at(5)),
            parents: vec![(Arc::from("src/main.rs:3:1"), 30)],
            ages: vec![2, 3, 5, 10, 5, 3, 2, 0],
            lifetimes: vec![6, 4],
            terminated_lifetime: Duration::from_secs(8),
            reachable: 30,
            waits_held: 20,
            newest_wait: Some(at(99)),
            ..AggGroup::default()
        }
    }

    #[test]
    fn an_honest_report_holds_and_each_lie_is_named() {
        let (now, since) = (at(100), at(0));
        assert_eq!(group(&honest(), now, since, Some((35, 9))), Ok(()));
        let lies: Vec<(&str, AggGroup, Why)> = vec![
            (
                "live above spawned",
                AggGroup {
                    live: 1_000,
                    running: 0,
                    idle: 1_000,
                    ..honest()
                },
                Why::Counts,
            ),
            (
                "u64::MAX everywhere",
                AggGroup {
                    live: u64::MAX,
                    running: u64::MAX,
                    idle: u64::MAX,
                    spawned: u64::MAX,
                    ..honest()
                },
                Why::Counts,
            ),
            (
                "more ended than spawned",
                AggGroup {
                    terminated: 1_000,
                    ..honest()
                },
                Why::Counts,
            ),
            (
                "more aged than live",
                AggGroup {
                    ages: vec![u64::MAX],
                    ..honest()
                },
                Why::Counts,
            ),
            (
                "more spawned than time allows",
                AggGroup {
                    spawned: u64::MAX / 2,
                    terminated: u64::MAX / 2 - 30,
                    ..honest()
                },
                Why::Counts,
            ),
            (
                "older than its start",
                AggGroup {
                    oldest_created: Some(at(-3_600)),
                    ..honest()
                },
                Why::Ages,
            ),
            (
                "idle since after now",
                AggGroup {
                    earliest_idle: Some(Ts::from_nanos(i64::MAX)),
                    ..honest()
                },
                Why::Ages,
            ),
            (
                "ages beyond its uptime",
                AggGroup {
                    ages: vec![0; 20].into_iter().chain([30]).collect(),
                    ..honest()
                },
                Why::Ages,
            ),
            (
                "a poll longer than its life",
                AggGroup {
                    longest_poll: Duration::from_secs(1_000),
                    ..honest()
                },
                Why::Ages,
            ),
        ];
        for (what, g, why) in lies {
            assert_eq!(group(&g, now, since, None), Err(why), "{what}");
        }
        assert_eq!(
            group(&honest(), now, since, Some((41, 0))),
            Err(Why::Backwards)
        );
    }

    #[test]
    fn a_walk_s_few_tasks_on_one_side_are_allowed() {
        // Tasks that ended between the walk and the totals' read.
        let g = AggGroup {
            live: 40,
            spawned: 40,
            terminated: 3,
            idle: 40,
            ..AggGroup::default()
        };
        assert_eq!(group(&g, at(10), at(0), None), Ok(()));
    }

    #[test]
    fn a_history_within_the_agent_s_life_holds() {
        let h = SiteHistory {
            location: "a.rs:1:1".into(),
            first_unix_sec: 1_800_000_050,
            spawned: vec![1, 2, 2, 5],
            terminated: vec![0, 0, 1, 1],
        };
        let (now, since) = (at(100), at(0));
        assert!(history(&h, now, since, Some((6, 1))));
        assert!(!history(&h, now, since, None), "a site with no report");
        assert!(!history(&h, now, since, Some((4, 1))), "above the totals");
        let year_ago = SiteHistory {
            first_unix_sec: 1_800_000_000 - 365 * 86_400,
            ..h.clone()
        };
        assert!(!history(&year_ago, now, since, Some((6, 1))));
        let falling = SiteHistory {
            spawned: vec![5, 2, 2, 5],
            ..h.clone()
        };
        assert!(!history(&falling, now, since, Some((6, 1))));
    }
}
