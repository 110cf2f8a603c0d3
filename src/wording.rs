//! How a group is worded for people, in one place: shares as percentages, the kind
//! suffix, the blocked-on mix and the "mostly from the capture" rule.
//! The TUI, the reports, the diff and `watch` all word groups through
//! these, so the rules cannot drift apart.

use crate::analysis::Group;
use crate::model::TaskKind;

/// A group's own words: what its row, its detail and reports show.
pub trait Words {
    /// " (blocking)" for tasks that are not plain tasks, else "".
    fn kind_suffix(&self) -> String;
    /// " [conn-handler]" or " [pool-worker-0 +3 names]", then where the
    /// spawning tasks were spawned (hooks source), targets and warnings.
    fn names_suffix(&self) -> String;
    /// How the group's waits are known (the hooks source); `None` on the
    /// console source.
    fn waits_text(&self) -> Option<String>;
    /// "97% chan send*, 3% running": the mix, largest first.
    fn mix_text(&self, max_parts: usize) -> String;
}

impl Words for Group {
    /// " (blocking)" for tasks that are not plain tasks, else "".
    fn kind_suffix(&self) -> String {
        kind_suffix(self.kind)
    }

    /// " [conn-handler]" or " [pool-worker-0 +3 names]": the names a row shows.
    /// Names, then where the spawning tasks were spawned (hooks source).
    fn names_suffix(&self) -> String {
        let names = self.names.iter().map(|(n, _)| &**n);
        // A place split by spawner names its spawner already.
        let (_, spawner) = taskscope_proto::names::unsplit_location(&self.location);
        let parents = self
            .spawned_from
            .iter()
            .filter(|(l, _)| Some(&**l) != spawner)
            .map(|(l, n)| (&**l, *n));
        let shares = self.shares.iter().map(|s| (&*s.target, s.live, s.suspect));
        let lints = self.lints.iter().map(|(l, n)| (l.label(), u64::from(*n)));
        self::names(names, self.distinct_names, 1, 24, str::to_string)
            + &targets(shares, 3, str::to_string)
            + &ancestry(parents, 1, str::to_string)
            + &self::lints(lints)
    }

    /// How the group's waits are known, in words (the hooks source): "waits
    /// captured for 12 of 40 tasks, 28 inferred from them, newest 1.2s
    /// ago"; `None` on the console source.
    fn waits_text(&self) -> Option<String> {
        self.waits.map(|w| coverage(&w))
    }

    /// "97% chan send, 3% running" — the mix as text, largest first.
    fn mix_text(&self, max_parts: usize) -> String {
        crate::analysis::reason::mix_text(&self.reasons, max_parts)
    }
}

pub use crate::analysis::reason::{MixPart, mix, mostly_captured, mostly_inferred, percent};

/// Where most of the tasks' reason comes from, in words.
pub fn source(
    captured: u32,
    inferred: u32,
    tasks: u32,
    reason: crate::analysis::Reason,
) -> &'static str {
    use crate::analysis::Reason;
    if mostly_captured(captured, tasks) {
        "capture"
    } else if mostly_inferred(inferred, tasks) {
        "inferred"
    } else if matches!(reason, Reason::Uncaptured | Reason::OutOfReach) {
        "agent"
    } else {
        "console data"
    }
}

/// " (blocking)" for tasks that are not plain tasks, else "".
pub fn kind_suffix(kind: TaskKind) -> String {
    match kind {
        TaskKind::Task => String::new(),
        k => format!(" ({})", k.label()),
    }
}

/// " [conn-handler]", " [pool-worker-0 +3 names]", " [a, b, c +5 names]":
/// the first `shown` of a group's most common names (each sanitized to
/// `width` and then passed through `escape`) and how many more it has;
/// "" for a group without names.
pub fn names<'a>(
    most_common: impl IntoIterator<Item = &'a str>,
    distinct: u32,
    shown: usize,
    width: usize,
    escape: fn(&str) -> String,
) -> String {
    let shown: Vec<String> = most_common
        .into_iter()
        .take(shown)
        .map(|n| escape(&crate::text::sanitize(n, width)))
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    match (distinct as usize).saturating_sub(shown.len()) {
        0 => format!(" [{}]", shown.join(", ")),
        more => format!(" [{} +{more} names]", shown.join(", ")),
    }
}

