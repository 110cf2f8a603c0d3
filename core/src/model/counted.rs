//! The hooks source: the target groups its own tasks by spawn location
//! (taskscope-agent on tokio's runtime hooks) and sends the groups, not the
//! tasks. Plain data, as `conn` converts it from the wire.

use super::time::Ts;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Most age and lifetime buckets, and spawning locations, a group keeps
/// (see `caps`).
pub use super::caps::{MAX_BUCKETS, MAX_PARENTS};

/// Age buckets of a group's live tasks: entry 0 under 1 s, entry i from
/// 2^(i-1) to 2^i s, the last one everything older.
pub fn age_bucket_bounds(i: usize) -> (Duration, Option<Duration>) {
    let lo = if i == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs(1u64 << (i - 1).min(62))
    };
    (lo, Some(Duration::from_secs(1u64 << i.min(62))))
}

/// The nearest age bucket bound at or above `d` (`up`), or at or below it:
/// bounds are 0 and whole powers of two seconds.
pub fn age_bucket_edge(d: Duration, up: bool) -> Duration {
    let secs = if up {
        d.as_secs() + u64::from(d.subsec_nanos() > 0)
    } else {
        d.as_secs()
    };
    let edge = match (secs, up) {
        (0, _) => 0,
        (s, true) => s.checked_next_power_of_two().unwrap_or(1 << 63),
        (s, false) => 1 << (63 - s.leading_zeros()),
    };
    Duration::from_secs(edge)
}

/// One message of the hooks source.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupsUpdate {
    /// The target's clock.
    pub now: Ts,
    /// When the agent started recording (a new value: the target restarted).
    pub since: Ts,
    pub groups: Vec<AggRow>,
    /// Per-location totals at each past second (first message only).
    pub history: Vec<SiteHistory>,
    /// When the viewer received it (its own monotonic clock; `None` in
    /// tests): a target's clock may not run ahead of the time that passed
    /// here.
    pub received: Option<std::time::Instant>,
    /// What the message held beyond the viewer's caps (not kept).
    pub capped: super::caps::Capped,
}

/// A spawn location exactly as the target names it (file, line, column),
/// to ask it for the location's tasks.
pub type RawLoc = (String, u32, u32);

/// A group's place as the target names it, to ask it for the group's
/// tasks: its spawn location, and for a line the target splits by spawner
/// (a generic executor's), the spawner's location (`None`: spawned outside
/// any task).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawPlace {
    pub at: RawLoc,
    pub split: bool,
    pub spawner: Option<RawLoc>,
}

/// One spawn location, as the target counted it.
#[derive(Clone, Debug, PartialEq)]
pub struct AggRow {
    /// `file:line:col`.
    pub location: String,
    pub group: AggGroup,
}

fn min_some(a: Option<Ts>, b: Option<Ts>) -> Option<Ts> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct SiteHistory {
    pub location: String,
    pub first_unix_sec: i64,
    pub spawned: Vec<u64>,
    pub terminated: Vec<u64>,
}

/// A page of one place's live tasks.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskPage {
    pub at: RawPlace,
    pub tasks: Vec<PagedTask>,
    /// More tasks than the page holds.
    pub more: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PagedTask {
    /// tokio's task id.
    pub id: u64,
    /// Whether the agent can capture its waits.
    pub reachable: bool,
    /// The spawning task's id (0: none) and its spawn location.
    pub parent: u64,
    pub parent_location: Option<String>,
    pub created: Option<Ts>,
    pub polls: u64,
    pub busy: Duration,
    pub running_since: Option<Ts>,
    pub idle_since: Option<Ts>,
}

