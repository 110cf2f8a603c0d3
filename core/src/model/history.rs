//! Per-group count history, derived from the tasks' own `created_at` and
//! `dropped_at` on the target's clock.
//!
//! Births and deaths are recorded into time buckets by *when they happened*,
//! not by when an update reported them, so a lagging subscriber that reports a
//! task late fixes up the past rather than faking a jump now. Older buckets
//! are folded into coarser ones (1 s for 10 min, 10 s for 1 h, 1 min for
//! 24 h, then a single base count), so hours of history stay a few KiB.

use super::time::Ts;
use std::collections::VecDeque;
use std::time::Duration;

/// Bucket widths in seconds and how many buckets each level keeps.
const LEVELS: [(i64, usize); 3] = [(1, 600), (10, 360), (60, 1440)];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    pub births: u32,
    pub deaths: u32,
}

impl Bucket {
    fn net(&self) -> i64 {
        i64::from(self.births) - i64::from(self.deaths)
    }

    fn absorb(&mut self, other: Bucket) {
        self.births = self.births.saturating_add(other.births);
        self.deaths = self.deaths.saturating_add(other.deaths);
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Level {
    /// Index (time / width) of the front bucket.
    front: i64,
    buckets: VecDeque<Bucket>,
}

impl Level {
    fn contains(&self, idx: i64) -> bool {
        !self.buckets.is_empty() && idx >= self.front
    }

    /// One past the newest bucket's index.
    fn end(&self) -> i64 {
        self.front + self.buckets.len() as i64
    }

    /// The bucket at `idx`, which must be within the level (see
    /// [`CountHistory::reach`]).
    fn slot(&mut self, idx: i64) -> &mut Bucket {
        let at = usize::try_from(idx - self.front).unwrap_or(0);
        let last = self.buckets.len().saturating_sub(1);
        &mut self.buckets[at.min(last)]
    }
}

/// The count history of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct CountHistory {
    /// Count before the oldest bucket of any level.
    base: i64,
    /// `base` plus the net of every coarse (non 1 s) bucket: the count just
    /// before the first 1-second bucket.
    folded: i64,
    levels: [Level; 3],
    /// Total births and deaths ever recorded.
    pub total_births: u64,
    pub total_deaths: u64,
}

impl CountHistory {
    /// A history whose fine buckets start at `origin` (aligned down to the
    /// minute so that folding keeps whole coarse buckets).
    pub fn new(origin: Ts) -> Self {
        let secs = origin.nanos().div_euclid(1_000_000_000);
        let aligned = secs - secs.rem_euclid(60);
        let mut levels: [Level; 3] = Default::default();
        levels[0].front = aligned;
        levels[0].buckets.push_back(Bucket::default());
        CountHistory {
            base: 0,
            folded: 0,
            levels,
            total_births: 0,
            total_deaths: 0,
        }
    }

    pub fn birth(&mut self, at: Ts) {
        self.total_births += 1;
        self.record(
            at,
            Bucket {
                births: 1,
                deaths: 0,
            },
        );
    }

    /// Many births and deaths at one instant (a source that counts them).
    pub fn flow(&mut self, at: Ts, births: u64, deaths: u64) {
        if births == 0 && deaths == 0 {
            return;
        }
        self.total_births = self.total_births.saturating_add(births);
        self.total_deaths = self.total_deaths.saturating_add(deaths);
        self.record(
            at,
            Bucket {
                births: births.min(u64::from(u32::MAX)) as u32,
                deaths: deaths.min(u64::from(u32::MAX)) as u32,
            },
        );
    }

    pub fn death(&mut self, at: Ts) {
        self.total_deaths += 1;
        self.record(
            at,
            Bucket {
                births: 0,
                deaths: 1,
            },
        );
    }

    fn record(&mut self, at: Ts, b: Bucket) {
        let secs = at.nanos().div_euclid(1_000_000_000);
        for (i, (width, _)) in LEVELS.iter().enumerate() {
            let idx = secs.div_euclid(*width);
            if self.levels[i].contains(idx) {
                self.reach(i, idx);
                self.levels[i].slot(idx).absorb(b);
                if i > 0 {
                    self.folded += b.net();
                }
                self.fold();
                return;
            }
        }
        // Older than every bucket kept.
        self.base += b.net();
        self.folded += b.net();
    }

    /// Extends the fine buckets up to `horizon` so the count is defined there.
    pub fn advance_to(&mut self, horizon: Ts) {
        let secs = horizon.nanos().div_euclid(1_000_000_000);
        if secs >= self.levels[0].front {
            self.reach(0, secs);
            self.fold();
        }
    }

