//! "Keeps growing": a monotonic-trend test plus checks that tell a leak from
//! churn, a spike, a pool that filled up, and load that comes and goes.
//!
//! A group is growing over a window when all of these hold:
//! 1. the count series has a significant upward trend (Mann–Kendall,
//!    one-sided, z > 2.33, about p < 0.01);
//! 2. the net growth is material: at least 3 tasks and three standard
//!    deviations of the count's own noise. A count of tasks that come and
//!    go varies like a Poisson count; its change between two instants has
//!    a variance of about twice the tasks that turned over (alive at the
//!    window's start and ended within it). A leak's old tasks do not end,
//!    so a leak on a backlog of days is measured against its churn, not
//!    against the backlog;
//! 3. the growth is spread out and still going: the count rose in at least
//!    3 separate samples, spanning at least a third of the window, the last
//!    of them in the window's final third (a one-off burst, or a pool that
//!    filled up and stopped, is not a trend);
//! 4. the new tasks persist: of the tasks born between the window's start
//!    and a grace period ago (see [`grace`]: past the lifetimes of the
//!    site's finished tasks, tail included), those still alive account for at least half the count's growth
//!    over that same span. Load that rises with short-lived tasks fails
//!    this, however steep; a leak hidden in heavy churn passes it.
//!
//! Rule 4 compares like with like: births and growth over one span. With
//! task ages in power-of-two buckets (the hooks source) the span's edges
//! are moved to bucket bounds, so the alive count is exact, not a lower
//! bound that loses the tasks of the bucket straddling the window's start.
//!
//! The test runs over the window the user chose and, when the history
//! holds more, over windows 4×, 16×, … up to 1 024× as long (sampled to
//! about 60 points each): a leak of one task a minute shows in minutes of data, not
//! in 60 s. The first window that shows growth gives the verdict.

use crate::model::{CountHistory, Ts};
use std::time::Duration;

/// Mann–Kendall statistic S and its normal approximation z (with the tie
/// correction of the variance).
pub fn mann_kendall(series: &[i64]) -> (i64, f64) {
    let n = series.len();
    if n < 3 {
        return (0, 0.0);
    }
    let mut s: i64 = 0;
    for i in 0..n - 1 {
        let a = series[i];
        for &b in &series[i + 1..] {
            s += (b - a).signum();
        }
    }
    // Tie groups for the variance correction.
    let mut sorted = series.to_vec();
    sorted.sort_unstable();
    let mut ties = 0.0;
    let mut run = 1usize;
    for w in 1..=n {
        if w < n && sorted[w] == sorted[w - 1] {
            run += 1;
        } else {
            if run > 1 {
                let t = run as f64;
                ties += t * (t - 1.0) * (2.0 * t + 5.0);
            }
            run = 1;
        }
    }
    let nf = n as f64;
    let var = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    if var <= 0.0 {
        return (s, 0.0);
    }
    let z = if s > 0 {
        (s as f64 - 1.0) / var.sqrt()
    } else if s < 0 {
        (s as f64 + 1.0) / var.sqrt()
    } else {
        0.0
    };
    (s, z)
}

/// One-sided critical value for p < 0.01.
pub const Z_CRITICAL: f64 = 2.33;

/// What the growth test needs, as plain numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrendInput {
    /// Count at evenly spaced instants over the window, oldest first.
    pub counts: Vec<i64>,
    pub cohort: Cohort,
    /// Tasks alive at the window's start that ended within it.
    pub turning: u64,
}

/// The tasks born over one span of the window (from its start to a grace
/// period ago): how much the count grew over that span, and how many of
/// the tasks born in it are alive now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cohort {
    pub growth: i64,
    pub alive: u64,
}

/// The verdict of the growth test, with the numbers behind it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Growth {
    pub growing: bool,
    pub z: f64,
    /// Net change over the window.
    pub delta: i64,
    /// Seconds covered by the window the verdict comes from.
    pub seconds: usize,
    /// Tasks born in the window's cohort span and still alive.
    pub persisting: u32,
}

impl Growth {
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.seconds as u64)
    }
}

