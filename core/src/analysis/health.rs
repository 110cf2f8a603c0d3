//! What makes the numbers incomplete, in words: one wording for the status
//! line, reports and `watch`.

use crate::model::Health;
use crate::text;
use std::time::Duration;

/// Lag at which the subscriber's view is called stale.
const LAG_WARN: Duration = Duration::from_secs(2);

pub fn warnings(h: &Health) -> Vec<String> {
    let mut out = Vec::new();
    if h.console_paused {
        out.push(
            "target's console is paused by another client (tokio-console?): no new data until it resumes"
                .into(),
        );
    }
    let dropped = h.dropped_events.total();
    if dropped > 0 {
        out.push(format!(
            "target dropped {} events: counts are lower bounds (raise TOKIO_CONSOLE_BUFFER_CAPACITY)",
            text::count(dropped)
        ));
    }
    if h.lag >= LAG_WARN {
        out.push(format!(
            "target's console lags {}: shorten TOKIO_CONSOLE_PUBLISH_INTERVAL",
            text::duration(h.lag)
        ));
    }
    if h.full_state == Some(false) {
        out.push(
            "target sent no initial state (over console-subscriber's fixed 4 MiB cap): tasks that existed before and never change stay unseen".into(),
        );
    }
    if h.unseen_tasks > 0 {
        out.push(format!(
            "{} live tasks unseen (target's first update was too large to send)",
            text::count(h.unseen_tasks as u64)
        ));
    }
    let odd = &h.implausible;
    if odd.clock_jumps > 0 {
        out.push(format!(
            "target's clock jumped {}× (largest {}): ages and trends around the jumps are unreliable",
            odd.clock_jumps,
            text::duration(odd.largest_jump)
        ));
    }
    let counted = [
        (
            odd.times_clamped,
            "impossible timestamps (in its future, or drops before creation): clamped",
        ),
        (odd.strings_cut, "strings over 4 KiB: cut"),
        (
            odd.over_cap,
            "tasks, resources or ops beyond what taskscope keeps: not followed",
        ),
    ];
    for (n, what) in counted.into_iter().filter(|(n, _)| *n > 0) {
        out.push(format!("target sent {} {what}", text::count(n)));
    }
    out.extend(set_aside(h));
    if h.restarts > 0 {
        out.push(format!(
            "target restarted {}×: task ids restarted",
            h.restarts
        ));
    }
    out
}

/// What the hooks source sent that was not kept (over the viewer's caps)
/// or set aside (it cannot be true), in words.
fn set_aside(h: &Health) -> Vec<String> {
    let mut out = Vec::new();
    let s = &h.set_aside;
    let reports = [
        (
            s.counts,
            "group reports with counts it cannot have (above what it spawned): set aside",
        ),
        (
            s.ages,
            "group reports with times outside its life: set aside",
        ),
        (
            s.backwards,
            "group reports whose totals went backwards: set aside",
        ),
        (
            s.clock,
            "messages whose clock ran backwards or ahead: set aside",
        ),
        (s.history, "site histories it cannot have kept: set aside"),
    ];
    for (n, what) in reports.into_iter().filter(|(n, _)| *n > 0) {
        out.push(format!("target sent {} {what}", text::count(n)));
    }
    for (n, what) in h.capped.described() {
        out.push(format!("target sent {} {what}", text::count(n)));
    }
    if h.forgotten > 0 {
        out.push(format!(
            "{} spawn locations no longer followed, to follow newer ones (at most {} at once)",
            text::count(h.forgotten),
            crate::model::caps::MAX_TRACKED
        ));
    }
    out
}

/// What limits the capture reasons, in words (empty when all is well or
/// the target has no agent).
pub fn waits_warnings(d: &super::WaitsStatus) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &d.error {
        out.push(format!("the last capture failed: {e}"));
    }
    if let crate::model::Agent::Unavailable(why) = &d.agent {
        out.push(format!("the target's agent cannot take captures: {why}"));
    }
    out
}
