//! Plain-text tables for the terminal and for pipes.

use crate::analysis::Analysis;
use crate::text;
use crate::wording::Words;
use std::fmt::Write;

/// The groups table, largest first, with a header line of totals.
pub fn groups_table(a: &Analysis, target: &str, max_rows: usize) -> String {
    let t = a.totals;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} live tasks in {} groups ({} running, {} scheduled, {} idle){}",
        text::sanitize(target, 80),
        text::count(u64::from(t.live)),
        text::count(u64::from(t.groups)),
        t.running,
        t.scheduled,
        t.idle,
        a.source_phrase()
            .map(|s| format!(", from the {s}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "{:2} {:>7} {:>6} {:>5} {:>5} {:>6} {:>7} {:>8}  {:<34} LOCATION",
        "", "TASKS", "Δ/WIN", "RUN", "SCHED", "IDLE", "OLDEST", "MAX IDLE", "BLOCKED ON"
    );
    for g in a.groups.iter().filter(|g| g.live > 0).take(max_rows) {
        let _ = writeln!(
            out,
            "{:2} {:>7} {:>6} {:>5} {:>5} {:>6} {:>7} {:>8}  {:<34} {}{}{}",
            if g.suspect.is_some() { "!!" } else { "" },
            text::count(u64::from(g.live)),
            text::delta(g.delta),
            g.running,
            g.scheduled,
            g.idle,
            g.oldest.map(text::duration).unwrap_or_default(),
            g.longest_idle.map(text::duration).unwrap_or_default(),
            g.mix_text(2),
            text::sanitize(&g.location, 200),
            g.kind_suffix(),
            g.names_suffix()
        );
    }
    let suspects: Vec<_> = a
        .groups
        .iter()
        .filter_map(|g| Some((g, g.suspect.as_ref()?)))
        .collect();
    if !suspects.is_empty() {
        let _ = writeln!(out, "\nSuspects:");
        for (g, s) in suspects {
            let _ = writeln!(
                out,
                "!! {} tasks @ {}: {}",
                text::count(u64::from(g.live)),
                text::sanitize(&g.location, 200),
                s.reason
            );
            if let Some(a) = &g.advice {
                let _ = writeln!(out, "   likely cause: {}\n   fix: {}", a.cause, a.fix);
            }
        }
    }
    out
}