/// " ← src/client.rs:88 ×51, src/pool.rs:12 ×3 +2 more": where the
/// spawning tasks were spawned (the hooks source), most first, the first
/// `shown`, each through `escape`; "" when no task spawned them.
pub fn ancestry<'a>(
    parents: impl IntoIterator<Item = (&'a str, u64)>,
    shown: usize,
    escape: fn(&str) -> String,
) -> String {
    let all: Vec<(&str, u64)> = parents.into_iter().collect();
    if all.is_empty() {
        return String::new();
    }
    let parts = all
        .iter()
        .map(|(l, n)| format!("{} ×{n}", escape(&crate::text::sanitize(l, 120))));
    format!(" ← spawned by {}", first_of(parts, all.len(), shown))
}

/// "a, b +3 more": the first `shown` of `total` parts.
fn first_of(parts: impl Iterator<Item = String>, total: usize, shown: usize) -> String {
    let parts: Vec<String> = parts.take(shown).collect();
    let more = total.saturating_sub(shown);
    if more > 0 {
        format!("{} +{more} more", parts.join(", "))
    } else {
        parts.join(", ")
    }
}

/// " ⚠ self-wakes ×3, large future ×40": tokio-console's warnings on a
/// group's tasks, "" with none.
pub fn lints<'a>(lints: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = lints
        .into_iter()
        .map(|(label, n)| format!("{label} ×{n}"))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ⚠ {}", parts.join(", "))
    }
}

/// " @ a:6669 ×40 !!, b:6669 ×3": each target's part of a merged group
/// (several targets), most first, suspect targets marked `!!`, the first
/// `shown`, each through `escape`; "" with one target.
pub fn targets<'a>(
    shares: impl IntoIterator<Item = (&'a str, u32, bool)>,
    shown: usize,
    escape: fn(&str) -> String,
) -> String {
    let all: Vec<(&str, u32, bool)> = shares.into_iter().collect();
    if all.len() < 2 {
        return String::new();
    }
    let parts = all.iter().map(|(t, n, suspect)| {
        let mark = if *suspect { " !!" } else { "" };
        format!("{} ×{n}{mark}", escape(&crate::text::sanitize(t, 60)))
    });
    format!(" @ {}", first_of(parts, all.len(), shown))
}

/// How a hooks-source group's waits are known: "waits captured for 12
/// tasks, 28 more inferred from them, 3 out of reach; newest 1.2s ago";
/// for a library's site out of reach, what its tasks are and how to reach
/// them.
pub fn coverage(w: &crate::analysis::types::WaitCoverage) -> String {
    match reach(w) {
        Some(reach) => format!("{}; to capture them: {reach}", coverage_head(w)),
        None => coverage_head(w),
    }
}

/// How to capture a group's waits that are out of reach, when none is.
pub fn reach(w: &crate::analysis::types::WaitCoverage) -> Option<&'static str> {
    if w.reachable > 0 {
        return None;
    }
    Some(match w.site {
        Some(site) => site.reach,
        None => {
            "spawn them with taskscope_agent::spawn, or wrap the future in taskscope_agent::traced"
        }
    })
}

/// [`coverage`] without how to reach the waits out of reach.
pub fn coverage_head(w: &crate::analysis::types::WaitCoverage) -> String {
    if w.reachable == 0 {
        return match w.site {
            Some(site) if site.shape.is_some() => format!(
                "{}: waits out of reach, the wait shown inferred from the library",
                site.what
            ),
            Some(site) => format!("{}: waits out of reach", site.what),
            None => "waits out of reach (a library spawned these tasks, not wrapped for captures)"
                .into(),
        };
    }
    let mut s = format!("waits captured for {} of {} tasks", w.captured, w.reachable);
    if w.inferred > 0 {
        s.push_str(&format!(", {} more inferred from them", w.inferred));
    }
    if w.out_of_reach > 0 {
        s.push_str(&format!(", {} idle out of reach", w.out_of_reach));
    }
    match w.newest {
        Some(age) => s.push_str(&format!("; newest {} ago", crate::text::duration(age))),
        None => s.push_str("; none captured yet"),
    }
    s
}

