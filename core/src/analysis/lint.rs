//! tokio-console's warnings, per task and per group, with its meanings:
//! a task that wakes itself more than half the time, a poll that does not
//! yield, a large future, a future tokio boxed because it was too large.
//! (Its "lost waker" warning is a reason here, `lost waker`, and a proven
//! leak: `SuspectKind::LostWaker`.)

use super::blocked::{Reason, Verdict};
use crate::model::Task;

/// One warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lint {
    /// More than half of the task's wakes came from the task itself.
    SelfWakes,
    /// In one poll for a second or more: it does not yield.
    LongPoll,
    /// The future is [`LARGE_FUTURE_BYTES`] or more (`size.bytes`).
    LargeFuture,
    /// tokio boxed the future because it was too large
    /// (`original_size.bytes` set).
    AutoBoxed,
}

/// tokio-console's threshold for "large future".
pub const LARGE_FUTURE_BYTES: u64 = 1024;

impl Lint {
    pub const ALL: [Lint; 4] = [
        Lint::SelfWakes,
        Lint::LongPoll,
        Lint::LargeFuture,
        Lint::AutoBoxed,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Lint::SelfWakes => "self_wakes",
            Lint::LongPoll => "long_poll",
            Lint::LargeFuture => "large_future",
            Lint::AutoBoxed => "auto_boxed",
        }
    }

    /// For rows: `⚠ self-wakes ×3`.
    pub fn label(self) -> &'static str {
        match self {
            Lint::SelfWakes => "self-wakes",
            Lint::LongPoll => "never yields",
            Lint::LargeFuture => "large future",
            Lint::AutoBoxed => "auto-boxed future",
        }
    }

    /// For sentences.
    pub fn phrase(self) -> &'static str {
        match self {
            Lint::SelfWakes => "woke itself for more than half of its wakes",
            Lint::LongPoll => "has been in one poll for a second or more (it does not yield)",
            Lint::LargeFuture => "has a future of 1 KiB or more (size.bytes)",
            Lint::AutoBoxed => {
                "has a future tokio boxed because it was too large (original_size.bytes)"
            }
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

crate::keyed::keyed!(Lint, key, "lint");

/// A task's warnings, as a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lints(u8);

impl Lints {
    pub fn insert(&mut self, l: Lint) {
        self.0 |= l.bit();
    }

    pub fn contains(self, l: Lint) -> bool {
        self.0 & l.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Lint> {
        Lint::ALL.into_iter().filter(move |l| self.contains(*l))
    }
}

impl FromIterator<Lint> for Lints {
    fn from_iter<I: IntoIterator<Item = Lint>>(it: I) -> Lints {
        let mut s = Lints::default();
        for l in it {
            s.insert(l);
        }
        s
    }
}

/// A live task's warnings, from its stats, fields and verdict.
pub fn of_task(t: &Task, v: &Verdict) -> Lints {
    let mut out = Lints::default();
    let s = &t.stats;
    if s.wakes > 0 && u64::from(s.self_wakes) * 2 > u64::from(s.wakes) {
        out.insert(Lint::SelfWakes);
    }
    if v.reason == Reason::StuckInPoll {
        out.insert(Lint::LongPoll);
    }
    let field = |name: &str| {
        t.fields()
            .iter()
            .find(|(k, _)| &**k == name)
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
    };
    if field("size.bytes").is_some_and(|b| b >= LARGE_FUTURE_BYTES) {
        out.insert(Lint::LargeFuture);
    }
    if field("original_size.bytes").is_some() {
        out.insert(Lint::AutoBoxed);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_of_lints() {
        let s: Lints = [Lint::AutoBoxed, Lint::SelfWakes].into_iter().collect();
        assert!(s.contains(Lint::SelfWakes) && !s.contains(Lint::LongPoll));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Lint::SelfWakes, Lint::AutoBoxed]
        );
        assert!(Lints::default().is_empty());
    }
}
