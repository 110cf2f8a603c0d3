//! Live tasks by id: the young ones in a ring indexed by the id's number,
//! the ones that outlive it in hash maps.
//!
//! tokio numbers tasks from one counter, so the tasks spawned close
//! together in time have numbers close together, and most tasks are short:
//! a ring of records indexed by the number (`n mod size`, for the numbers
//! in its window) keeps the live tasks of a churn side by side in memory,
//! in the order the fold meets them (spawns in order, polls roughly in
//! order). A fold's lookup is then an index into memory it has just read
//! or prefetched, where a hash map's is a cache miss per event (that was
//! most of the fold's time: `perf` put 26 % of it on one load of a
//! bucket's key). When a spawn's number passes the window, the window
//! moves up by half of it and the tasks still live below it go to the
//! maps (8 of them, chosen by hash, so the table grows an eighth at a
//! time; each starts with room for 3 584 tasks, so that every array a map
//! frees is large enough for the allocator to give back; made when first
//! needed, so a recorder whose tasks all die young never maps them).
//!
//! The ring starts small and doubles (up to [`RING_MAX`], 4 096 slots,
//! 224 KiB) when a move would find it more than a quarter full: a churn
//! of up to ~2 000 tasks in flight lives and dies in it, and 100 000 idle
//! tasks keep the newest few thousand there and the rest in the maps (a
//! larger ring was no faster on that churn, and costs its memory in every
//! service).
//!
//! The number is read through `Id`'s `Hash` (tokio's `Id` hashes as the
//! `u64` it wraps; see [`number`]) and is only a position: every entry
//! keeps its `Id`, lookups compare it, and an id whose slot is taken by
//! another goes to the maps. Were tokio's ids ever spread differently
//! (but each still its own number), the table would be as right, and only
//! slower.
//!
//! The maps are walked first: the tasks that outlived the ring are the
//! old ones, and a reader that stops at a budget (the captures asked in a
//! round, at most 64 a place) should reach a place's long-idle tasks (a
//! leak's) before the young ones of its churn.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use tokio::task::Id;

use super::table::Rec;

/// Hashes task ids for the maps: a folded multiply of the id with a
/// per-process random key (the maps hold the tasks that outlived the
/// ring, in no order worth keeping; a hash that kept neighbours together
/// was tried there: no faster, and +9 B a task).
#[derive(Clone, Copy)]
pub(super) struct IdHash(u64);

impl Default for IdHash {
    fn default() -> Self {
        IdHash(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.0)
    }
}

pub(super) struct IdHasher(u64);

impl IdHasher {
    #[inline]
    fn mix(&mut self, n: u64) {
        let m = u128::from(self.0 ^ n) * 0x9E37_79B9_7F4A_7C15_u128;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.mix(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }
}

/// A task id's number, as its `Hash` writes it (the `u64` tokio counts
/// tasks with). Only a position in the ring: see the module doc.
#[inline]
pub(crate) fn number(id: &Id) -> u64 {
    struct Last(u64);
    impl Hasher for Last {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
        #[inline]
        fn write_u64(&mut self, n: u64) {
            self.0 = n;
        }
    }
    let mut h = Last(0);
    id.hash(&mut h);
    h.0
}

/// Slots the ring starts with, and the most it grows to.
const RING_START: usize = 256;
pub(super) const RING_MAX: usize = 4_096;
const MAPS: usize = 8;
const MAP_START: usize = 3_584;

#[derive(Default)]
struct Entry {
    id: Option<Id>,
    rec: Rec,
}

/// The live tasks (see the module doc).
#[derive(Default)]
pub(super) struct Tasks {
    ring: Vec<Entry>,
    /// The first number of the ring's window (`lo .. lo + ring.len()`).
    lo: u64,
    in_ring: usize,
    /// Empty until a task outlives the ring.
    maps: Vec<HashMap<Id, Rec, IdHash>>,
    in_maps: usize,
    hash: IdHash,
}

/// A spawn found its id already live: the end of the task that had it
/// is still to be folded.
pub(super) struct Taken;

impl Tasks {
    /// The ring slot of `n`, when `n` is in the window.
    #[inline]
    fn slot_of(&self, n: u64) -> Option<usize> {
        let size = self.ring.len() as u64;
        (n.wrapping_sub(self.lo) < size).then(|| (n & (size - 1)) as usize)
    }

