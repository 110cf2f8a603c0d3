//! The report as one self-contained HTML page: inline CSS, an inline SVG
//! chart per suspect group, no external assets, every target-supplied
//! string escaped.

use super::build::{GroupOut, Report};
use crate::text;
use std::fmt::Write;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let clean = text::sanitize(s, 2000);
    let mut out = String::with_capacity(clean.len() + 16);
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#1d1d1f;padding:0 1em}\
h1{font-size:1.5em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}\
table{border-collapse:collapse;margin:.6em 0;width:100%}th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
th{background:#f5f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}code,.loc{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}\
.suspect{border:2px solid #c62828;border-radius:6px;padding:.6em 1em;margin:1em 0;break-inside:avoid}.reason{font-weight:600;color:#c62828}\
.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:.4em .8em}.meta td:first-child{width:12em;color:#555}\
svg{background:#fafafa;border:1px solid #eee}svg text{font:11px system-ui,sans-serif;fill:#555}\
@media print{body{margin:0;max-width:none}.suspect{border-color:#000}.reason{color:#000}}";

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let t = &r.totals;
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>taskscope report: {}</title><style>{CSS}</style></head><body>\n",
        escape(&r.target)
    );
    let _ = writeln!(
        o,
        "<h1>taskscope report: <span class=\"loc\">{}</span></h1>",
        escape(&r.target)
    );
    let _ = writeln!(o, "<table class=\"meta\">");
    for (k, v) in [
        ("Source", escape(&r.source)),
        (
            "Data",
            escape(&r.data().unwrap_or_else(|| "not recorded".into())),
        ),
        ("Generated", escape(&r.generated_at)),
        ("Target clock at end", escape(&r.target_time)),
        ("Watched", text::secs(Some(r.watched_secs))),
        ("Trend window", text::secs(Some(r.window_secs))),
        (
            "Tasks",
            format!(
                "{} in {} groups ({} running, {} scheduled, {} idle)",
                text::count(u64::from(t.tasks)),
                t.groups,
                t.running,
                t.scheduled,
                t.idle
            ),
        ),
        ("Suspect groups", t.suspects.to_string()),
    ] {
        let _ = writeln!(o, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    if let Some(d) = &r.waits {
        let _ = writeln!(
            o,
            "<tr><td>Captures</td><td>{}</td></tr>",
            escape(&d.describe())
        );
    }
    let _ = writeln!(o, "</table>");
    for w in &r.warnings {
        let _ = writeln!(o, "<p class=\"warn\">Warning: {}</p>", escape(w));
    }
    let _ = writeln!(o, "<h2>Suspects</h2>");
    if r.suspects.is_empty() {
        let _ = writeln!(o, "<p>No group is growing or stuck.</p>");
    }
    for g in &r.suspects {
        suspect(&mut o, g);
    }
    let _ = writeln!(
        o,
        "<h2>Top groups by count</h2>\n<table><tr><th>Tasks</th><th>Change over window</th><th>Blocked on</th><th>Oldest</th><th>Max idle</th><th>Location</th><th>Suspect</th></tr>"
    );
    for g in &r.top_groups {
        let _ = writeln!(
            o,
            "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"loc\">{}{}{}</td><td>{}</td></tr>",
            text::count(u64::from(g.tasks)),
            text::delta(g.change_over_window),
            escape(&g.mix_text()),
            text::secs(g.oldest_secs),
            text::secs(g.longest_idle_secs),
            escape(&g.location),
            g.kind_suffix(escape),
            g.names_suffix(escape),
            if g.suspect.is_some() { "yes" } else { "" }
        );
    }
    let _ = writeln!(o, "</table>");
    if let Some(c) = &r.changes {
        let _ = writeln!(
            o,
            "<h2>Changes from {} to {}</h2>",
            escape(&c.old.describe()),
            escape(&c.new.describe())
        );
        if c.diff.rows.is_empty() {
            let _ = writeln!(o, "<p>No changes.</p>");
        } else {
            let _ = writeln!(
                o,
                "<table><tr><th>Before</th><th>After</th><th>Change</th><th>Per minute</th><th>Kind</th><th>Blocked on (after)</th><th>Location</th></tr>"
            );
            for row in &c.diff.rows {
                let _ = writeln!(
                    o,
                    "<tr><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:+.1}</td><td>{}</td><td>{}</td><td class=\"loc\">{}</td></tr>",
                    row.before,
                    row.after,
                    text::delta(row.delta),
                    row.per_minute,
                    super::diff::change_label(row.change),
                    escape(&row.mix_after),
                    escape(&row.location)
                );
            }
            let _ = writeln!(o, "</table>");
        }
    }
    let _ = writeln!(o, "</body></html>");
    o
}

fn suspect(o: &mut String, g: &GroupOut) {
    let Some(s) = &g.suspect else { return };
    let _ = writeln!(
        o,
        "<section class=\"suspect\"><h3>{} tasks @ <span class=\"loc\">{}</span>{} ({})</h3>\n<p class=\"reason\">{}</p>",
        text::count(u64::from(g.tasks)),
        escape(&g.location),
        g.kind_suffix(escape),
        s.kind.key(),
        escape(&s.reason)
    );
    if let Some(a) = &g.advice {
        let _ = writeln!(
            o,
            "<p class=\"advice\"><b>Likely cause:</b> {}.<br><b>Fix:</b> {}.</p>",
            escape(&a.cause),
            escape(&a.fix)
        );
    }
    o.push_str(&chart(&g.history));
    let _ = writeln!(
        o,
        "<table><tr><th>Blocked on</th><th>Tasks</th><th>Share</th><th>Longest</th><th>From</th></tr>"
    );
    for m in &g.blocked_on {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td><td class=\"n\">{}</td><td>{}</td></tr>",
            escape(m.phrase),
            m.tasks,
            m.percent,
            text::secs(Some(m.longest_secs)),
            m.source()
        );
    }
    let _ = writeln!(o, "</table>");
    if let Some(w) = &g.waits {
        let _ = writeln!(o, "<p class=\"waits\">Waits: {}</p>", escape(w));
    }
    if !g.stacks.is_empty() {
        let _ = writeln!(o, "<p>Async stacks (captured):</p><ul class=\"stacks\">");
        for st in &g.stacks {
            let frames: Vec<String> = st
                .leaves
                .iter()
                .map(|l| {
                    l.iter()
                        .map(|f| escape(&crate::analysis::stack::short(f)))
                        .collect::<Vec<_>>()
                        .join(" → ")
                })
                .collect();
            let _ = writeln!(
                o,
                "<li>{} @ <span class=\"loc\" title=\"{}\">{}</span></li>",
                st.tasks,
                frames.join(" | "),
                escape(&st.label)
            );
        }
        let _ = writeln!(o, "</ul>");
    }
    if !g.names.is_empty() {
        let names = g.names_counts(escape);
        let _ = writeln!(o, "<p>Names: {}</p>", names);
    }
    if !g.samples.is_empty() {
        let _ = writeln!(
            o,
            "<table><tr><th>Task</th><th>Name</th><th>State</th><th>For</th><th>Age</th><th>Fields</th></tr>"
        );
        for t in &g.samples {
            let [task, name, reason, for_, age, fields] = t.cells(escape);
            let _ = writeln!(
                o,
                "<tr><td class=\"n\">{task}</td><td>{name}</td><td>{reason}</td><td class=\"n\">{for_}</td><td class=\"n\">{age}</td><td class=\"loc\">{fields}</td></tr>"
            );
        }
        let _ = writeln!(o, "</table>");
    }
    let _ = writeln!(o, "</section>");
}

/// An SVG line chart of a count history.
pub fn chart(points: &[(f64, i64)]) -> String {
    const W: f64 = 640.0;
    const H: f64 = 140.0;
    const PAD_L: f64 = 44.0;
    const PAD_B: f64 = 22.0;
    const PAD_T: f64 = 10.0;
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::new();
    };
    let (t0, t1) = (first.0, last.0.max(first.0 + 1.0));
    let max = points.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
    let x = |t: f64| PAD_L + (t - t0) / (t1 - t0) * (W - PAD_L - 8.0);
    let y = |c: i64| PAD_T + (1.0 - c.max(0) as f64 / max) * (H - PAD_T - PAD_B);
    let path: Vec<String> = points
        .iter()
        .map(|(t, c)| format!("{:.1},{:.1}", x(*t), y(*c)))
        .collect();
    format!(
        "<svg role=\"img\" aria-label=\"task count over time\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\">\
<line x1=\"{PAD_L}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#999\"/><line x1=\"{PAD_L}\" y1=\"{PAD_T}\" x2=\"{PAD_L}\" y2=\"{b}\" stroke=\"#999\"/>\
<text x=\"{tx}\" y=\"{ty0}\" text-anchor=\"end\">0</text><text x=\"{tx}\" y=\"{ty1}\" text-anchor=\"end\">{maxl}</text>\
<text x=\"{PAD_L}\" y=\"{H2}\">−{span}</text><text x=\"{r}\" y=\"{H2}\" text-anchor=\"end\">now</text>\
<polyline fill=\"none\" stroke=\"#c62828\" stroke-width=\"2\" points=\"{pts}\"/></svg>\n",
        b = H - PAD_B,
        r = W - 8.0,
        tx = PAD_L - 4.0,
        ty0 = H - PAD_B + 4.0,
        ty1 = PAD_T + 8.0,
        maxl = max as i64,
        H2 = H - 6.0,
        span = text::secs(Some(t1 - t0)),
        pts = path.join(" ")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn hostile_strings_are_escaped() {
        assert_eq!(
            super::escape("<script>alert('x')</script>"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        );
        assert_eq!(super::escape("a\"b&c"), "a&quot;b&amp;c");
    }

    #[test]
    fn chart_has_one_point_per_sample() {
        let svg = super::chart(&[(0.0, 0), (30.0, 5), (60.0, 10)]);
        assert!(svg.starts_with("<svg"));
        let pts = svg
            .split("points=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        assert_eq!(pts.split(' ').count(), 3);
    }
}
