//! Printing a diff: a text table, or JSON for machines.

use crate::analysis::diff::{Change, Diff};
use crate::text;
use serde::Serialize;
use std::fmt::Write;

/// One side of a diff, as the header names it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Side {
    /// File name, or "baseline" / "now".
    pub label: String,
    pub target: String,
    /// Local time the state was captured (Unix ns); none for "now".
    pub taken_at_unix_ns: Option<i64>,
}

impl Side {
    pub fn describe(&self) -> String {
        let label = text::sanitize(&self.label, 120);
        let target = text::sanitize(&self.target, 80);
        match self.taken_at_unix_ns {
            Some(t) => format!("{label} ({target}, {})", text::utc_iso(t)),
            None => format!("{label} ({target})"),
        }
    }
}

pub fn change_label(c: Change) -> &'static str {
    match c {
        Change::Added => "new",
        Change::Removed => "gone",
        Change::Grown => "grown",
        Change::Shrunk => "shrunk",
        Change::MixChanged => "mix",
    }
}

/// The header line: what is compared with what, and the totals.
pub fn header(d: &Diff, old: &Side, new: &Side) -> String {
    format!(
        "diff {} → {}: {} of target time; tasks {} → {} ({})",
        old.describe(),
        new.describe(),
        text::duration(d.elapsed),
        text::count(u64::from(d.tasks_before)),
        text::count(u64::from(d.tasks_after)),
        text::delta(i64::from(d.tasks_after) - i64::from(d.tasks_before))
    )
}

pub fn to_text(d: &Diff, old: &Side, new: &Side) -> String {
    let mut out = header(d, old, new);
    out.push('\n');
    if d.rows.is_empty() {
        out.push_str("no changes\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:2} {:>7} {:>7} {:>7} {:>8} {:<6} {:<44} LOCATION",
        "", "BEFORE", "AFTER", "Δ", "Δ/MIN", "CHANGE", "BLOCKED ON (BEFORE → AFTER)"
    );
    for r in &d.rows {
        let mix = r.mix_text();
        let kind = crate::wording::kind_suffix(r.kind);
        let _ = writeln!(
            out,
            "{:2} {:>7} {:>7} {:>7} {:>8.1} {:<6} {:<44} {}{kind}",
            if r.suspect.is_some() { "!!" } else { "" },
            text::count(u64::from(r.before)),
            text::count(u64::from(r.after)),
            text::delta(r.delta),
            r.per_minute,
            change_label(r.change),
            mix,
            text::sanitize(&r.location, 200),
        );
    }
    out
}

/// What `diff --format json` writes (`assets/diff.schema.json`).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(title = "taskscope diff, version 1")]
pub struct DiffJson<'a> {
    #[schemars(extend("const" = "taskscope-diff"))]
    format: &'static str,
    #[schemars(extend("const" = 1))]
    version: u32,
    old: &'a Side,
    new: &'a Side,
    #[serde(flatten)]
    diff: &'a Diff,
}

pub fn to_json(d: &Diff, old: &Side, new: &Side) -> String {
    let doc = DiffJson {
        format: "taskscope-diff",
        version: 1,
        old,
        new,
        diff: d,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