    #[inline]
    fn map(&mut self, id: &Id) -> &mut HashMap<Id, Rec, IdHash> {
        // Other bits than the map's own (its buckets take the low ones,
        // its control bytes the top ones), and the same for 16 neighbours.
        let h = self.hash.hash_one(id);
        let m = (h ^ (h >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9) >> 61;
        &mut self.maps[m as usize % MAPS]
    }

    pub(super) fn len(&self) -> usize {
        self.in_ring + self.in_maps
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: &Id) -> Option<&mut Rec> {
        if let Some(i) = self.slot_of(number(id))
            && self.ring[i].id == Some(*id)
        {
            return Some(&mut self.ring[i].rec);
        }
        if self.in_maps == 0 {
            return None;
        }
        self.map(id).get_mut(id)
    }

    #[inline]
    pub(super) fn remove(&mut self, id: &Id) -> Option<Rec> {
        if let Some(i) = self.slot_of(number(id))
            && self.ring[i].id == Some(*id)
        {
            let e = &mut self.ring[i];
            e.id = None;
            self.in_ring -= 1;
            return Some(std::mem::take(&mut e.rec));
        }
        if self.in_maps == 0 {
            return None;
        }
        let rec = self.map(id).remove(id)?;
        self.in_maps -= 1;
        Some(rec)
    }

    /// Adds a task; [`Taken`] when its id is live already.
    #[inline]
    pub(super) fn insert(&mut self, id: Id, rec: Rec) -> Result<(), Taken> {
        let n = number(&id);
        if self.slot_of(n).is_none() && n >= self.lo {
            self.move_up(n);
        }
        if let Some(i) = self.slot_of(n) {
            let e = &mut self.ring[i];
            match e.id {
                None => {
                    *e = Entry { id: Some(id), rec };
                    self.in_ring += 1;
                    return Ok(());
                }
                Some(other) if other == id => return Err(Taken),
                // Another id with the same number: see the module doc.
                Some(_) => {}
            }
        }
        self.insert_in_maps(id, rec)
    }

    fn insert_in_maps(&mut self, id: Id, rec: Rec) -> Result<(), Taken> {
        if self.maps.is_empty() {
            let hash = self.hash;
            self.maps = (0..MAPS)
                .map(|_| HashMap::with_capacity_and_hasher(MAP_START, hash))
                .collect();
        }
        match self.map(&id).entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => Err(Taken),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(rec);
                self.in_maps += 1;
                Ok(())
            }
        }
    }

    /// Makes room for number `n` (above the window): a larger ring while
    /// it is crowded and may grow, else the window moves up so that `n`
    /// sits halfway, its tasks below the new window going to the maps.
    #[cold]
    fn move_up(&mut self, n: u64) {
        if self.ring.is_empty() {
            self.ring = (0..RING_START).map(|_| Entry::default()).collect();
            // A little room below: spawns on other threads, folded later.
            self.lo = n.saturating_sub(RING_START as u64 / 4);
            return;
        }
        while self.in_ring * 4 > self.ring.len() && self.ring.len() < RING_MAX {
            self.grow();
            if self.slot_of(n).is_some() {
                return;
            }
        }
        let size = self.ring.len() as u64;
        let lo = n + 1 - size / 2;
        if self.in_ring > 0 {
            // The slots of the numbers leaving the window.
            let leaving = (lo - self.lo).min(size);
            for k in self.lo..self.lo + leaving {
                let e = &mut self.ring[(k & (size - 1)) as usize];
                if let Some(id) = e.id.take() {
                    let rec = std::mem::take(&mut e.rec);
                    self.in_ring -= 1;
                    // Cannot be taken: a live id is in one place.
                    let _ = self.insert_in_maps(id, rec);
                }
            }
        }
        self.lo = lo;
    }