/// One spawn location as the target counted it: what the model keeps,
/// and what snapshot files hold (durations and instants as nanoseconds).
/// The wire's `GroupRow` and the file's record both become one through
/// [`AggGroup::bounded`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AggGroup {
    /// The location as the target names it: file, line, column.
    pub raw: RawLoc,
    /// The target splits this line by spawner (a generic executor's: see
    /// the agent's `GroupRow::split`): the group holds the tasks whose
    /// spawning task was spawned at `spawner` (`None`: outside any task).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub split: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawner: Option<RawLoc>,
    pub live: u64,
    pub running: u64,
    pub idle: u64,
    pub spawned: u64,
    pub terminated: u64,
    pub polls: u64,
    #[serde(rename = "busy_ns", with = "ns::duration")]
    #[schemars(with = "u64")]
    pub busy: Duration,
    #[serde(rename = "oldest_created_ns", with = "ns::instant")]
    #[schemars(with = "Option<i64>")]
    pub oldest_created: Option<Ts>,
    #[serde(rename = "earliest_idle_ns", with = "ns::instant")]
    #[schemars(with = "Option<i64>")]
    pub earliest_idle: Option<Ts>,
    #[serde(rename = "longest_poll_ns", with = "ns::duration")]
    #[schemars(with = "u64")]
    pub longest_poll: Duration,
    /// Where the spawning tasks were spawned, most first, and how many.
    pub parents: Vec<(Arc<str>, u64)>,
    /// Live tasks spawned from outside any task.
    pub unparented: u64,
    /// Live tasks by age: under 1 s, then 2^(i-1)..2^i s.
    pub ages: Vec<u64>,
    #[serde(rename = "terminated_lifetime_ns", with = "ns::duration")]
    #[schemars(with = "u64")]
    pub terminated_lifetime: Duration,
    /// The terminated tasks by lifetime, in the buckets of `ages` (empty
    /// from agents that do not send them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifetimes: Vec<u64>,
    /// Live tasks whose waits the agent can capture (their futures are
    /// wrapped in the agent's `traced`), those with a capture that
    /// holds (not run since), and the newest of those captures.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reachable: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waits_held: u64,
    #[serde(
        default,
        rename = "newest_wait_ns",
        with = "ns::instant",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<i64>")]
    pub newest_wait: Option<Ts>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Durations and instants as the files write them: nanoseconds.
mod ns {
    use super::Ts;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub mod duration {
        use super::*;

        pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            u64::deserialize(d).map(Duration::from_nanos)
        }
    }

    pub mod instant {
        use super::*;

        pub fn serialize<S: Serializer>(t: &Option<Ts>, s: S) -> Result<S::Ok, S::Error> {
            t.map(Ts::nanos).serialize(s)
        }

        /// Zero and negative values are no instant (as on the wire).
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
            let n = Option::<i64>::deserialize(d)?;
            Ok(n.filter(|&n| n > 0).map(Ts::from_nanos))
        }
    }
}

impl AggGroup {
    /// Its place, to ask the target for its tasks.
    pub fn place(&self) -> RawPlace {
        RawPlace {
            at: self.raw.clone(),
            split: self.split,
            spawner: self.spawner.clone(),
        }
    }

    /// The group with every count held to what it can be, from the wire
    /// and from files alike (a broken or hostile target sends anything):
    /// running and idle at most live, terminated at most spawned, waits at
    /// most the tasks they are of, at most [`MAX_BUCKETS`] age and
    /// lifetime buckets and [`MAX_PARENTS`] parents.
    pub fn bounded(mut self) -> AggGroup {
        self.running = self.running.min(self.live);
        self.idle = self.idle.min(self.live);
        self.terminated = self.terminated.min(self.spawned);
        self.reachable = self.reachable.min(self.live);
        self.waits_held = self.waits_held.min(self.reachable);
        self.ages.truncate(MAX_BUCKETS);
        self.lifetimes.truncate(MAX_BUCKETS);
        self.parents.truncate(MAX_PARENTS);
        self
    }

    /// Adds another group of the same location (two call-site statics
    /// with equal text).
    pub fn absorb(&mut self, o: AggGroup) {
        self.live = self.live.saturating_add(o.live);
        self.running = self.running.saturating_add(o.running);
        self.idle = self.idle.saturating_add(o.idle);
        self.spawned = self.spawned.saturating_add(o.spawned);
        self.terminated = self.terminated.saturating_add(o.terminated);
        self.polls = self.polls.saturating_add(o.polls);
        self.busy = self.busy.saturating_add(o.busy);
        self.oldest_created = min_some(self.oldest_created, o.oldest_created);
        self.earliest_idle = min_some(self.earliest_idle, o.earliest_idle);
        self.longest_poll = self.longest_poll.max(o.longest_poll);
        self.parents.extend(o.parents);
        self.parents.sort_by_key(|p| std::cmp::Reverse(p.1));
        self.parents.truncate(MAX_PARENTS);
        self.unparented = self.unparented.saturating_add(o.unparented);
        if self.ages.len() < o.ages.len() {
            self.ages.resize(o.ages.len(), 0);
        }
        for (a, b) in self.ages.iter_mut().zip(o.ages) {
            *a = a.saturating_add(b);
        }
        self.terminated_lifetime = self
            .terminated_lifetime
            .saturating_add(o.terminated_lifetime);
        if self.lifetimes.len() < o.lifetimes.len() {
            self.lifetimes.resize(o.lifetimes.len(), 0);
        }
        for (a, b) in self.lifetimes.iter_mut().zip(o.lifetimes) {
            *a = a.saturating_add(b);
        }
        self.reachable = self.reachable.saturating_add(o.reachable);
        self.waits_held = self.waits_held.saturating_add(o.waits_held);
        self.newest_wait = self.newest_wait.max(o.newest_wait);
    }

