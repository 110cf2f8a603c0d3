//! The distinct stacks the agent has captured, interned: a capture is kept
//! per task as a number, and each stack is resolved to names once.

use std::collections::HashMap;
use std::sync::Arc;

/// Most distinct stacks kept. A service has as many as it has distinct
/// places to wait; beyond this a capture is dropped (and counted) rather
/// than grow the service's memory.
pub const MAX_STACKS: usize = 8192;

/// The process's one table (stacks are the same whichever runtime
/// captured them).
static GLOBAL: std::sync::LazyLock<std::sync::Mutex<Stacks>> =
    std::sync::LazyLock::new(Default::default);

fn global() -> std::sync::MutexGuard<'static, Stacks> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Interns a capture in the process's table.
pub fn intern(ips: Vec<usize>) -> Option<u32> {
    global().intern(ips)
}

/// A stack of the process's table.
pub fn get(id: u32) -> Option<Arc<[usize]>> {
    global().get(id)
}

/// Distinct stacks kept, and captures dropped for a full table.
pub fn counts() -> (u64, u64) {
    let g = global();
    (g.len() as u64, g.dropped)
}

#[derive(Default)]
pub struct Stacks {
    ids: HashMap<Arc<[usize]>, u32>,
    all: Vec<Arc<[usize]>>,
    /// Captures dropped because the table was full.
    pub dropped: u64,
}

impl Stacks {
    /// The stack's id, made on its first capture; `None` when the table is
    /// full and the stack is new.
    pub fn intern(&mut self, ips: Vec<usize>) -> Option<u32> {
        if let Some(&id) = self.ids.get(ips.as_slice()) {
            return Some(id);
        }
        if self.all.len() >= MAX_STACKS {
            self.dropped += 1;
            return None;
        }
        let id = self.all.len() as u32;
        let ips: Arc<[usize]> = ips.into();
        self.all.push(ips.clone());
        self.ids.insert(ips, id);
        Some(id)
    }

    pub fn get(&self, id: u32) -> Option<Arc<[usize]>> {
        self.all.get(id as usize).cloned()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_is_kept_once_and_the_table_is_bounded() {
        let mut s = Stacks::default();
        assert_eq!(s.intern(vec![1, 2, 0]), Some(0));
        assert_eq!(s.intern(vec![3, 0]), Some(1));
        assert_eq!(s.intern(vec![1, 2, 0]), Some(0));
        assert_eq!(s.len(), 2);
        for i in 2..MAX_STACKS {
            assert_eq!(s.intern(vec![i + 10, 0]), Some(i as u32));
        }
        assert_eq!(s.intern(vec![999_999, 0]), None);
        assert_eq!(s.dropped, 1);
        // Known stacks are still found when full.
        assert_eq!(s.intern(vec![3, 0]), Some(1));
    }
}