    /// Doubles the ring (the window keeps its start).
    fn grow(&mut self) {
        let size = self.ring.len() * 2;
        let old = std::mem::replace(
            &mut self.ring,
            (0..size).map(|_| Entry::default()).collect(),
        );
        for e in old {
            if let Some(id) = e.id {
                let i = (number(&id) & (size as u64 - 1)) as usize;
                self.ring[i] = e;
            }
        }
    }

    /// The live tasks: the maps' (the old ones) first, then the ring's.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Id, &Rec)> {
        let ring = self
            .ring
            .iter()
            .filter_map(|e| e.id.as_ref().map(|id| (id, &e.rec)));
        self.maps.iter().flat_map(|m| m.iter()).chain(ring)
    }

    /// [`Tasks::iter`], to change the records.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&Id, &mut Rec)> {
        let ring = self
            .ring
            .iter_mut()
            .filter_map(|e| e.id.as_ref().map(|id| (id, &mut e.rec)));
        self.maps.iter_mut().flat_map(|m| m.iter_mut()).chain(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Id> {
        super::super::test_ids(n)
    }

    fn rec(created: u64) -> Rec {
        let mut r = Rec::default();
        r.created = created;
        r
    }

    #[test]
    fn an_ids_number_is_the_one_tokio_shows() {
        for id in ids(3) {
            assert_eq!(number(&id), super::super::task_id(id));
        }
    }

    #[test]
    fn tasks_outliving_the_ring_move_to_the_maps_and_stay_found() {
        let ids = ids(3 * RING_MAX);
        let mut t = Tasks::default();
        for (i, id) in ids.iter().enumerate() {
            assert!(t.insert(*id, rec(i as u64)).is_ok());
        }
        assert_eq!(t.len(), ids.len());
        assert_eq!(t.ring.len(), RING_MAX);
        assert!(t.in_maps > 0 && t.in_ring > 0);
        assert!(t.insert(ids[0], rec(0)).is_err(), "a live id is taken");
        assert!(t.insert(ids[ids.len() - 1], rec(0)).is_err());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.get_mut(id).map(|r| r.created), Some(i as u64));
        }
        // The old ones (in the maps) come first: each older than every
        // task in the ring (other tests' spawns may spread the numbers,
        // and with them where the window falls).
        let order: Vec<u64> = t.iter().map(|(_, r)| r.created).collect();
        let (old, young) = order.split_at(t.in_maps);
        assert!(old.iter().max() < young.iter().min(), "the maps' first");
        let mut seen: Vec<u64> = t.iter().map(|(_, r)| r.created).collect();
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, c)| *c == i as u64));
        for (i, id) in ids.iter().enumerate().rev() {
            assert_eq!(t.remove(id).map(|r| r.created), Some(i as u64));
            assert!(t.get_mut(id).is_none());
        }
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn a_churn_stays_in_a_small_ring() {
        let ids = ids(50_000);
        let mut t = Tasks::default();
        // 1 000 in flight: each task ends 1 000 spawns after it began.
        for (i, id) in ids.iter().enumerate() {
            t.insert(*id, rec(i as u64)).ok().expect("free");
            if i >= 1_000 {
                assert!(t.remove(&ids[i - 1_000]).is_some());
            }
        }
        assert_eq!(t.len(), 1_000);
        // (Unless other tests' spawns spread these ids far apart.)
        let span = number(&ids[ids.len() - 1]) - number(&ids[0]);
        assert!(
            t.maps.is_empty() || span > 2 * ids.len() as u64,
            "no task outlived the ring"
        );
    }

    #[test]
    fn ids_out_of_order_are_kept_too() {
        let ids = ids(40_000);
        let mut t = Tasks::default();
        // The newest first, then the oldest (below the window: the maps).
        t.insert(ids[39_999], rec(39_999)).ok().expect("free");
        for (i, id) in ids.iter().enumerate().take(39_999) {
            t.insert(*id, rec(i as u64)).ok().expect("free");
        }
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.remove(id).map(|r| r.created), Some(i as u64));
        }
        assert_eq!(t.len(), 0);
    }
}
