//! Which groups look like leaks, and the one line that says why. The only
//! place that words a suspect: the TUI, reports and `--once` render it.

use super::reason::{Reason, ReasonCount};
use super::trend::Growth;
use super::types::{Suspect, SuspectKind, percent};
use crate::text;
use std::time::Duration;

/// Share of live tasks that must share one wait for the `Stuck` rule.
const STUCK_SHARE: u32 = 80;
/// How many times the usual lifetime counts as "far longer".
const STUCK_FACTOR: u32 = 10;
const STUCK_MIN: Duration = Duration::from_secs(30);
/// How long a task must have been idle without a waker before it counts
/// as lost: the console's waker counts and poll times arrive in separate
/// messages, so a task just woken can look waker-less for a moment.
pub const LOST_WAKER_MIN: Duration = Duration::from_secs(5);

/// What the rules need beyond the group itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Context {
    pub window: Duration,
    /// Tasks of the group that finished within the window.
    pub finished_in_window: u64,
    /// Median lifetime of the group's finished tasks still known.
    pub typical_lifetime: Option<Duration>,
}

/// What the rules read of a group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Facts {
    pub live: u32,
    /// The reason most of its live tasks share.
    pub main: Option<ReasonCount>,
    pub longest_idle: Option<Duration>,
    /// Its live tasks idle with no waker (none for `block_on`, whose
    /// future the runtime's thread polls without a waker).
    pub lost: Option<ReasonCount>,
}

pub fn judge(g: &Facts, growth: &Growth, ctx: &Context) -> Option<Suspect> {
    let main = g.main?;
    let lost = g
        .lost
        .filter(|l| l.tasks > 0 && l.longest >= LOST_WAKER_MIN && !growth.growing);
    if let Some(l) = lost {
        return Some(Suspect {
            kind: SuspectKind::LostWaker,
            reason: format!(
                "{} {} idle with no waker, up to {}: nothing can wake {} again (lost waker)",
                text::count(u64::from(l.tasks)),
                if l.tasks == 1 { "task" } else { "tasks" },
                text::duration(l.longest),
                if l.tasks == 1 { "it" } else { "them" }
            ),
        });
    }
    let share = percent(main.tasks, g.live);
    // A wait nobody saw says so.
    let inferred = if super::types::mostly_inferred(main.inferred, main.tasks) {
        " (inferred)"
    } else {
        ""
    };
    let mix = if main.reason.is_wait() {
        format!(
            "{share}% {}{inferred}, idle up to {}",
            main.reason.short(),
            text::duration(main.longest)
        )
    } else {
        format!("{share}% {}", main.reason.short())
    };
    if growth.growing {
        let finished = match ctx.finished_in_window {
            0 => "none finished".to_string(),
            n => format!("{n} finished"),
        };
        return Some(Suspect {
            kind: SuspectKind::Growing,
            reason: format!(
                "{} in {}, {finished}; {mix}",
                text::delta(growth.delta),
                text::duration(ctx.window)
            ),
        });
    }
    let lifetime = ctx.typical_lifetime?;
    let limit = (lifetime * STUCK_FACTOR).max(STUCK_MIN);
    let stuck = g.live >= 3
        && main.reason.is_wait()
        && main.reason != Reason::Completed
        && share >= STUCK_SHARE
        && main.longest >= limit
        && g.longest_idle.is_some_and(|d| d >= limit);
    if stuck {
        return Some(Suspect {
            kind: SuspectKind::Stuck,
            reason: format!(
                "{mix}; their usual lifetime is {}",
                text::duration(lifetime)
            ),
        });
    }
    None
}

/// Whether `location` matches a goleak-style ignore pattern: `*` matches
/// any run of characters; a pattern without `*` matches as a substring.
pub fn pattern_matches(pattern: &str, location: &str) -> bool {
    if !pattern.contains('*') {
        return location.contains(pattern);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut rest = location;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Clears the suspect mark of groups whose location matches a pattern.
/// Returns the locations un-marked, for the report to say so.
pub fn ignore(a: &mut super::Analysis, patterns: &[String]) -> Vec<String> {
    let mut ignored = Vec::new();
    for g in &mut a.groups {
        if g.suspect.is_some() && patterns.iter().any(|p| pattern_matches(p, &g.location)) {
            g.suspect = None;
            ignored.push(g.location.to_string());
        }
    }
    a.totals.suspects = a.groups.iter().filter(|g| g.suspect.is_some()).count() as u32;
    ignored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_idle_with_no_waker_are_a_proven_leak_once_it_lasts() {
        let lost = |secs| ReasonCount {
            reason: Reason::NoWaker,
            tasks: 2,
            longest: Duration::from_secs(secs),
            ..ReasonCount::default()
        };
        let ctx = Context {
            window: Duration::from_secs(60),
            finished_in_window: 0,
            typical_lifetime: None,
        };
        let facts = |secs| Facts {
            live: 2,
            main: Some(lost(secs)),
            longest_idle: Some(Duration::from_secs(secs)),
            lost: Some(lost(secs)),
        };
        let s = judge(&facts(6), &Growth::default(), &ctx).expect("suspect");
        assert_eq!(s.kind, SuspectKind::LostWaker);
        assert_eq!(
            s.reason,
            "2 tasks idle with no waker, up to 6s: nothing can wake them again (lost waker)"
        );
        // A moment without a waker is a race in the console's data.
        assert_eq!(judge(&facts(1), &Growth::default(), &ctx), None);
    }

    use super::pattern_matches;

    #[test]
    fn ignore_patterns() {
        assert!(pattern_matches("server.rs", "src/server.rs:88:9"));
        assert!(pattern_matches("src/*.rs:88:*", "src/server.rs:88:9"));
        assert!(pattern_matches("*server*", "src/server.rs:88:9"));
        assert!(!pattern_matches("src/*.rs:89:*", "src/server.rs:88:9"));
        assert!(!pattern_matches("tokio-*", "src/server.rs:88:9"));
        assert!(pattern_matches(
            "tokio-*",
            "tokio-1.54.1/src/runtime/x.rs:1:1"
        ));
    }
}
