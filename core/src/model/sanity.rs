//! Wire values judged before they size anything. A target's console port
//! is an input like any other: a broken or hostile one can send timestamps
//! at the ends of the i64 range, a clock that jumps by years, tasks dropped
//! before they were created. Times are clamped to the target's own clock,
//! and what was implausible is counted so the user is told.

use super::time::Ts;
use super::update::{TaskStats, Update};
use std::time::Duration;

/// How far past the target's `now` a timestamp may lie (clock skew between
/// the target's threads is milliseconds; this is generous).
pub const FUTURE_SLACK: Duration = Duration::from_secs(60);

/// A clock that moves back by more than this between two updates, or on by
/// more than [`JUMP_FORWARD`], is said to have jumped.
const JUMP_BACK: Duration = Duration::from_secs(1);
const JUMP_FORWARD: Duration = Duration::from_secs(86_400);

/// What a target sent that no sane subscriber would, counted since attach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Implausible {
    /// Times the target's `now` jumped (back over 1 s, or on over a day).
    pub clock_jumps: u32,
    pub largest_jump: Duration,
    /// Timestamps after the update's own `now` (set to `now`), and drops
    /// before creation (set to the creation).
    pub times_clamped: u64,
    /// Strings cut to the conversion's length cap.
    pub strings_cut: u64,
    /// Tasks, resources and ops not kept because the model was at its cap.
    pub over_cap: u64,
}

impl Implausible {
    pub fn any(&self) -> bool {
        *self != Implausible::default()
    }
}

/// Clamps `up`'s timestamps to its clock (or `prev_now` when it carries
/// none) and notes a clock jump against `prev_now`.
pub fn check(up: &mut Update, prev_now: Option<Ts>, seen: &mut Implausible) {
    seen.strings_cut = seen.strings_cut.saturating_add(u64::from(up.strings_cut));
    if let (Some(now), Some(prev)) = (up.now, prev_now) {
        let (back, on) = (prev.since(now), now.since(prev));
        if back > JUMP_BACK || on > JUMP_FORWARD {
            seen.clock_jumps = seen.clock_jumps.saturating_add(1);
            seen.largest_jump = seen.largest_jump.max(back.max(on));
        }
    }
    let Some(now) = up.now.or(prev_now) else {
        return;
    };
    let limit = now.plus(FUTURE_SLACK);
    let mut clamped = 0u64;
    for (_, st) in &mut up.task_stats {
        clamp_task(st, limit, &mut clamped);
    }
    for (_, st) in &mut up.resource_stats {
        clamp_span(&mut st.created_at, &mut st.dropped_at, limit, &mut clamped);
    }
    for (_, st) in &mut up.async_op_stats {
        clamp_span(&mut st.created_at, &mut st.dropped_at, limit, &mut clamped);
    }
    seen.times_clamped = seen.times_clamped.saturating_add(clamped);
}

fn clamp_task(st: &mut TaskStats, limit: Ts, n: &mut u64) {
    for t in [
        &mut st.last_wake,
        &mut st.first_poll,
        &mut st.last_poll_started,
        &mut st.last_poll_ended,
    ] {
        clamp(t, limit, n);
    }
    clamp_span(&mut st.created_at, &mut st.dropped_at, limit, n);
}

/// Clamps both ends to `limit`, and a drop before the creation to it.
fn clamp_span(created: &mut Option<Ts>, dropped: &mut Option<Ts>, limit: Ts, n: &mut u64) {
    clamp(created, limit, n);
    clamp(dropped, limit, n);
    if let (Some(c), Some(d)) = (*created, *dropped)
        && d < c
    {
        *dropped = Some(c);
        *n += 1;
    }
}

fn clamp(t: &mut Option<Ts>, limit: Ts, n: &mut u64) {
    if t.is_some_and(|t| t > limit) {
        *t = Some(limit);
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Option<Ts> {
        Some(Ts::from_secs(1_800_000_000 + secs))
    }

    #[test]
    fn future_times_and_early_drops_are_clamped_and_counted() {
        let mut up = Update {
            now: at(0),
            ..Update::default()
        };
        up.task_stats.push((
            1,
            TaskStats {
                created_at: Some(Ts::from_nanos(i64::MAX)),
                last_poll_ended: at(30),
                ..TaskStats::default()
            },
        ));
        up.task_stats.push((
            2,
            TaskStats {
                created_at: at(-5),
                dropped_at: at(-10),
                ..TaskStats::default()
            },
        ));
        let mut seen = Implausible::default();
        check(&mut up, None, &mut seen);
        assert_eq!(up.task_stats[0].1.created_at, at(60));
        assert_eq!(up.task_stats[0].1.last_poll_ended, at(30));
        assert_eq!(up.task_stats[1].1.dropped_at, at(-5));
        assert_eq!(seen.times_clamped, 2);
        assert_eq!(seen.clock_jumps, 0);
    }

    #[test]
    fn a_clock_jumping_back_and_forth_is_noted() {
        let mut seen = Implausible::default();
        let year = 365 * 86_400;
        let mut prev = at(0);
        for (secs, jumps) in [(1, 0), (-10 * year, 1), (10 * year, 2), (10 * year + 1, 2)] {
            let mut up = Update {
                now: at(secs),
                ..Update::default()
            };
            check(&mut up, prev, &mut seen);
            prev = up.now;
            assert_eq!(seen.clock_jumps, jumps, "at {secs}");
        }
        assert_eq!(seen.largest_jump, Duration::from_secs(20 * year as u64));
    }
}
