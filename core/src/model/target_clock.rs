//! The hooks source's clock, judged one message at a time. A real
//! taskscope-agent's `now` is its start plus a monotonic clock: within one
//! agent process (one `since`) it never runs backwards, and it never runs
//! ahead of the time that passed where the viewer received the messages
//! (it may run behind: a suspended VM). A message whose clock does either
//! is set aside whole, so that one lying clock cannot move the time every
//! group is judged at (a clock a year ahead would have frozen every
//! history). The viewer's receive times come from `conn` as plain data;
//! nothing here reads a clock.

use super::time::Ts;
use std::time::{Duration, Instant};

/// How far the target's clock may run ahead of the viewer's receive times
/// in all, plus a thousandth of the time watched (clock rates differ by
/// parts per million).
const AHEAD: Duration = Duration::from_secs(10);
/// How far `now` may step back from the previous message's (the agent's
/// coarse clock and the message's construction).
const BACK: Duration = Duration::from_secs(1);
/// Consistent messages ahead of the anchor that make a new anchor (the
/// first message of the stream lied, or the clocks drifted apart).
const REANCHOR_AFTER: u32 = 3;

/// Why a message's clock is set aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The message's time, on the model's (never earlier than the last).
    Accept(Ts),
    /// Its `now` ran backwards, ahead of real time, or its start moved.
    SetAside,
}

/// What the model remembers of the target's clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetClock {
    /// The agent process these messages come from.
    since: Option<Ts>,
    /// The first accepted message: where it was received, and its clock.
    anchor: Option<(Instant, Ts)>,
    /// The last accepted `now`.
    last: Option<Ts>,
    /// Messages set aside for running ahead, in a row, and the first of
    /// them.
    ahead: Option<(Instant, Ts, u32)>,
}

impl TargetClock {
    /// Judges a message taken at `now` by the agent started at `since`,
    /// received at `received` (`None`: no receive time, e.g. a test; then
    /// only backwards steps are caught). `new_agent`: the stream began
    /// with another agent process (a restart), whose clock starts afresh.
    pub fn judge(
        &mut self,
        now: Ts,
        since: Ts,
        received: Option<Instant>,
        new_agent: bool,
    ) -> Verdict {
        // An agent cannot have started after its own `now`.
        if since > now.plus(BACK) {
            return Verdict::SetAside;
        }
        if new_agent || self.since.is_none() {
            self.since = Some(since);
            self.anchor = received.map(|r| (r, now));
            self.ahead = None;
            // A restarted agent's clock may read earlier than the old one.
            let at = self.last.map_or(now, |l| l.max(now));
            self.last = Some(at);
            return Verdict::Accept(at);
        }
        if self.since != Some(since) {
            return Verdict::SetAside;
        }
        let last = self.last.unwrap_or(now);
        if now < last.minus(BACK) {
            return Verdict::SetAside;
        }
        if let (Some((at, then)), Some(r)) = (self.anchor, received) {
            let passed = r.saturating_duration_since(at);
            let allowed = passed + AHEAD + passed / 1_000;
            if now.since(then) > allowed {
                return self.ran_ahead(now, r);
            }
        } else if self.anchor.is_none() {
            self.anchor = received.map(|r| (r, now));
        }
        self.ahead = None;
        let at = now.max(last);
        self.last = Some(at);
        Verdict::Accept(at)
    }

    /// A message ahead of the anchor: set aside, unless it is the
    /// [`REANCHOR_AFTER`]th in a row that agree with each other (then the
    /// anchor was wrong, and they become it).
    fn ran_ahead(&mut self, now: Ts, r: Instant) -> Verdict {
        let agrees = self.ahead.is_some_and(|(at, then, _)| {
            let passed = r.saturating_duration_since(at);
            now >= then && now.since(then) <= passed + AHEAD
        });
        let n = match self.ahead {
            Some((_, _, n)) if agrees => n + 1,
            _ => 1,
        };
        let first = match self.ahead {
            Some((at, then, _)) if agrees => (at, then),
            _ => (r, now),
        };
        if n >= REANCHOR_AFTER {
            self.anchor = Some(first);
            self.ahead = None;
            self.last = Some(now);
            return Verdict::Accept(now);
        }
        self.ahead = Some((first.0, first.1, n));
        Verdict::SetAside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Ts {
        Ts::from_secs(1_800_000_000 + s)
    }

    const YEAR: i64 = 365 * 86_400;

    /// Messages every second (received then), with the clock `clock(i)`.
    fn run(clock: impl Fn(i64) -> i64) -> Vec<Verdict> {
        let t0 = Instant::now();
        let mut c = TargetClock::default();
        (0..12)
            .map(|i| {
                let received = t0 + Duration::from_secs(i as u64);
                c.judge(at(clock(i)), at(-60), Some(received), i == 0)
            })
            .collect()
    }

    #[test]
    fn an_honest_clock_is_taken_as_it_is() {
        let v = run(|i| i);
        assert!(
            v.iter()
                .enumerate()
                .all(|(i, v)| *v == Verdict::Accept(at(i as i64)))
        );
    }

    #[test]
    fn a_clock_back_a_year_every_third_second_is_set_aside_then() {
        let v = run(|i| if i % 3 == 2 { i - YEAR } else { i });
        for (i, v) in v.iter().enumerate() {
            let want = if i % 3 == 2 {
                Verdict::SetAside
            } else {
                Verdict::Accept(at(i as i64))
            };
            assert_eq!(*v, want, "message {i}");
        }
    }

    #[test]
    fn a_clock_a_year_ahead_now_and_then_is_set_aside() {
        let v = run(|i| if i % 4 == 1 { i + YEAR } else { i });
        assert_eq!(v.iter().filter(|v| **v == Verdict::SetAside).count(), 3);
        assert_eq!(v[11], Verdict::Accept(at(11)));
    }

    #[test]
    fn a_first_message_that_lied_is_outvoted() {
        // The first message 40 s back (still after the agent's start),
        // then an honest clock: after three that agree, the honest clock
        // is the reference.
        let v = run(|i| if i == 0 { -40 } else { i });
        assert_eq!(v[0], Verdict::Accept(at(-40)));
        assert_eq!(&v[1..3], &[Verdict::SetAside, Verdict::SetAside]);
        assert_eq!(v[3], Verdict::Accept(at(3)));
        assert_eq!(v[11], Verdict::Accept(at(11)));
        // A year back is before the agent's start: set aside at once.
        let v = run(|i| if i == 0 { -YEAR } else { i });
        assert_eq!(v[0], Verdict::SetAside);
        assert!(v[1..].iter().all(|v| matches!(v, Verdict::Accept(_))));
    }

    #[test]
    fn a_clock_that_runs_slow_is_believed_and_a_moved_start_is_not() {
        let v = run(|i| i / 2);
        assert!(v.iter().all(|v| matches!(v, Verdict::Accept(_))));
        let mut c = TargetClock::default();
        let t0 = Instant::now();
        c.judge(at(0), at(-60), Some(t0), true);
        assert_eq!(
            c.judge(at(1), at(-30), Some(t0 + Duration::from_secs(1)), false),
            Verdict::SetAside
        );
        // Nor can an agent start after its own now, even in its first
        // message.
        let mut c = TargetClock::default();
        assert_eq!(c.judge(at(0), at(60), Some(t0), true), Verdict::SetAside);
        assert_eq!(
            c.judge(at(1), at(-60), Some(t0), true),
            Verdict::Accept(at(1))
        );
    }
}
