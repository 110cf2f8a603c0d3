//! Timestamps on the target's clock.
//!
//! All ages and durations are computed against the target's own clock
//! (`Update.now`), never the local one, so a skewed or lagging target still
//! gives correct idle times.

use std::num::NonZeroI64;
use std::time::Duration;

/// A point in time on the target's clock: nanoseconds since the Unix epoch.
///
/// Backed by a `NonZeroI64` so that `Option<Ts>` costs 8 bytes; this matters
/// with six timestamps per task and 100 000+ tasks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Ts(NonZeroI64);

impl Ts {
    /// The epoch itself is mapped to 1 ns after it, which no real target sends.
    pub fn from_nanos(nanos: i64) -> Ts {
        const ONE: NonZeroI64 = NonZeroI64::new(1).unwrap();
        Ts(NonZeroI64::new(nanos).unwrap_or(ONE))
    }

    /// Whole seconds since the epoch.
    pub fn from_secs(secs: i64) -> Ts {
        Ts::from_nanos(secs.saturating_mul(1_000_000_000))
    }

    pub fn nanos(self) -> i64 {
        self.0.get()
    }

    pub fn secs_f64(self) -> f64 {
        self.nanos() as f64 / 1e9
    }

    /// `self - earlier`, or zero when `earlier` is later.
    pub fn since(self, earlier: Ts) -> Duration {
        let d = self.nanos().saturating_sub(earlier.nanos());
        Duration::from_nanos(d.max(0) as u64)
    }

    pub fn plus(self, d: Duration) -> Ts {
        Ts::from_nanos(self.nanos().saturating_add(dur_nanos(d)))
    }

    pub fn minus(self, d: Duration) -> Ts {
        Ts::from_nanos(self.nanos().saturating_sub(dur_nanos(d)))
    }
}

/// A duration as signed nanoseconds, saturating.
pub fn dur_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_ts_is_one_word() {
        assert_eq!(std::mem::size_of::<Option<Ts>>(), 8);
    }

    #[test]
    fn zero_maps_to_one_nanosecond() {
        assert_eq!(Ts::from_nanos(0).nanos(), 1);
        assert_eq!(Ts::from_nanos(-5).nanos(), -5);
    }

    #[test]
    fn since_saturates_at_zero() {
        let a = Ts::from_secs(10);
        let b = Ts::from_secs(12);
        assert_eq!(b.since(a), Duration::from_secs(2));
        assert_eq!(a.since(b), Duration::ZERO);
        assert_eq!(a.plus(Duration::from_secs(2)), b);
        assert_eq!(b.minus(Duration::from_secs(2)), a);
    }
}
