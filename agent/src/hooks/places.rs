//! Numbers for places: each [`Site`] and each spawner's location gets a
//! `u32` once, so an event and a task's record carry two small numbers
//! instead of two pointers. A thread finds the numbers of the places it
//! spawns at again in a small cache of its own, without a lock.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::Mutex;

use super::site::{Site, SplitRules};

/// Bits of a place's or location's number (in an event, and in a task's
/// record beside a count).
pub(super) const PLACE_BITS: u32 = 20;
/// No location (a task spawned outside any task).
pub(super) const NONE: u32 = (1 << PLACE_BITS) - 1;
/// Places numbered at most: the last one stands for every place after it
/// (a program does not have a million spawn locations).
const MAX: u32 = NONE - 1;

#[derive(Default)]
pub(super) struct Places {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// (location, spawner, split) addresses → site number.
    sites: HashMap<(usize, usize), u32>,
    site_list: Vec<&'static Site>,
    locations: HashMap<usize, u32>,
    location_list: Vec<&'static Location<'static>>,
}

fn addr(l: &'static Location<'static>) -> usize {
    l as *const Location<'static> as usize
}

impl Places {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The numbers of the place a task spawned at `at` counts at (split by
    /// `spawner` when `split` or the rules split `at`), and of `spawner`.
    pub(super) fn number(
        &self,
        rules: &SplitRules,
        at: &'static Location<'static>,
        split: bool,
        spawner: Option<&'static Location<'static>>,
    ) -> (u32, u32) {
        let split = split || rules.splits(at);
        let by = if split { spawner.map_or(0, addr) } else { 0 };
        let mut r = self.lock();
        let n = r.site_list.len() as u32;
        if n > MAX {
            return (MAX, NONE);
        }
        let site = *r.sites.entry((addr(at), by)).or_insert(n);
        if site == n {
            let s: &'static Site = Box::leak(Box::new(Site::new(at, split, spawner)));
            r.site_list.push(s);
        }
        let loc = match spawner {
            None => NONE,
            Some(l) => {
                let n = r.location_list.len() as u32;
                if n >= MAX {
                    return (site, NONE);
                }
                let loc = *r.locations.entry(addr(l)).or_insert(n);
                if loc == n {
                    r.location_list.push(l);
                }
                loc
            }
        };
        (site, loc)
    }

    /// Copies the sites and locations numbered since `sites` and
    /// `locations` were last brought up to date.
    pub(super) fn catch_up(
        &self,
        sites: &mut Vec<&'static Site>,
        locations: &mut Vec<&'static Location<'static>>,
    ) {
        let r = self.lock();
        sites.extend_from_slice(&r.site_list[sites.len().min(r.site_list.len())..]);
        locations.extend_from_slice(&r.location_list[locations.len().min(r.location_list.len())..]);
    }
}

/// (location, spawner, split) addresses, and the place's and spawner's
/// numbers.
type Cached = (usize, usize, bool, u32, u32);

/// A thread's last places.
#[derive(Default)]
pub(super) struct Cache {
    entries: [Option<Cached>; 8],
    next: usize,
}

impl Cache {
    #[inline]
    pub(super) fn get(
        &mut self,
        places: &Places,
        rules: &SplitRules,
        at: &'static Location<'static>,
        split: bool,
        spawner: Option<&'static Location<'static>>,
    ) -> (u32, u32) {
        let key = (addr(at), spawner.map_or(0, addr), split);
        for (a, b, s, site, loc) in self.entries.iter().flatten() {
            if (*a, *b, *s) == key {
                return (*site, *loc);
            }
        }
        let (site, loc) = places.number(rules, at, split, spawner);
        self.entries[self.next] = Some((key.0, key.1, key.2, site, loc));
        self.next = (self.next + 1) % self.entries.len();
        (site, loc)
    }
}
