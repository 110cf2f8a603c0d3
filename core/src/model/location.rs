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

/// Interned location strings in `file:line:col` form. A location can be
/// forgotten (the hooks source follows a bounded number of them); its slot
/// is then reused under a new generation, so an id kept from before names
/// no other location: it reads as [`FORGOTTEN_LOCATION`].
#[derive(Default, Debug, Clone)]
pub struct Locations {
    ids: HashMap<Arc<str>, LocId>,
    /// Each slot's name and generation.
    names: Vec<(Arc<str>, u8)>,
    /// Slots of forgotten locations, to reuse.
    free: Vec<u32>,
}

/// What an id of a forgotten location reads as.
pub const FORGOTTEN_LOCATION: &str = "<forgotten location>";

/// An id is a slot (low 24 bits) and the slot's generation (high 8).
const SLOT_BITS: u32 = 24;
const MAX_SLOTS: usize = 1 << SLOT_BITS;

impl LocId {
    fn slot(self) -> usize {
        (self.0 & ((1 << SLOT_BITS) - 1)) as usize
    }

    fn generation(self) -> u8 {
        (self.0 >> SLOT_BITS) as u8
    }

    fn new(slot: usize, generation: u8) -> LocId {
        LocId(slot as u32 | (u32::from(generation) << SLOT_BITS))
    }
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
        let name: Arc<str> = Arc::from(text);
        let id = match self.free.pop() {
            Some(slot) => {
                let entry = &mut self.names[slot as usize];
                entry.0 = name.clone();
                LocId::new(slot as usize, entry.1)
            }
            // Past 16 million locations (a hostile console), the last slot
            // takes every new one.
            None if self.names.len() >= MAX_SLOTS => {
                let slot = MAX_SLOTS - 1;
                self.forget(LocId::new(slot, self.names[slot].1));
                return self.intern_str(text);
            }
            None => {
                self.names.push((name.clone(), 0));
                LocId::new(self.names.len() - 1, 0)
            }
        };
        self.ids.insert(name, id);
        id
    }

    /// Forgets a location: its id names nothing from now on (see the type).
    pub fn forget(&mut self, id: LocId) {
        let Some(entry) = self.names.get_mut(id.slot()) else {
            return;
        };
        if entry.1 != id.generation() || self.free.contains(&(id.slot() as u32)) {
            return;
        }
        self.ids.remove(&entry.0);
        static GONE: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        entry.0 = GONE.get_or_init(|| Arc::from(FORGOTTEN_LOCATION)).clone();
        entry.1 = entry.1.wrapping_add(1);
        self.free.push(id.slot() as u32);
    }

    pub fn name(&self, id: LocId) -> &Arc<str> {
        static UNKNOWN: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        static GONE: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
        match self.names.get(id.slot()) {
            Some((name, generation)) if *generation == id.generation() => name,
            Some(_) => GONE.get_or_init(|| Arc::from(FORGOTTEN_LOCATION)),
            None => UNKNOWN.get_or_init(|| Arc::from(UNKNOWN_LOCATION)),
        }
    }

    pub fn get(&self, text: &str) -> Option<LocId> {
        self.ids.get(text).copied()
    }

    /// Locations known now.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
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
    fn a_forgotten_location_s_id_names_no_other() {
        let mut l = Locations::default();
        let a = l.intern_str("src/a.rs:1:1");
        l.forget(a);
        assert_eq!(l.get("src/a.rs:1:1"), None);
        assert_eq!(l.len(), 0);
        // Its slot is reused, under another generation.
        let b = l.intern_str("src/b.rs:2:2");
        assert_ne!(a, b);
        assert_eq!(&**l.name(b), "src/b.rs:2:2");
        assert_eq!(&**l.name(a), FORGOTTEN_LOCATION);
        // Forgetting a stale id does nothing.
        l.forget(a);
        assert_eq!(&**l.name(b), "src/b.rs:2:2");
        assert_eq!(l.intern_str("src/a.rs:1:1"), LocId::new(1, 0));
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