    /// Live tasks whose age is surely within `lo..=hi` (buckets wholly
    /// inside the range; a lower bound).
    pub fn aged_between(&self, lo: Duration, hi: Duration) -> u64 {
        let last = self.ages.len().saturating_sub(1);
        self.ages
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let (a, b) = age_bucket_bounds(*i);
                // The last bucket holds everything older.
                let b = b.filter(|_| *i < last);
                a >= lo && b.is_some_and(|b| b <= hi)
            })
            .map(|(_, n)| *n)
            .fold(0, u64::saturating_add)
    }

    /// Live tasks surely at least `lo` old (buckets starting at or after
    /// it, the open-ended last one included; a lower bound).
    pub fn aged_at_least(&self, lo: Duration) -> u64 {
        self.ages
            .iter()
            .enumerate()
            .filter(|(i, _)| age_bucket_bounds(*i).0 >= lo)
            .map(|(_, n)| *n)
            .fold(0, u64::saturating_add)
    }

    /// An upper bound of the lifetime that `share` (0..1) of the
    /// terminated tasks did not exceed: the upper edge of the bucket that
    /// quantile falls in (the open last bucket: its lower edge).
    pub fn lifetime_quantile(&self, share: f64) -> Option<Duration> {
        // Wire values: a sum that saturates, never one that overflows.
        let total = self.lifetimes.iter().copied().fold(0, u64::saturating_add);
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * share).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.lifetimes.iter().enumerate() {
            seen = n.saturating_add(seen);
            if seen >= rank {
                let (lo, hi) = age_bucket_bounds(i);
                return Some(if i + 1 == self.lifetimes.len() {
                    lo
                } else {
                    hi.unwrap_or(lo)
                });
            }
        }
        None
    }

    /// Mean lifetime of the terminated tasks.
    pub fn mean_lifetime(&self) -> Option<Duration> {
        (self.terminated > 0).then(|| {
            Duration::from_nanos(
                (self.terminated_lifetime.as_nanos() / u128::from(self.terminated)) as u64,
            )
        })
    }
}

/// What the hooks source has told the model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregates {
    /// When the agent started recording.
    pub since: Option<Ts>,
    /// The groups of the last message, those that held together.
    pub groups: std::collections::HashMap<super::GroupKey, AggGroup>,
    /// The tasks of the group a view has open.
    pub page: Option<(super::GroupKey, TaskPage)>,
    /// Every location followed (at most [`super::caps::MAX_TRACKED`]): its
    /// last accepted totals (spawned, terminated) and when a message last
    /// named it; its count history is in the stream log.
    pub tracked: std::collections::HashMap<super::GroupKey, Tracked>,
    /// The target's clock, judged message by message.
    pub clock: super::target_clock::TargetClock,
}

