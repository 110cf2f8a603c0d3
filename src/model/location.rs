//! Spawn locations, interned: many thousands of tasks share a few locations.

use super::update::SourceLoc;
use std::collections::HashMap;
use std::sync::Arc;

/// Index of an interned location string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct LocId(pub u32);

/// The label used for tasks the target reported without a location.
pub const UNKNOWN_LOCATION: &str = "<unknown location>";

/// What kind of task: taken from the task's `kind` field, because the
/// protocol's `Task.kind` is always "spawn".
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum TaskKind {
    Task,
    Blocking,
    Local,
    /// The future passed to `Runtime::block_on`.
    BlockOn,
    Other,
}

impl TaskKind {
    pub const ALL: [TaskKind; 5] = [
        TaskKind::Task,
        TaskKind::Blocking,
        TaskKind::Local,
        TaskKind::BlockOn,
        TaskKind::Other,
    ];

    /// From the task span's `kind` field: anything unknown is `Other`.
    pub fn from_field(value: &str) -> TaskKind {
        match value {
            "task" => TaskKind::Task,
            "blocking" => TaskKind::Blocking,
            "local" => TaskKind::Local,
            "block_on" => TaskKind::BlockOn,
            _ => TaskKind::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TaskKind::Task => "task",
            TaskKind::Blocking => "blocking",
            TaskKind::Local => "local",
            TaskKind::BlockOn => "block_on",
            TaskKind::Other => "other",
        }
    }
}

crate::keyed::keyed!(TaskKind, label, "task kind");

/// The grouping key: spawn location and task kind.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GroupKey {
    pub loc: LocId,
    pub kind: TaskKind,
}

/// Interned location strings in `file:line:col` form.
#[derive(Default, Debug, Clone)]
pub struct Locations {
    ids: HashMap<Arc<str>, LocId>,
    names: Vec<Arc<str>>,
}

impl Locations {
    pub fn intern(&mut self, loc: Option<&SourceLoc>) -> LocId {
        let text = match loc {
            Some(l) if !l.file.is_empty() => format_location(l),
            _ => UNKNOWN_LOCATION.to_string(),
        };
        self.intern_str(&text)
    }

    pub fn intern_str(&mut self, text: &str) -> LocId {
        if let Some(id) = self.ids.get(text) {
            return *id;
        }
        let id = LocId(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        let name: Arc<str> = Arc::from(text);
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        id
    }

    pub fn name(&self, id: LocId) -> &Arc<str> {
        static UNKNOWN: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        self.names
            .get(id.0 as usize)
            .unwrap_or_else(|| UNKNOWN.get_or_init(|| Arc::from(UNKNOWN_LOCATION)))
    }

    pub fn get(&self, text: &str) -> Option<LocId> {
        self.ids.get(text).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// `file:line:col`, with dependency paths shortened the way tokio-console
/// does (`<cargo>/tokio-1.47.1/src/time/interval.rs`).
pub fn format_location(loc: &SourceLoc) -> String {
    let file = shorten_path(&loc.file);
    match (loc.line, loc.column) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
        (Some(l), None) => format!("{file}:{l}"),
        _ => file.to_string(),
    }
}

fn shorten_path(file: &str) -> &str {
    // `.cargo/registry/src/index.crates.io-xxxx/tokio-1.47.1/src/...`
    if let Some(pos) = file.find("/registry/src/") {
        let rest = &file[pos + "/registry/src/".len()..];
        if let Some(slash) = rest.find('/') {
            return &rest[slash + 1..];
        }
    }
    if let Some(pos) = file.find("/git/checkouts/") {
        let rest = &file[pos + "/git/checkouts/".len()..];
        if let Some(slash) = rest.find('/') {
            return &rest[slash + 1..];
        }
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(file: &str, line: u32, col: u32) -> SourceLoc {
        SourceLoc {
            file: file.into(),
            line: Some(line),
            column: Some(col),
        }
    }

    #[test]
    fn interning_is_stable() {
        let mut l = Locations::default();
        let a = l.intern(Some(&loc("src/server.rs", 88, 5)));
        let b = l.intern(Some(&loc("src/server.rs", 88, 5)));
        let c = l.intern(None);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(&**l.name(a), "src/server.rs:88:5");
        assert_eq!(&**l.name(c), UNKNOWN_LOCATION);
    }

    #[test]
    fn registry_paths_are_shortened() {
        let l = loc(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.47.1/src/time/interval.rs",
            135,
            25,
        );
        assert_eq!(
            format_location(&l),
            "tokio-1.47.1/src/time/interval.rs:135:25"
        );
    }
}