pub fn assess(input: &TrendInput) -> Growth {
    let c = &input.counts;
    let (Some(&first), Some(&last)) = (c.first(), c.last()) else {
        return Growth::default();
    };
    let delta = last - first;
    let (_, z) = mann_kendall(c);
    // Three standard deviations of a change of about sqrt(2 × turning).
    let noise = (18.0 * input.turning as f64).sqrt();
    let material = delta >= 3 && delta as f64 >= noise;
    let span = c.len().saturating_sub(1);
    let rises: Vec<usize> = c
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] > w[0])
        .map(|(i, _)| i + 1)
        .collect();
    // Rises alone say little beside churn (noise rises in every other
    // sample): the growth must also run through the whole window, each
    // third's median above the one before by at least 3/8 of its share of
    // the change (a pool that filled, or a burst, leaves two thirds
    // level, whatever the noise does).
    let thirds = medians_of_thirds(c);
    let spread = rises.len() >= 3
        && match (rises.first(), rises.last()) {
            (Some(a), Some(b)) => (b - a) * 3 >= span && (span - b) * 3 <= span,
            _ => false,
        }
        && thirds.is_some_and(|[a, b, c]| {
            let step = |x: i64, y: i64| y > x && (y - x) * 8 >= delta;
            step(a, b) && step(b, c)
        });
    let cohort = input.cohort;
    let persists = cohort.growth > 0 && cohort.alive.saturating_mul(2) >= cohort.growth as u64;
    Growth {
        growing: z > Z_CRITICAL && material && spread && persists,
        z,
        delta,
        seconds: span,
        persisting: cohort.alive.min(u64::from(u32::MAX)) as u32,
    }
}

