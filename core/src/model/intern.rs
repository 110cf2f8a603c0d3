//! Values many entities share (a site's task labels, resource shapes),
//! stored once: one allocation per distinct value, forgotten with the last
//! entity that has it.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

#[derive(Debug)]
pub struct Shared<T: Eq + Hash + ?Sized> {
    set: HashSet<Arc<T>>,
}

impl<T: Eq + Hash + ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            set: self.set.clone(),
        }
    }
}

impl<T: Eq + Hash + ?Sized> Default for Shared<T> {
    fn default() -> Self {
        Shared {
            set: HashSet::new(),
        }
    }
}

impl<T: Eq + Hash> Shared<T> {
    pub fn intern(&mut self, value: T) -> Arc<T> {
        if let Some(v) = self.set.get(&value) {
            return v.clone();
        }
        let v = Arc::new(value);
        self.set.insert(v.clone());
        v
    }
}

impl Shared<str> {
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(v) = self.set.get(s) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(s);
        self.set.insert(v.clone());
        v
    }
}

impl<T: Eq + Hash + ?Sized> Shared<T> {
    /// Forgets values no entity has any more.
    pub fn purge(&mut self) {
        self.set.retain(|v| Arc::strong_count(v) > 1);
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
