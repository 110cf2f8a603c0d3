//! pprof's profile messages (package `perftools.profiles`, generated from
//! `proto/pprof/profile.proto`: the part of the format a task profile
//! writes) and the tables a task profile is built of, shared by the agent's
//! `GET /debug/pprof/tasks` and the viewer's `snapshot -o tasks.pb.gz`, so
//! the two write one shape and either can be `go tool pprof -diff_base`
//! of the other. Behind the `pprof` feature: the wire contract alone
//! carries none of it.

use std::collections::HashMap;

include!("generated/perftools.profiles.rs");

/// The prefix of the root frame that names a spawn location:
/// `spawned@FILE:LINE:COL`.
pub const ROOT_PREFIX: &str = "spawned@";

/// `FILE:LINE:COL` → (`FILE`, `LINE`), for a spawn location's root frame;
/// anything else is all file, at line 0.
pub fn split_location(loc: &str) -> (&str, i64) {
    let mut parts = loc.rsplitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_col), Some(line), Some(file)) => match line.parse::<u32>() {
            Ok(line) => (file, i64::from(line)),
            Err(_) => (loc, 0),
        },
        _ => (loc, 0),
    }
}

/// A profile's string, function and location tables, each entry made
/// once: samples refer to them by id.
pub struct Tables {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<Function>,
    function_ids: HashMap<(i64, i64), u64>,
    locations: Vec<Location>,
    location_ids: HashMap<(u64, i64), u64>,
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Tables {
    /// Empty tables but for the string table's required `""` first.
    pub fn new() -> Tables {
        let mut t = Tables {
            strings: Vec::new(),
            string_ids: HashMap::new(),
            functions: Vec::new(),
            function_ids: HashMap::new(),
            locations: Vec::new(),
            location_ids: HashMap::new(),
        };
        t.string("");
        t
    }

    /// The index of `s` in the string table.
    pub fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), i);
        i
    }

    /// The location of one frame: function `name` in `file` (`""`: none)
    /// at `line` (0: unknown), in mapping 1.
    pub fn frame(&mut self, name: &str, file: &str, line: i64) -> u64 {
        let name = self.string(name);
        let file = self.string(file);
        let next = self.functions.len() as u64 + 1;
        let function_id = *self.function_ids.entry((name, file)).or_insert(next);
        if function_id == next {
            self.functions.push(Function {
                id: next,
                name,
                system_name: name,
                filename: file,
                start_line: 0,
            });
        }
        let next = self.locations.len() as u64 + 1;
        let id = *self.location_ids.entry((function_id, line)).or_insert(next);
        if id == next {
            self.locations.push(Location {
                id,
                mapping_id: 1,
                address: 0,
                line: vec![Line {
                    function_id,
                    line,
                    column: 0,
                }],
                is_folded: false,
            });
        }
        id
    }

    /// A profile holding the tables; the caller sets the rest.
    pub fn into_profile(self) -> Profile {
        Profile {
            string_table: self.strings,
            function: self.functions,
            location: self.locations,
            ..Profile::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_locations_split_at_their_last_two_colons() {
        assert_eq!(split_location("src/a.rs:12:5"), ("src/a.rs", 12));
        assert_eq!(split_location("C:/x/a.rs:7:1"), ("C:/x/a.rs", 7));
        assert_eq!(split_location("src/a.rs:x:5"), ("src/a.rs:x:5", 0));
        assert_eq!(split_location("<unknown>"), ("<unknown>", 0));
    }

    #[test]
    fn each_entry_is_made_once() {
        let mut t = Tables::new();
        assert_eq!(t.string(""), 0);
        let a = t.frame("f", "a.rs", 3);
        assert_eq!(t.frame("f", "a.rs", 3), a);
        let other_line = t.frame("f", "a.rs", 4);
        assert_ne!(other_line, a);
        let p = t.into_profile();
        assert_eq!(p.function.len(), 1, "one function, two lines");
        assert_eq!(p.location.len(), 2);
        assert_eq!(p.string_table, ["", "f", "a.rs"]);
    }
}
