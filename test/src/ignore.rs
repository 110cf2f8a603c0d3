//! What a check leaves alone: goleak's `IgnoreTopFunction` /
//! `IgnoreAnyFunction`, for tokio tasks. A pattern is matched against the
//! task's spawn location and against the functions of its captured stack.

use taskscope_agent::proto::names;
use taskscope_core::model::Trace;

/// Patterns of places and functions whose tasks a check does not report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<String>,
}

impl Ignore {
    pub fn add(&mut self, pattern: &str) {
        let p = pattern.trim();
        if !p.is_empty() {
            self.patterns.push(p.to_string());
        }
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether a pattern could name a function (then the check needs the
    /// tasks' stacks to apply it): any without a `/` or `.rs`.
    pub fn has_functions(&self) -> bool {
        self.patterns.iter().any(|p| !looks_like_a_file(p))
    }

    /// Whether a pattern names the place `location` (a spawn location as
    /// the agent names it, `file:line:col`, a split place's
    /// `LINE ← SPAWNER` too).
    pub fn place(&self, location: &str) -> bool {
        self.patterns.iter().any(|p| place_matches(p, location))
    }

    /// Whether a pattern names a function any frame of `trace` is in.
    pub fn stack(&self, trace: &Trace) -> bool {
        let frames = || trace.leaves.iter().flatten();
        self.patterns.iter().any(|p| {
            !looks_like_a_file(p)
                && frames().any(|f| {
                    function_matches(p, &names::plain(&f.name))
                        || function_matches(p, &names::qualified(&f.name, f.file.as_deref()))
                })
        })
    }
}

fn looks_like_a_file(p: &str) -> bool {
    p.contains('/') || p.contains(".rs")
}

/// `p` in `location` on path and field boundaries: `src/pool.rs` matches
/// `/home/me/app/src/pool.rs:12:5`, `pool.rs:12` matches `…/pool.rs:12:5`,
/// but `ool.rs` and `pool.rs:1` do not.
fn place_matches(p: &str, location: &str) -> bool {
    location.match_indices(p).any(|(i, _)| {
        let before = location[..i].chars().next_back();
        let after = location[i + p.len()..].chars().next();
        matches!(before, None | Some('/' | ' ' | '\\')) && matches!(after, None | Some(':' | ' '))
    })
}

/// `p` as a path prefix of the function `name`, from any segment: with
/// `p = "pool::worker"`, `app::pool::worker`, its closures
/// (`app::pool::worker::{closure}`) and its methods match, `app::pool::workers`
/// does not.
fn function_matches(p: &str, name: &str) -> bool {
    let name = name.trim_start_matches('<');
    name.match_indices(p).any(|(i, _)| {
        let head = &name[..i];
        let tail = &name[i + p.len()..];
        (head.is_empty() || head.ends_with("::") || head.ends_with('<'))
            && (tail.is_empty() || tail.starts_with("::") || tail.starts_with('<'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskscope_core::model::Frame;

    fn ignore(ps: &[&str]) -> Ignore {
        let mut i = Ignore::default();
        for p in ps {
            i.add(p);
        }
        i
    }

    #[test]
    fn places_match_on_path_and_field_boundaries() {
        let i = ignore(&["src/pool.rs"]);
        assert!(i.place("/home/me/app/src/pool.rs:12:5"));
        assert!(i.place("src/pool.rs:12:5"));
        assert!(!i.place("src/pool.rsx:12:5"));
        assert!(!ignore(&["pool.rs"]).place("src/mypool.rs:12:5"));
        assert!(ignore(&["pool.rs:12"]).place("src/pool.rs:12:5"));
        assert!(!ignore(&["pool.rs:1"]).place("src/pool.rs:12:5"));
        assert!(!ignore(&["ool.rs"]).place("src/pool.rs:12:5"));
        // A split place: its line, or its spawner.
        let split = "hyper-util-0.1.21/src/rt/tokio.rs:40:9 ← src/fetch.rs:8:5";
        assert!(ignore(&["src/fetch.rs"]).place(split));
        assert!(ignore(&["hyper-util-0.1.21/src/rt/tokio.rs"]).place(split));
        assert!(!ignore(&["src/other.rs"]).place(split));
    }

    #[test]
    fn functions_match_whole_path_segments() {
        let trace = Trace {
            leaves: vec![vec![
                Frame::from("app::pool::worker::{{closure}}"),
                Frame::from("<tokio::time::sleep::Sleep as core::future::future::Future>::poll"),
            ]],
        };
        for hit in [
            "app::pool::worker",
            "pool::worker",
            "app::pool",
            "tokio::time::sleep::Sleep",
        ] {
            assert!(ignore(&[hit]).stack(&trace), "{hit}");
        }
        for miss in [
            "pool::work",
            "app::pool::workers",
            "worker::x",
            "src/pool.rs",
        ] {
            assert!(!ignore(&[miss]).stack(&trace), "{miss}");
        }
        // A release build's inlined async fn: named by its file.
        let release = Trace {
            leaves: vec![vec![Frame {
                name: "{async_fn#0}".into(),
                file: Some("src/background.rs".into()),
                line: Some(3),
            }]],
        };
        assert!(ignore(&["background"]).stack(&release));
    }

    #[test]
    fn only_patterns_without_a_path_need_stacks() {
        assert!(!ignore(&["src/pool.rs", "x.rs:3"]).has_functions());
        assert!(ignore(&["src/pool.rs", "app::background"]).has_functions());
        assert!(!ignore(&["  "]).has_functions());
        assert!(ignore(&[]).patterns().is_empty());
    }
}
