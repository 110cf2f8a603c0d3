//! The one judge of every group, whichever source produced it: the count
//! history's verdicts (change over the window, growth, sparkline), the
//! suspect rule, and a suspect's likely cause and fix.

use super::blocked::Reason;
use super::suspect;
use super::trend;
use super::types::{Group, Params};
use crate::model::counted::Aggregates;
use crate::model::{Captures, CountHistory, GroupKey, Locations, TaskKind, Trace, Ts};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What grouping needs besides the tasks: where names and histories live,
/// and the target's clock.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub locations: &'a Locations,
    pub histories: &'a HashMap<GroupKey, CountHistory>,
    pub now: Ts,
    /// Newest instant for which counts are complete.
    pub horizon: Ts,
    /// Oldest instant from which they are (none: the histories' start).
    pub counts_since: Option<Ts>,
    /// Target-time spans without data (while disconnected).
    pub gaps: &'a [(Ts, Ts)],
    /// The traces verdicts refer to (`Verdict::trace`), from a capture.
    pub traces: &'a [Arc<Trace>],
    /// Groups the target counted itself (the hooks source).
    pub aggregates: Option<&'a Aggregates>,
    /// The capture, for the hooks source's groups (by location).
    pub captures: Option<&'a Captures>,
}

/// The count history's verdicts on a group: change over the window,
/// growth, sparkline, suspect.
/// How long a group's finished tasks lived: the typical (median or
/// mean) lifetime and the tail's (see [`trend::TAIL`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Lifetimes {
    pub typical: Option<Duration>,
    pub tail: Option<Duration>,
}

impl Lifetimes {
    /// From every finished task's lifetime, sorted (the console source):
    /// the median and the tail's quantile.
    pub fn of_sorted(sorted: &[Duration]) -> Lifetimes {
        Lifetimes {
            typical: sorted.get(sorted.len() / 2).copied(),
            tail: (!sorted.is_empty()).then(|| {
                let rank = (sorted.len() as f64 * trend::TAIL).ceil() as usize;
                sorted[rank.clamp(1, sorted.len()) - 1]
            }),
        }
    }
}

pub fn judge(
    g: &mut Group,
    frame: &Frame<'_>,
    params: &Params,
    lives: Lifetimes,
    ages: &dyn trend::Ages,
) {
    let horizon = frame.horizon;
    let window_start = horizon.minus(params.window);
    let mut finished_in_window = 0;
    if let Some(h) = frame.histories.get(&g.key) {
        let counts = h.fine_counts(window_start.minus(Duration::from_secs(1)), horizon);
        if let (Some(first), Some(last)) = (counts.first(), counts.last()) {
            g.delta = last.1 - first.1;
        }
        let since = frame.counts_since.map_or(h.start(), |s| s.max(h.start()));
        let grace = trend::grace(lives.typical, lives.tail);
        g.growth = trend::growth_over(h, since, horizon, params.window, grace, ages);
        finished_in_window = u64::from(
            h.flows(
                horizon.minus(g.growth.window()),
                horizon.plus(Duration::from_secs(1)),
            )
            .deaths,
        );
        let spark_from = horizon.minus(Duration::from_secs(params.spark_points as u64));
        g.spark = h
            .fine_counts(spark_from, horizon)
            .into_iter()
            .map(|(t, c)| {
                let blind = frame.gaps.iter().any(|(a, b)| t > *a && t <= *b);
                (!blind).then_some(c.max(0) as u64)
            })
            .collect();
    }
    let ctx = suspect::Context {
        window: g.growth.window(),
        finished_in_window,
        typical_lifetime: lives.typical,
    };
    let facts = suspect::Facts {
        live: g.live,
        main: g.main_reason(),
        longest_idle: g.longest_idle,
        lost: (g.kind != TaskKind::BlockOn)
            .then(|| {
                g.reasons
                    .iter()
                    .find(|r| r.reason == Reason::NoWaker)
                    .copied()
            })
            .flatten(),
    };
    g.suspect = suspect::judge(&facts, &g.growth, &ctx);
    g.advice = super::advice::advise(g);
}