    /// Extends level `lvl` so that it holds index `idx`. However far ahead
    /// `idx` is (a target's clock can jump by years), the work is bounded
    /// by the level's capacity: when the gap is wider than that, everything
    /// the level holds moves to the coarser levels at once and the level
    /// starts again just before `idx`, instead of filling the gap with
    /// empty buckets.
    fn reach(&mut self, lvl: usize, idx: i64) {
        let (width, cap) = LEVELS[lvl];
        let ratio = LEVELS.get(lvl + 1).map_or(1, |next| next.0 / width);
        let level = &mut self.levels[lvl];
        if level.buckets.is_empty() {
            level.front = idx;
            level.buckets.push_back(Bucket::default());
            return;
        }
        let end = level.end();
        if idx < end {
            return;
        }
        if idx - end >= cap as i64 {
            let old_front = level.front;
            let held: Vec<Bucket> = level.buckets.drain(..).collect();
            // Start on a whole coarse bucket after everything moved out,
            // so the coarser levels stay strictly older than this one.
            let align_up = |i: i64| i + (ratio - i.rem_euclid(ratio)) % ratio;
            let start = idx - cap as i64 + 1;
            level.front = (start - start.rem_euclid(ratio)).max(align_up(end));
            for (j, b) in held.into_iter().enumerate() {
                self.spill(lvl, old_front + j as i64, b);
            }
        }
        let level = &mut self.levels[lvl];
        if level.buckets.is_empty() {
            level.buckets.push_back(Bucket::default());
        }
        while idx >= level.end() {
            level.buckets.push_back(Bucket::default());
        }
    }

    /// Moves bucket `idx` of level `lvl` into the next coarser level (or
    /// into the base count past the last level).
    fn spill(&mut self, lvl: usize, idx: i64, b: Bucket) {
        match LEVELS.get(lvl + 1) {
            Some(&(next_width, _)) => {
                if lvl == 0 {
                    self.folded += b.net();
                }
                let group = idx.div_euclid(next_width / LEVELS[lvl].0);
                self.reach(lvl + 1, group);
                self.levels[lvl + 1].slot(group).absorb(b);
            }
            None => self.base += b.net(),
        }
    }

    fn fold(&mut self) {
        for (i, &(width, cap)) in LEVELS.iter().enumerate() {
            let ratio = LEVELS.get(i + 1).map_or(1, |next| next.0 / width);
            while self.levels[i].buckets.len() > cap {
                let group = self.levels[i].front.div_euclid(ratio);
                while self.levels[i].front.div_euclid(ratio) == group
                    && self.levels[i].buckets.len() > 1
                {
                    let Some(b) = self.levels[i].buckets.pop_front() else {
                        break;
                    };
                    let idx = self.levels[i].front;
                    self.levels[i].front += 1;
                    self.spill(i, idx, b);
                }
            }
        }
    }

    /// The count now (after every recorded event).
    pub fn current(&self) -> i64 {
        self.folded + self.levels[0].buckets.iter().map(Bucket::net).sum::<i64>()
    }

    /// Counts at the end of each 1-second bucket that ends after `from` and at
    /// or before `to`, oldest first, as `(bucket end, count)`.
    pub fn fine_counts(&self, from: Ts, to: Ts) -> Vec<(Ts, i64)> {
        let mut out = Vec::new();
        let mut count = self.folded;
        let (from_s, to_s) = (
            from.nanos().div_euclid(1_000_000_000),
            to.nanos().div_euclid(1_000_000_000),
        );
        for (i, b) in self.levels[0].buckets.iter().enumerate() {
            count += b.net();
            let idx = self.levels[0].front + i as i64;
            if idx >= from_s && idx < to_s {
                out.push((Ts::from_secs(idx + 1), count));
            }
        }
        out
    }

    /// Births and deaths with timestamps in `[from, to)`, each level read
    /// at its own resolution: a coarse bucket counts when it starts at or
    /// after `from` and ends by `to`.
    pub fn flows(&self, from: Ts, to: Ts) -> Bucket {
        let (from_s, to_s) = (
            from.nanos().div_euclid(1_000_000_000),
            to.nanos().div_euclid(1_000_000_000),
        );
        let mut sum = Bucket::default();
        for (lvl, &(width, _)) in LEVELS.iter().enumerate() {
            let level = &self.levels[lvl];
            for (i, b) in level.buckets.iter().enumerate() {
                let start = (level.front + i as i64) * width;
                if start >= from_s && start + width <= to_s.max(from_s + 1) {
                    sum.absorb(*b);
                }
            }
        }
        sum
    }