/// The medians of a series' first, middle and last thirds.
fn medians_of_thirds(c: &[i64]) -> Option<[i64; 3]> {
    let n = c.len();
    if n < 6 {
        return None;
    }
    let median = |part: &[i64]| {
        let mut v = part.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    Some([
        median(&c[..n / 3]),
        median(&c[n / 3..2 * n / 3]),
        median(&c[2 * n / 3..]),
    ])
}

/// How many points each window's series is sampled to (at most; one a
/// second for windows up to a minute).
const POINTS: u64 = 60;
/// How much longer each further window is than the one before.
const WINDOW_STEP: u32 = 4;
/// Windows up to 4^5 = 1 024× the user's (17 h for 60 s), as far as the
/// history holds: a site whose tasks can live for minutes needs a window
/// that reaches past its grace period.
const WINDOWS: usize = 6;

/// What the growth test reads of a group's live tasks' ages.
pub trait Ages {
    /// Live tasks whose age lies in `[young, old)`, the two edges moved
    /// inwards to where the count is exact: the edges used and the count,
    /// or `None` when no such span is left.
    fn between(&self, young: Duration, old: Duration) -> Option<(Duration, Duration, u64)>;
    /// Live tasks at least `age` old (a lower bound where ages are coarse).
    fn at_least(&self, age: Duration) -> u64;
}

/// Ages known task by task (the console source).
pub struct ExactAges(pub Vec<Duration>);

impl Ages for ExactAges {
    fn between(&self, young: Duration, old: Duration) -> Option<(Duration, Duration, u64)> {
        let n = self.0.iter().filter(|a| **a >= young && **a < old).count();
        (young < old).then_some((young, old, n as u64))
    }
    fn at_least(&self, age: Duration) -> u64 {
        self.0.iter().filter(|a| **a >= age).count() as u64
    }
}

/// The lifetime quantile that stands for a site's longest-lived tasks.
pub const TAIL: f64 = 0.99;

/// How old a task born in the window must be to count as one that
/// persists: twice the lifetime 99 % of the site's finished tasks stay
/// within (a mean or median misses a heavy tail: one task in twenty
/// living 20× longer, under rising load, looks like tasks that persist),
/// at least 3× the typical lifetime and 2 s.
pub fn grace(typical: Option<Duration>, tail: Option<Duration>) -> Duration {
    // Wire values: products that saturate, never overflow.
    let by_typical = typical.unwrap_or_default().saturating_mul(3);
    let by_tail = tail.unwrap_or_default().saturating_mul(2);
    by_typical.max(by_tail).max(Duration::from_secs(2))
}

/// The growth test over a group's count history, whose counts are true
/// from `since`: over `window` (or the part of it the history holds),
/// then over longer windows the history covers fully.
pub fn growth_over(
    h: &CountHistory,
    since: Ts,
    horizon: Ts,
    window: Duration,
    grace: Duration,
    ages: &dyn Ages,
) -> Growth {
    let horizon = Ts::from_secs(horizon.nanos().div_euclid(1_000_000_000));
    let held = horizon.since(since).as_secs();
    let mut verdict = None;
    let mut w = window.as_secs();
    for k in 0..WINDOWS {
        if k > 0 && w > held {
            break;
        }
        let secs = w.min(held);
        let step = (secs / POINTS).max(1);
        let n = secs / step;
        let g = if n >= 2 {
            let span = Duration::from_secs(n * step);
            let counts = h.sample(horizon.minus(span), Duration::from_secs(step), n as usize);
            let delta = counts.last().unwrap_or(&0) - counts.first().unwrap_or(&0);
            if delta < 3 {
                // Not material whatever else holds: skip the age counts.
                verdict.get_or_insert(Growth {
                    delta,
                    seconds: span.as_secs() as usize,
                    ..Growth::default()
                });
                w = w.saturating_mul(u64::from(WINDOW_STEP));
                continue;
            }
            // Tasks alive at the window's start that ended within it: at
            // most those not still alive now (coarse ages can only
            // undercount the old ones), and at most all that ended in it.
            let old_gone = counts.first().map_or(0, |&c| {
                (c.max(0) as u64).saturating_sub(ages.at_least(span))
            });
            let ended = u64::from(
                h.flows(horizon.minus(span), horizon.plus(Duration::from_secs(1)))
                    .deaths,
            );
            let turning = old_gone.min(ended);
            let cohort = ages
                .between(grace, span)
                .filter(|(young, old, _)| young < old)
                .map(|(young, old, alive)| {
                    let at = |d: Duration| h.sample(horizon.minus(d), Duration::ZERO, 0)[0];
                    Cohort {
                        growth: at(young) - at(old),
                        alive,
                    }
                })
                .unwrap_or_default();
            let mut g = assess(&TrendInput {
                counts,
                cohort,
                turning,
            });
            g.seconds = span.as_secs() as usize;
            g
        } else {
            Growth::default()
        };
        if g.growing {
            return g;
        }
        verdict.get_or_insert(g);
        w = w.saturating_mul(u64::from(WINDOW_STEP));
    }
    verdict.unwrap_or_default()
}

#[cfg(test)]
mod sim;

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic noise source (xorshift), so tests need no crate.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self, spread: i64) -> i64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % (2 * spread as u64 + 1)) as i64 - spread
        }
    }

    /// The verdict when `alive` of the tasks born over the window (less
    /// its grace period, taken as the whole growth here) are still alive.
    fn growing(counts: Vec<i64>, alive: u64) -> bool {
        churning(counts, alive, 0)
    }

    /// The same, `turning` of the tasks alive at the start having ended.
    fn churning(counts: Vec<i64>, alive: u64, turning: u64) -> bool {
        let growth = counts.last().unwrap_or(&0) - counts.first().unwrap_or(&0);
        assess(&TrendInput {
            counts,
            cohort: Cohort { growth, alive },
            turning,
        })
        .growing
    }

    #[test]
    fn a_pool_that_filled_up_and_stopped_is_not_growing() {
        // Rose steadily for the first half of the window, flat since.
        let counts: Vec<i64> = (0..=60).map(|s| s.min(30)).collect();
        assert!(!growing(counts, 28));
        // Still rising in the last third: growing.
        let counts: Vec<i64> = (0..=60).map(|s| s.min(50)).collect();
        assert!(growing(counts, 48));
    }

    #[test]
    fn a_pool_or_a_burst_beside_churn_is_not_growing() {
        // 200 tasks that arrive within one sample and stay, beside churn
        // whose noise rises in every other sample: at any point of the
        // window, never a trend.
        for at in [5, 15, 25, 35, 45, 55] {
            for seed in 1..50 {
                let mut n = Noise(seed);
                let counts: Vec<i64> = (0..=60)
                    .map(|s| 5 + n.next(3) + if s >= at { 200 } else { 0 })
                    .collect();
                assert!(!churning(counts, 200, 5), "step at {at}, seed {seed}");
            }
        }
        // A leak beside the same churn is.
        let mut n = Noise(3);
        let counts: Vec<i64> = (0..=60).map(|s| 5 + n.next(3) + 2 * s).collect();
        assert!(churning(counts, 110, 5));
    }

    #[test]
    fn mann_kendall_signs() {
        let up: Vec<i64> = (0..30).collect();
        let (s, z) = mann_kendall(&up);
        assert_eq!(s, 435);
        assert!(z > 7.0);
        let flat = vec![5; 30];
        assert_eq!(mann_kendall(&flat), (0, 0.0));
        let down: Vec<i64> = (0..30).rev().collect();
        assert!(mann_kendall(&down).1 < -7.0);
    }

    #[test]
    fn slow_leak_one_task_per_two_seconds_is_growing() {
        let counts: Vec<i64> = (0..=60).map(|s| 10 + s / 2).collect();
        // Every leaked task older than the grace period is still alive.
        assert!(growing(counts, 29));
    }

    #[test]
    fn slow_leak_is_flagged_early_in_the_window() {
        let counts: Vec<i64> = (0..=12).map(|s| s / 2).collect();
        assert!(growing(counts, 5));
    }

    #[test]
    fn steady_churn_is_not_growing() {
        let mut n = Noise(7);
        let counts: Vec<i64> = (0..=60).map(|_| 50 + n.next(6)).collect();
        assert!(!growing(counts, 0));
    }

    #[test]
    fn noisy_flat_series_are_never_growing() {
        for seed in 1..200 {
            let mut n = Noise(seed);
            let counts: Vec<i64> = (0..=60).map(|_| 200 + n.next(20)).collect();
            // 200 tasks that come and go, some of them long enough to
            // outlive the grace period.
            assert!(
                !churning(counts.clone(), 10, 200),
                "seed {seed}: {counts:?}"
            );
        }
    }

    #[test]
    fn a_spike_that_recedes_is_not_growing() {
        let counts: Vec<i64> = (0..=60)
            .map(|s| if (20..30).contains(&s) { 10 + 50 } else { 10 })
            .collect();
        assert!(!growing(counts, 0));
    }

    #[test]
    fn a_one_off_burst_is_not_a_trend() {
        let counts: Vec<i64> = (0..=60).map(|s| if s < 30 { 10 } else { 60 }).collect();
        assert!(!growing(counts, 50));
    }

    #[test]
    fn load_that_rises_with_short_lived_tasks_is_not_a_leak() {
        // Load ramps up for the whole window, but tasks finish quickly: none
        // of the ones created in the window outlive the grace period.
        let counts: Vec<i64> = (0..=60).map(|s| 20 + s).collect();
        assert!(!growing(counts, 1));
    }

    #[test]
    fn load_that_rises_and_falls_back_is_not_growing() {
        let counts: Vec<i64> = (0..=60i64).map(|s| 20 + 30 - (s - 30).abs()).collect();
        assert!(!growing(counts, 0));
    }

    #[test]
    fn leak_hidden_in_heavy_churn_is_growing() {
        let mut n = Noise(42);
        let counts: Vec<i64> = (0..=60).map(|s| 300 + n.next(8) + 2 * s).collect();
        assert!(churning(counts, 110, 300));
        // One a second is within the churn's own noise over a minute (it
        // shows over a longer window).
        let counts: Vec<i64> = (0..=60).map(|s| 300 + n.next(8) + s).collect();
        assert!(!churning(counts, 55, 300));
    }

    #[test]
    fn a_leak_on_a_backlog_of_days_is_growing() {
        // 170 000 leaked tasks, all older than the window, none ending.
        let counts: Vec<i64> = (0..=60).map(|s| 172_800 + 2 * s).collect();
        assert!(churning(counts, 60, 0));
    }

    #[test]
    fn tiny_growth_is_not_material() {
        let counts: Vec<i64> = (0..=60).map(|s| 1000 + s / 30).collect();
        assert!(!growing(counts, 2));
    }
}
