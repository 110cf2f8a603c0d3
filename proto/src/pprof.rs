//! pprof's `profile.proto` (github.com/google/pprof/proto/profile.proto)
//! and the tables a task profile is built of, shared by the agent's
//! `GET /debug/pprof/tasks` and the viewer's `snapshot -o tasks.pb.gz`, so
//! the two write one shape and either can be `go tool pprof -diff_base`
//! of the other. Field numbers as upstream; only what a task profile uses
//! is commented. Behind the `pprof` feature: the wire contract alone
//! carries none of it.

use std::collections::HashMap;

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

#[derive(Clone, PartialEq, prost::Message)]
pub struct Profile {
    /// What each sample value counts (here `tasks/count`).
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    /// Every string the profile refers to by index; the first is "".
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Leaf first.
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Innermost (inlined) first.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}
