//! One task's details as console-subscriber sends them while a client
//! watches that task (`WatchTaskDetails`): its poll-time and
//! scheduled-time histograms, summarised for drawing.

use super::Ts;
use std::time::Duration;

/// A histogram of durations, reduced to what the view draws: counts in
/// equal-width buckets from the smallest to the largest value, and the
/// usual percentiles.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub count: u64,
    pub min: Duration,
    pub max: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    /// `BUCKETS` counts over `min..=max`.
    pub buckets: Vec<u64>,
    /// Values above the histogram's range, and the largest of them.
    pub high_outliers: u64,
    pub highest_outlier: Option<Duration>,
}

/// Buckets a histogram is drawn with.
pub const BUCKETS: usize = 48;

impl Histogram {
    /// From HdrHistogram's V2 serialization (what console-subscriber
    /// sends); `None` for bytes that do not decode.
    pub fn decode(raw: &[u8]) -> Option<Histogram> {
        let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut std::io::Cursor::new(raw))
            .ok()?;
        let count = h.len();
        if count == 0 {
            return Some(Histogram::default());
        }
        let (lo, hi) = (h.min(), h.max());
        let width = ((hi - lo) / BUCKETS as u64).max(1);
        let mut buckets = vec![0u64; BUCKETS];
        for v in h.iter_recorded() {
            // A recorded value stands for its bucket's range; its top may lie
            // past the largest value recorded.
            let at = v.value_iterated_to().clamp(lo, hi);
            let i = (((at - lo) / width) as usize).min(BUCKETS - 1);
            buckets[i] += v.count_at_value();
        }
        let q = |p: f64| Duration::from_nanos(h.value_at_quantile(p));
        Some(Histogram {
            count,
            min: Duration::from_nanos(lo),
            max: Duration::from_nanos(hi),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            buckets,
            high_outliers: 0,
            highest_outlier: None,
        })
    }
}

/// The details of the task the view has open.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskDetails {
    /// The console's id of the task (a span id).
    pub task: u64,
    pub at: Option<Ts>,
    pub poll: Option<Histogram>,
    pub scheduled: Option<Histogram>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serialized_histogram_is_summarised() {
        use hdrhistogram::serialization::Serializer;
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2).unwrap();
        for us in 1..=100u64 {
            h.record(us * 1000).unwrap();
        }
        let mut raw = Vec::new();
        hdrhistogram::serialization::V2Serializer::new()
            .serialize(&h, &mut raw)
            .unwrap();
        let s = Histogram::decode(&raw).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.buckets.iter().sum::<u64>(), 100);
        assert!(
            (49_000..=51_000).contains(&(s.p50.as_nanos() as u64)),
            "{s:?}"
        );
        assert!(s.p99 >= Duration::from_micros(98), "{s:?}");
        assert_eq!(Histogram::decode(b"not a histogram"), None);
    }
}