    /// Where the history's data begins: the start of its oldest bucket.
    pub fn start(&self) -> Ts {
        for lvl in (0..LEVELS.len()).rev() {
            let level = &self.levels[lvl];
            if !level.buckets.is_empty() {
                return Ts::from_secs(level.front * LEVELS[lvl].0);
            }
        }
        Ts::from_secs(0)
    }

    /// The count at each of the `n + 1` instants `from`, `from + step`, …,
    /// oldest first, each level read at its own resolution: an instant
    /// inside a coarse bucket reads the count before that bucket. Walks
    /// back from the newest bucket, so the cost is the buckets since
    /// `from`, not the whole day the history may hold.
    pub fn sample(&self, from: Ts, step: Duration, n: usize) -> Vec<i64> {
        let at = |k: usize| from.plus(step * k as u32).nanos().div_euclid(1_000_000_000);
        let mut out = Vec::with_capacity(n + 1);
        // The count with every bucket ending after the instant taken off.
        let mut count = self.current();
        let mut k = n + 1;
        'levels: for (lvl, &(width, _)) in LEVELS.iter().enumerate() {
            let level = &self.levels[lvl];
            for (i, b) in level.buckets.iter().enumerate().rev() {
                let end = (level.front + i as i64 + 1) * width;
                while k > 0 && at(k - 1) >= end {
                    out.push(count);
                    k -= 1;
                }
                if k == 0 {
                    break 'levels;
                }
                count -= b.net();
            }
        }
        while k > 0 {
            out.push(count);
            k -= 1;
        }
        out.reverse();
        out
    }

    /// The whole history at its stored resolutions, oldest first, as
    /// `(bucket end, count)`: for charts spanning hours.
    pub fn series(&self) -> Vec<(Ts, i64)> {
        let mut out = Vec::new();
        let mut count = self.base;
        for lvl in (0..LEVELS.len()).rev() {
            let width = LEVELS[lvl].0;
            for (i, b) in self.levels[lvl].buckets.iter().enumerate() {
                count += b.net();
                let idx = self.levels[lvl].front + i as i64;
                out.push((Ts::from_secs((idx + 1) * width), count));
            }
        }
        out
    }

    /// Number of stored buckets, for memory accounting and tests.
    pub fn bucket_count(&self) -> usize {
        self.levels.iter().map(|l| l.buckets.len()).sum()
    }
}

/// A history in plain parts, for snapshot files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryParts {
    pub base: i64,
    /// Finest level first: (bucket width in seconds, index of the front
    /// bucket, buckets).
    pub levels: Vec<(i64, i64, Vec<Bucket>)>,
    pub total_births: u64,
    pub total_deaths: u64,
}

impl CountHistory {
    pub fn to_parts(&self) -> HistoryParts {
        HistoryParts {
            base: self.base,
            levels: LEVELS
                .iter()
                .zip(&self.levels)
                .map(|((w, _), l)| (*w, l.front, l.buckets.iter().copied().collect()))
                .collect(),
            total_births: self.total_births,
            total_deaths: self.total_deaths,
        }
    }