/// A location the model follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    pub spawned: u64,
    pub terminated: u64,
    pub seen: Ts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_and_file_values_are_held_to_what_they_can_be() {
        let g = AggGroup {
            live: 5,
            running: 9,
            idle: u64::MAX,
            spawned: 3,
            terminated: 7,
            reachable: 6,
            waits_held: 99,
            ages: vec![1; 1000],
            lifetimes: vec![1; 65],
            parents: (0..20).map(|i| (Arc::from(format!("p{i}")), 1)).collect(),
            ..AggGroup::default()
        }
        .bounded();
        assert_eq!((g.running, g.idle, g.terminated), (5, 5, 3));
        assert_eq!((g.reachable, g.waits_held), (5, 5));
        assert_eq!(
            (g.ages.len(), g.lifetimes.len()),
            (MAX_BUCKETS, MAX_BUCKETS)
        );
        assert_eq!(g.parents.len(), MAX_PARENTS);
    }

    #[test]
    fn a_group_is_written_in_the_snapshot_format_s_names_and_read_back() {
        let g = AggGroup {
            raw: ("src/a.rs".into(), 3, 9),
            live: 4,
            busy: Duration::from_millis(2),
            oldest_created: Some(Ts::from_secs(1_800_000_000)),
            parents: vec![(Arc::from("src/main.rs:1:1"), 4)],
            ages: vec![0, 4],
            lifetimes: vec![2],
            reachable: 4,
            waits_held: 3,
            newest_wait: Some(Ts::from_secs(1_800_000_001)),
            ..AggGroup::default()
        };
        let json = serde_json::to_value(&g).unwrap();
        assert_eq!(json["busy_ns"], 2_000_000);
        assert_eq!(json["oldest_created_ns"], 1_800_000_000_000_000_000i64);
        assert_eq!(json["earliest_idle_ns"], serde_json::Value::Null);
        assert_eq!(json["waits_held"], 3);
        let back: AggGroup = serde_json::from_value(json).unwrap();
        assert_eq!(back, g);
        // A file from before the waits were kept.
        let mut old = serde_json::to_value(&g).unwrap();
        for k in ["lifetimes", "reachable", "waits_held", "newest_wait_ns"] {
            old.as_object_mut().unwrap().remove(k);
        }
        let back: AggGroup = serde_json::from_value(old).unwrap();
        assert_eq!((back.reachable, back.newest_wait), (0, None));
    }

    #[test]
    fn aged_between_counts_whole_buckets_only() {
        let mut g = AggGroup {
            live: 7,
            // <1 s: 1; 1-2 s: 2; 2-4 s: 4; older: none
            ages: vec![1, 2, 4, 0],
            ..AggGroup::default()
        };
        assert_eq!(g.aged_between(Duration::ZERO, Duration::from_secs(4)), 7);
        assert_eq!(
            g.aged_between(Duration::from_secs(1), Duration::from_secs(4)),
            6
        );
        assert_eq!(
            g.aged_between(Duration::from_secs(2), Duration::from_secs(3)),
            0
        );
        // The last bucket holds everything older: never wholly inside.
        g.ages.pop();
        assert_eq!(g.aged_between(Duration::ZERO, Duration::from_secs(4)), 3);
        assert_eq!(g.aged_at_least(Duration::from_secs(1)), 6);
        assert_eq!(g.aged_at_least(Duration::from_secs(2)), 4);
        assert_eq!(g.aged_at_least(Duration::from_secs(3)), 0);
        assert_eq!(g.mean_lifetime(), None);
    }

    #[test]
    fn hostile_counts_saturate_and_quantiles_stay_in_range() {
        let g = AggGroup {
            ages: vec![u64::MAX; 64],
            lifetimes: vec![u64::MAX; 64],
            ..AggGroup::default()
        };
        assert_eq!(g.aged_at_least(Duration::ZERO), u64::MAX);
        assert_eq!(g.aged_between(Duration::ZERO, Duration::MAX), u64::MAX);
        assert_eq!(g.lifetime_quantile(0.99), Some(Duration::from_secs(1)));
        let empty = AggGroup::default();
        assert_eq!(empty.lifetime_quantile(0.99), None);
    }

    #[test]
    fn bucket_edges_round_to_powers_of_two() {
        let s = Duration::from_secs;
        assert_eq!(age_bucket_edge(s(6), true), s(8));
        assert_eq!(age_bucket_edge(s(6), false), s(4));
        assert_eq!(age_bucket_edge(s(8), true), s(8));
        assert_eq!(age_bucket_edge(s(8), false), s(8));
        assert_eq!(age_bucket_edge(Duration::from_millis(2500), true), s(4));
        assert_eq!(age_bucket_edge(Duration::from_millis(500), true), s(1));
        assert_eq!(age_bucket_edge(Duration::from_millis(500), false), s(0));
        assert_eq!(age_bucket_edge(s(45), false), s(32));
        assert_eq!(age_bucket_edge(Duration::ZERO, true), s(0));
    }
}
