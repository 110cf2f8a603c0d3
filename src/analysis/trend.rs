//! "Keeps growing": a monotonic-trend test plus checks that tell a leak from
//! churn, a spike, and load that comes and goes.
//!
//! A group is growing over the window when all of these hold:
//! 1. the per-second count series has a significant upward trend
//!    (Mann–Kendall, one-sided, z > 2.33, about p < 0.01);
//! 2. the net growth is material: at least max(3 tasks, 5 % of the count at
//!    the window's start);
//! 3. the growth is spread out: the count rose in at least 3 separate
//!    seconds, spanning at least a third of the window (a one-off burst is
//!    not a trend);
//! 4. the new tasks persist: live tasks created in the window and older
//!    than a grace period (3× the group's typical lifetime, at least 2 s)
//!    account for at least half the growth. Load that rises with
//!    short-lived tasks fails this, however steep; a leak hidden in heavy
//!    churn passes it.

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
    /// Count at the end of each second of the window, oldest first.
    pub counts: Vec<i64>,
    /// Live tasks created in the window and older than the grace period.
    pub persisting: u32,
}

/// The verdict of the growth test, with the numbers behind it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Growth {
    pub growing: bool,
    pub z: f64,
    /// Net change over the window.
    pub delta: i64,
    /// Seconds covered by the series.
    pub seconds: usize,
    pub persisting: u32,
}

pub fn assess(input: &TrendInput) -> Growth {
    let c = &input.counts;
    let (Some(&first), Some(&last)) = (c.first(), c.last()) else {
        return Growth::default();
    };
    let delta = last - first;
    let (_, z) = mann_kendall(c);
    let material = delta >= 3.max((first as f64 * 0.05).ceil() as i64);
    let rises: Vec<usize> = c
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] > w[0])
        .map(|(i, _)| i)
        .collect();
    let spread = rises.len() >= 3
        && match (rises.first(), rises.last()) {
            (Some(a), Some(b)) => (b - a) * 3 >= c.len().saturating_sub(1),
            _ => false,
        };
    let persists = i64::from(input.persisting) * 2 >= delta;
    Growth {
        growing: z > Z_CRITICAL && material && spread && persists,
        z,
        delta,
        seconds: c.len().saturating_sub(1),
        persisting: input.persisting,
    }
}

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

    fn growing(counts: Vec<i64>, persisting: u32) -> bool {
        assess(&TrendInput { counts, persisting }).growing
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
            assert!(!growing(counts.clone(), 10), "seed {seed}: {counts:?}");
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
        let counts: Vec<i64> = (0..=60).map(|s| 300 + n.next(8) + s / 2).collect();
        assert!(growing(counts, 28));
    }

    #[test]
    fn tiny_growth_is_not_material() {
        let counts: Vec<i64> = (0..=60).map(|s| 1000 + s / 30).collect();
        assert!(!growing(counts, 2));
    }
}