    /// Rebuilds a history, checking that the parts fit this version's levels.
    pub fn from_parts(p: &HistoryParts) -> Result<CountHistory, String> {
        if p.levels.len() != LEVELS.len() {
            return Err(format!(
                "history has {} levels, expected {}",
                p.levels.len(),
                LEVELS.len()
            ));
        }
        let mut levels: [Level; 3] = Default::default();
        let mut folded = p.base;
        for (i, ((width, front, buckets), (want_width, cap))) in
            p.levels.iter().zip(LEVELS).enumerate()
        {
            if *width != want_width || buckets.len() > cap {
                return Err(format!(
                    "history level {i} has width {width}s and {} buckets",
                    buckets.len()
                ));
            }
            if i > 0 {
                folded += buckets.iter().map(Bucket::net).sum::<i64>();
            }
            levels[i] = Level {
                front: *front,
                buckets: buckets.iter().copied().collect(),
            };
        }
        if levels[0].buckets.is_empty() {
            return Err("history has no fine buckets".into());
        }
        Ok(CountHistory {
            base: p.base,
            folded,
            levels,
            total_births: p.total_births,
            total_deaths: p.total_deaths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Ts {
        Ts::from_secs(1_700_000_040 + s)
    }

    #[test]
    fn late_reports_fix_the_past() {
        let mut h = CountHistory::new(t(0));
        h.advance_to(t(10));
        h.birth(t(3)); // reported at t=10, happened at t=3
        let counts = h.fine_counts(t(0), t(10));
        let at = |s: i64| counts.iter().find(|(ts, _)| *ts == t(s)).map(|c| c.1);
        assert_eq!(at(3), Some(0));
        assert_eq!(at(4), Some(1));
        assert_eq!(at(10), Some(1));
        assert_eq!(h.current(), 1);
    }

    #[test]
    fn samples_read_each_level_at_its_resolution() {
        let mut h = CountHistory::new(t(0));
        // One birth a second for two hours: the oldest seconds fold into
        // 10 s and 1 min buckets.
        for s in 0..7200 {
            h.birth(t(s));
        }
        h.advance_to(t(7200));
        // Within the 1 s level, samples agree with the fine counts.
        let fine: Vec<i64> = h
            .fine_counts(t(7139), t(7200))
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(h.sample(t(7140), Duration::from_secs(1), 60), fine);
        assert_eq!(fine.last(), Some(&7200));
        // Across levels: every sample is the true count, or the count
        // before the coarse bucket the instant falls in (1 min at most).
        let got = h.sample(t(0), Duration::from_secs(120), 60);
        for (k, c) in got.iter().enumerate() {
            let truth = (k as i64) * 120;
            assert!(*c <= truth && truth - c < 60, "sample {k}: {c} vs {truth}");
        }
        assert_eq!(h.start(), t(0));
        // Before the data: the base count.
        assert_eq!(h.sample(t(-600), Duration::from_secs(60), 2), [0, 0, 0]);
        // Flows over coarse buckets too.
        assert_eq!(h.flows(t(0), t(3600)).births, 3600);
    }

    #[test]
    fn births_before_origin_go_to_base() {
        let mut h = CountHistory::new(t(0));
        h.birth(t(-3600));
        h.birth(t(5));
        h.death(t(7));
        h.advance_to(t(9));
        assert_eq!(h.current(), 1);
        assert_eq!(h.fine_counts(t(0), t(1)), vec![(t(1), 1)]);
        assert_eq!(
            h.flows(t(0), t(9)),
            Bucket {
                births: 1,
                deaths: 1
            }
        );
    }

    #[test]
    fn a_day_of_history_stays_small_and_keeps_the_count() {
        let mut h = CountHistory::new(t(0));
        for s in 0..(26 * 3600) {
            if s % 7 == 0 {
                h.birth(t(s));
            }
            if s % 11 == 0 && s > 0 {
                h.death(t(s));
            }
            if s % 60 == 0 {
                h.advance_to(t(s));
            }
        }
        h.advance_to(t(26 * 3600));
        let births = (0..26 * 3600).filter(|s| s % 7 == 0).count() as i64;
        let deaths = (1..26 * 3600).filter(|s| s % 11 == 0).count() as i64;
        assert_eq!(h.current(), births - deaths);
        assert!(
            h.bucket_count() <= 600 + 360 + 1440 + 3,
            "{}",
            h.bucket_count()
        );
        assert_eq!(CountHistory::from_parts(&h.to_parts()).as_ref(), Ok(&h));
        let series = h.series();
        assert_eq!(series.last().map(|p| p.1), Some(births - deaths));
        // Series is time-ordered.
        assert!(series.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_clock_jumping_by_years_costs_no_memory_and_keeps_the_count() {
        let year = 365 * 86_400;
        let mut h = CountHistory::new(t(0));
        h.birth(t(1));
        h.birth(t(2));
        h.advance_to(t(100 * year));
        assert!(
            h.bucket_count() <= 600 + 360 + 1440 + 3,
            "{}",
            h.bucket_count()
        );
        assert_eq!(h.current(), 2);
        h.birth(t(100 * year + 5));
        h.death(t(50 * year));
        h.death(t(-100 * year));
        h.advance_to(t(200 * year));
        h.birth(t(3));
        h.advance_to(t(i64::MAX / 2_000_000_000));
        assert!(
            h.bucket_count() <= 600 + 360 + 1440 + 3,
            "{}",
            h.bucket_count()
        );
        assert_eq!(h.current(), 2);
        let series = h.series();
        assert_eq!(series.last().map(|p| p.1), Some(2));
        assert!(series.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(CountHistory::from_parts(&h.to_parts()).as_ref(), Ok(&h));
    }

    #[test]
    fn a_jump_keeps_recent_seconds_exact() {
        let mut h = CountHistory::new(t(0));
        h.birth(t(10));
        h.advance_to(t(10_000));
        h.birth(t(9_990));
        h.death(t(9_995));
        let counts = h.fine_counts(t(9_980), t(10_000));
        let at = |s: i64| counts.iter().find(|(ts, _)| *ts == t(s)).map(|c| c.1);
        assert_eq!(at(9_990), Some(1));
        assert_eq!(at(9_991), Some(2));
        assert_eq!(at(9_996), Some(1));
        assert_eq!(h.current(), 1);
    }
}