/// How fresh a hooks-source group's waits are, for the groups view's
/// blocked-on column: the newest capture's age ("2s old"); nothing before
/// the first capture (the reason says `not captured yet`), for waits out
/// of reach or other sources.
pub fn freshness(w: Option<&crate::analysis::types::WaitCoverage>) -> Option<String> {
    let w = w?;
    match (w.captured, w.newest) {
        (1.., Some(age)) => Some(format!("{} old", crate::text::duration(age))),
        // Captured, but none of those captures holds now (the tasks have
        // run since): the marked reasons say enough.
        _ => None,
    }
}

/// What a task's verdict is worth, when it is a guess: said after the
/// reason in the task's detail.
pub fn guess(v: &crate::analysis::Verdict) -> Option<&'static str> {
    match (v.ambiguous, v.resource) {
        (false, _) => None,
        (true, Some(_)) => Some("linked by time; several tasks could own this sleep"),
        (true, None) => Some(
            "inferred: its group's tasks were seen creating sleeps, and the target's \
             console has not sent this poll's yet",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guess_says_which_kind_it_is() {
        use crate::analysis::{Reason, TaskState, Verdict};
        let mut v = Verdict::new(TaskState::Idle, Reason::Sleep, None);
        assert_eq!(guess(&v), None);
        v.ambiguous = true;
        assert!(guess(&v).is_some_and(|g| g.starts_with("inferred")));
        v.resource = std::num::NonZeroU64::new(7);
        assert!(guess(&v).is_some_and(|g| g.starts_with("linked by time")));
    }

    #[test]
    fn groups_say_how_fresh_their_waits_are() {
        use crate::analysis::types::WaitCoverage;
        use std::time::Duration;
        let mut w = WaitCoverage {
            reachable: 10,
            ..WaitCoverage::default()
        };
        assert_eq!(freshness(Some(&w)), None);
        w.captured = 3;
        w.newest = Some(Duration::from_secs(2));
        assert_eq!(freshness(Some(&w)).as_deref(), Some("2s old"));
        w.newest = None;
        assert_eq!(freshness(Some(&w)), None);
        assert_eq!(freshness(Some(&WaitCoverage::default())), None);
        assert_eq!(freshness(None), None);
    }

    #[test]
    fn shares_round_and_never_overflow() {
        assert_eq!(percent(1, 3), 33);
        assert_eq!(percent(2, 3), 67);
        assert_eq!(percent(5, 0), 0);
        assert_eq!(percent(u32::MAX, u32::MAX), 100);
        assert!(mostly_captured(u32::MAX, u32::MAX));
        assert!(!mostly_captured(1, 2));
    }

    #[test]
    fn names_show_the_most_common_and_count_the_rest() {
        let plain: fn(&str) -> String = str::to_string;
        assert_eq!(names(["a", "b"], 9, 1, 24, plain), " [a +8 names]");
        assert_eq!(names(["a", "b"], 2, 3, 24, plain), " [a, b]");
        assert_eq!(names([], 0, 3, 24, plain), "");
        assert_eq!(names(["a\u{1b}[2J"], 1, 1, 24, plain), " [a]");
    }

    #[test]
    fn ancestry_names_the_spawners_most_first() {
        let plain: fn(&str) -> String = str::to_string;
        assert_eq!(ancestry([], 2, plain), "");
        assert_eq!(
            ancestry(
                [("src/client.rs:88:9", 51), ("src/a.rs:1:1", 3), ("b", 1)],
                2,
                plain
            ),
            " ← spawned by src/client.rs:88:9 ×51, src/a.rs:1:1 ×3 +1 more"
        );
    }

    #[test]
    fn a_mix_reads_largest_first_with_marks() {
        let parts = [
            MixPart {
                percent: 90,
                label: "chan send",
                captured: true,
                inferred: false,
            },
            MixPart {
                percent: 7,
                label: "socket read",
                captured: false,
                inferred: true,
            },
            MixPart {
                percent: 3,
                label: "running",
                captured: false,
                inferred: false,
            },
        ];
        assert_eq!(
            mix(parts, 3, true),
            "90% chan send*, 7% socket read~, 3% running, …"
        );
    }
}
