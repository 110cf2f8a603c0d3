//! The report as Markdown: tables that render on common code hosts, no raw
//! HTML, every target-supplied string escaped.

use super::build::{GroupOut, Report};
use crate::text;
use std::fmt::Write;

/// Escapes Markdown punctuation and makes the string one inert line.
pub fn escape(s: &str) -> String {
    let clean = text::sanitize(s, 500);
    let mut out = String::with_capacity(clean.len() + 8);
    for c in clean.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '{'
                | '}'
                | '['
                | ']'
                | '<'
                | '>'
                | '('
                | ')'
                | '#'
                | '+'
                | '!'
                | '|'
                | '~'
                | '&'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Text for an inline code span: backticks and line breaks cannot end it.
fn code(s: &str) -> String {
    text::sanitize(s, 300).replace('`', "'")
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let t = &r.totals;
    let _ = writeln!(o, "# taskscope report: {}\n", escape(&r.target));
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(o, "| Target | {} |", escape(&r.target));
    let _ = writeln!(o, "| Source | {} |", escape(&r.source));
    if let Some(d) = r.data() {
        let _ = writeln!(o, "| Data | {} |", escape(&d));
    }
    let _ = writeln!(o, "| Generated | {} |", r.generated_at);
    let _ = writeln!(o, "| Target clock at end | {} |", r.target_time);
    let _ = writeln!(o, "| Watched | {} |", text::secs(Some(r.watched_secs)));
    let _ = writeln!(o, "| Trend window | {} |", text::secs(Some(r.window_secs)));
    let _ = writeln!(
        o,
        "| Tasks | {} in {} groups ({} running, {} scheduled, {} idle) |",
        text::count(u64::from(t.tasks)),
        t.groups,
        t.running,
        t.scheduled,
        t.idle
    );
    if let Some(d) = &r.waits {
        let _ = writeln!(o, "| Captures | {} |", escape(&d.describe()));
    }
    let _ = writeln!(o, "| Suspect groups | {} |\n", t.suspects);
    for w in &r.warnings {
        let _ = writeln!(o, "> **Warning:** {}\n", escape(w));
    }
    let _ = writeln!(o, "## Suspects\n");
    if r.suspects.is_empty() {
        let _ = writeln!(o, "No group is growing or stuck.\n");
    }
    for (i, g) in r.suspects.iter().enumerate() {
        suspect(&mut o, i + 1, g);
    }
    let _ = writeln!(o, "## Top groups by count\n");
    let _ = writeln!(
        o,
        "| Tasks | Change over window | Blocked on | Oldest | Max idle | Location | Suspect |"
    );
    let _ = writeln!(o, "|---:|---:|---|---:|---:|---|---|");
    for g in &r.top_groups {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {}{}{} | {} |",
            text::count(u64::from(g.tasks)),
            text::delta(g.change_over_window),
            g.mix_text(),
            text::secs(g.oldest_secs),
            text::secs(g.longest_idle_secs),
            escape(&g.location),
            g.kind_suffix(escape),
            g.names_suffix(escape),
            if g.suspect.is_some() { "yes" } else { "" }
        );
    }
    if let Some(c) = &r.changes {
        let _ = writeln!(
            o,
            "\n## Changes from {} to {}\n",
            escape(&c.old.describe()),
            escape(&c.new.describe())
        );
        if c.diff.rows.is_empty() {
            let _ = writeln!(o, "No changes.");
        } else {
            let _ = writeln!(
                o,
                "| Before | After | Change | Per minute | Kind | Blocked on (after) | Location |"
            );
            let _ = writeln!(o, "|---:|---:|---:|---:|---|---|---|");
            for row in &c.diff.rows {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {:+.1} | {} | {} | {} |",
                    row.before,
                    row.after,
                    text::delta(row.delta),
                    row.per_minute,
                    super::diff::change_label(row.change),
                    escape(&row.mix_after),
                    escape(&row.location)
                );
            }
        }
    }
    o
}

fn suspect(o: &mut String, n: usize, g: &GroupOut) {
    let s = match &g.suspect {
        Some(s) => s,
        None => return,
    };
    let _ = writeln!(
        o,
        "### {n}. {} tasks @ {}{} ({})\n",
        text::count(u64::from(g.tasks)),
        escape(&g.location),
        g.kind_suffix(escape),
        s.kind.key()
    );
    let _ = writeln!(o, "**{}**\n", escape(&s.reason));
    if let Some(a) = &g.advice {
        let _ = writeln!(
            o,
            "Likely cause: {}.  \nFix: {}.\n",
            escape(&a.cause),
            escape(&a.fix)
        );
    }
    let counts: Vec<u64> = g.history.iter().map(|(_, c)| (*c).max(0) as u64).collect();
    if let (Some(first), Some(last)) = (g.history.first(), g.history.last()) {
        let _ = writeln!(
            o,
            "Count over time: {} (from {} to {} over {})\n",
            crate::text::sparkline(&counts, 60),
            first.1,
            last.1,
            text::secs(Some(last.0 - first.0))
        );
    }
    let _ = writeln!(
        o,
        "| Blocked on | Tasks | Share | Longest | From |\n|---|---:|---:|---:|---|"
    );
    for m in &g.blocked_on {
        let _ = writeln!(
            o,
            "| {} | {} | {}% | {} | {} |",
            escape(m.phrase),
            m.tasks,
            m.percent,
            text::secs(Some(m.longest_secs)),
            m.source()
        );
    }
    if let Some(w) = &g.waits {
        let _ = writeln!(o, "\nWaits: {}", escape(w));
    }
    if !g.stacks.is_empty() {
        let _ = writeln!(o, "\nAsync stacks (captured):\n");
        for st in &g.stacks {
            let _ = writeln!(o, "- {} @ `{}`", st.tasks, code(&st.label));
        }
    }
    if !g.names.is_empty() {
        let names = g.names_counts(escape);
        let more = if g.distinct_names as usize > g.names.len() {
            format!(" (… {} distinct)", g.distinct_names)
        } else {
            String::new()
        };
        let _ = writeln!(o, "\nNames: {}{more}", names);
    }
    if !g.samples.is_empty() {
        let _ = writeln!(
            o,
            "\nSample tasks:\n\n| Task | Name | State | For | Age | Fields |\n|---:|---|---|---:|---:|---|"
        );
        for t in &g.samples {
            let _ = writeln!(o, "| {} |", t.cells(escape).join(" | "));
        }
    }
    o.push('\n');
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_makes_markup_inert() {
        assert_eq!(super::escape("<script>|x"), "\\<script\\>\\|x");
        assert_eq!(super::escape("a\nb\u{1b}[31m"), "a⏎b");
        assert_eq!(
            super::escape("[link](http://e)"),
            "\\[link\\]\\(http://e\\)"
        );
    }
}
