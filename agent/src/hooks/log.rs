//! Each thread's event log: what the hooks write, and all they write.
//!
//! A hook appends one event to its own thread's log (per recorder): three
//! words written with plain stores, then the log's length published with a
//! release store. No lock, no shared cache line, no lookup. The log is a
//! chunk of slots; when it is full, its thread hands it over (its own
//! queue, whose lock only it and a folder take, each for a push or a
//! swap) and goes on in a spare or fresh one, and the chunks handed over
//! are folded into the task table by whoever folds next: a worker about
//! to park, a reader, or a thread that has left several; a thread that
//! runs no tasks folds its own full chunk at once when nobody else is
//! folding (see `handoff`: a runtime's worker never waits for the fold
//! lock). A reader (see
//! `table`) folds the events every thread has published so far before
//! it reads.
//!
//! A thread's first chunk is small ([`FIRST`] slots): threads that record a
//! handful of events (a blocking thread ending blocking tasks, a `main`
//! that spawns a few) cost little. When it first fills, the thread gets a
//! full-size chunk ([`SLOTS`]), once.
//!
//! Beside its log a thread keeps the wakers of the wrapped tasks whose
//! first `Pending` it ran ([`Stash`]): a waker goes in the log only when
//! its task outlives its entry there, so a short wrapped task costs the
//! log nothing more than any other task. (Through the log, each cost the
//! fold an event and the release of a waker on another thread: wrapped
//! tasks read 1.26-1.31x plain on the churn where the hooks alone read
//! 1.11-1.14x; kept here, 1.20-1.23x, the hooks 1.12-1.16x in those runs;
//! PERFORMANCE.md has them.)

use crossbeam_utils::atomic::AtomicCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{RawWakerVTable, Waker};
use tokio::task::Id;

use crate::slot::Mail;

/// Slots in a thread's first chunk, and in every chunk after it.
pub(super) const FIRST: usize = 64;
pub(super) const SLOTS: usize = 1024;

/// What an event says (the low bits of its second word; the rest is a
/// time, ns since the recorder's epoch).
/// A task spawned inside another's poll: its second slot is the parent.
pub(super) const SPAWN: u64 = 1;
/// A task spawned outside any task's poll (one slot).
pub(super) const SPAWN_ROOT: u64 = 6;
/// A poll ended: the third word is when it began, and its top bit
/// ([`KEPT`]) says the task is wrapped and its waker kept in the thread's
/// [`Stash`].
pub(super) const POLL: u64 = 2;
/// In a [`POLL`]'s third word: see there.
pub(super) const KEPT: u64 = 1 << 63;
/// The task's last poll: it ended inside it (the terminate hook ran within
/// the poll). The third word is when the poll began.
pub(super) const POLL_END: u64 = 3;
/// The task ended outside a poll of its own (aborted while idle, the
/// runtime shut down, a blocking task), or in a poll the agent caused.
pub(super) const TERM: u64 = 4;
/// The wrapped task's poll left mail (see `capture`): the next mail in the
/// thread's mail queue is this task's.
pub(super) const MAIL: u64 = 5;
/// A wrapped task's first `Pending` handed its waker over: the second
/// slot's two words are the waker's data and vtable (see [`Event::Adopt`]).
pub(super) const ADOPT: u64 = 7;
const KIND_BITS: u32 = 3;
const KIND_MASK: u64 = (1 << KIND_BITS) - 1;

// A hook writes a task's id into its slot with no lock only while
// `Option<Id>` fits an atomic word (tokio's `Id` wraps a `NonZeroU64`);
// were that to change, `AtomicCell` would take a global lock on every
// hook: the build fails instead.
const _: () = assert!(AtomicCell::<Option<Id>>::is_lock_free());

/// One slot: a task, a time and kind, a word of payload.
#[derive(Default)]
pub(super) struct Slot {
    id: AtomicCell<Option<Id>>,
    word: AtomicU64,
    data: AtomicU64,
}

/// A run of slots. Its owner writes slots below `len` only; a folder reads
/// `consumed..len` under the fold lock.
pub(super) struct Chunk {
    len: AtomicU32,
    /// How far folders have read (only ever touched under the fold lock).
    consumed: AtomicU32,
    slots: Box<[Slot]>,
}

impl Drop for Chunk {
    /// Events no fold read (a recorder gone): the wakers they carry go.
    fn drop(&mut self) {
        self.drain(|e| {
            if let Event::Adopt { waker, .. } = e {
                // SAFETY: read once, here: no fold read this event.
                drop(unsafe { adopted(waker) });
            }
        });
    }
}

impl Chunk {
    pub(super) fn new(slots: usize) -> Arc<Chunk> {
        Arc::new(Chunk {
            len: AtomicU32::new(0),
            consumed: AtomicU32::new(0),
            slots: (0..slots).map(|_| Slot::default()).collect(),
        })
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The events published and not yet folded; marks them folded.
    pub(super) fn drain(&self, mut f: impl FnMut(Event)) {
        let len = self.len.load(Ordering::Acquire) as usize;
        let mut i = self.consumed.load(Ordering::Relaxed) as usize;
        while i < len {
            let s = &self.slots[i];
            let (id, word, data) = (
                s.id.load(),
                s.word.load(Ordering::Relaxed),
                s.data.load(Ordering::Relaxed),
            );
            i += 1;
            let Some(id) = id else { continue };
            let at = word >> KIND_BITS;
            let ev = match word & KIND_MASK {
                SPAWN | SPAWN_ROOT => {
                    // A child's second slot: its parent.
                    let parent = if word & KIND_MASK == SPAWN {
                        i += 1;
                        self.slots.get(i - 1).and_then(|s| s.id.load())
                    } else {
                        None
                    };
                    Event::Spawn {
                        id,
                        at,
                        site: data as u32,
                        parent_loc: (data >> 32) as u32,
                        parent,
                    }
                }
                POLL | POLL_END => Event::Poll {
                    id,
                    start: data & !KEPT,
                    end: at,
                    ended: word & KIND_MASK == POLL_END,
                    kept: data & KEPT != 0,
                },
                TERM => Event::Term { id, at },
                MAIL => Event::Mail { id, at },
                ADOPT => {
                    i += 1;
                    let Some(s) = self.slots.get(i - 1) else {
                        continue;
                    };
                    // Past it before anyone owns its waker: a fold that
                    // panics later in this chunk (a waker's drop is
                    // foreign code) leaves `consumed` behind, and the next
                    // fold must not take this waker back again.
                    self.consumed.store(i as u32, Ordering::Relaxed);
                    Event::Adopt {
                        id,
                        waker: RawParts {
                            data: s.word.load(Ordering::Relaxed) as usize,
                            vtable: s.data.load(Ordering::Relaxed) as usize,
                        },
                    }
                }
                _ => continue,
            };
            f(ev);
        }
        self.consumed.store(i as u32, Ordering::Relaxed);
    }

    /// Slots published and not yet folded (read without the fold lock: a
    /// moment's view, for tests).
    #[cfg(test)]
    pub(super) fn unfolded(&self) -> usize {
        (self.len.load(Ordering::Acquire) as usize)
            .saturating_sub(self.consumed.load(Ordering::Relaxed) as usize)
    }

    /// Whether every published event has been folded.
    pub(super) fn folded(&self) -> bool {
        self.consumed.load(Ordering::Relaxed) == self.len.load(Ordering::Acquire)
    }

    /// Empties a folded chunk for reuse (under the fold lock, by its owner
    /// or once no thread writes it).
    pub(super) fn reset(&self) {
        self.len.store(0, Ordering::Release);
        self.consumed.store(0, Ordering::Relaxed);
    }
}

/// A folded event.
#[derive(Clone, Copy, Debug)]
pub(super) enum Event {
    Spawn {
        id: Id,
        at: u64,
        site: u32,
        parent_loc: u32,
        parent: Option<Id>,
    },
    Poll {
        id: Id,
        start: u64,
        end: u64,
        /// The task ended in this poll.
        ended: bool,
        /// A wrapped task's first `Pending`: its thread keeps its waker.
        kept: bool,
    },
    Term {
        id: Id,
        at: u64,
    },
    Mail {
        id: Id,
        at: u64,
    },
    /// The task's waker, in parts: whoever takes the event owns it, and
    /// makes it whole with [`adopted`] (a fold that applies or drops it,
    /// a chunk dropped unread).
    Adopt {
        id: Id,
        waker: RawParts,
    },
}

/// A waker taken apart (`Waker::data`, `Waker::vtable`), not dropped.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawParts {
    data: usize,
    vtable: usize,
}

/// The waker an [`Event::Adopt`] carries, owned again.
///
/// # Safety
/// Once per [`Event::Adopt`] read from a chunk: the parts came from a waker
/// taken apart and not dropped in `Local::push_adopt`, and each event is
/// read once (a chunk's `consumed` moves past it under the fold lock, or
/// its `Drop` reads what no fold did). The event is `Copy`: whoever holds
/// it must make its waker whole once (apply it, keep it pending, or let it
/// go), and no copy of it may be made whole again.
pub(super) unsafe fn adopted(w: RawParts) -> Waker {
    // SAFETY: per the contract, this waker is made whole once.
    unsafe { Waker::new(w.data as *const (), &*(w.vtable as *const RawWakerVTable)) }
}

/// A thread's log, as the recorder and its folders see it.
#[derive(Default)]
pub(super) struct ThreadLog {
    pub(super) chunks: Mutex<Chunks>,
    /// The mail of its `MAIL` events, in order.
    pub(super) mail: Mutex<VecDeque<Mail>>,
    /// The task this thread is polling (none between polls), and since when.
    running: AtomicCell<Option<Id>>,
    since: AtomicU64,
    /// The thread has ended: once folded, the log can go.
    pub(super) ended: AtomicBool,
}

#[derive(Default)]
pub(super) struct Chunks {
    /// The chunk the thread writes now.
    pub(super) current: Option<Arc<Chunk>>,
    /// Full chunks handed over while someone else folded, oldest first.
    pub(super) full: Vec<Arc<Chunk>>,
}

impl ThreadLog {
    /// The task in a poll on this thread now, and when its poll began.
    pub(super) fn running(&self) -> Option<(Id, u64)> {
        let id = self.running.load()?;
        Some((id, self.since.load(Ordering::Relaxed)))
    }

    pub(super) fn enter(&self, id: Id, now: u64) {
        self.since.store(now, Ordering::Relaxed);
        self.running.store(Some(id));
    }

    pub(super) fn leave(&self) {
        self.running.store(None);
    }
}

/// A thread's own handle on its log in one recorder.
pub(super) struct Local {
    pub(super) recorder: usize,
    pub(super) log: Arc<ThreadLog>,
    chunk: Arc<Chunk>,
    len: usize,
    /// The last few places this thread spawned at (see `places`).
    pub(super) cache: super::places::Cache,
    /// Wrapped tasks' wakers not yet in the log (see [`Stash`]).
    pub(super) stash: Stash,
    /// When the wakers in its stash go in the log at the latest (see
    /// [`STASH_FOR`]).
    flush_due: u64,
}

/// How long a thread that runs tasks keeps wakers in its [`Stash`] (ns),
/// counted from the first: a task that ended on another thread has its
/// waker there, and with it its memory, until then.
pub(super) const STASH_FOR: u64 = 100_000_000;
/// The most wakers a hook puts in the log when [`STASH_FOR`] is past.
const FLUSH_STEP: usize = 256;

/// Entries in a thread's [`Stash`] at first, and the most it grows to.
const STASH_START: usize = 256;
pub(super) const STASH_MAX: usize = 4096;

/// The wakers of wrapped tasks whose first `Pending` was on this thread,
/// kept here, by the id's number (one entry per number modulo its size),
/// until the task ends on this thread (the waker is let go there, at
/// once: most of a churn's tasks never reach the log), another task's
/// waker takes the entry, the thread parks or ends, or at the thread's
/// first hook (a poll, a spawn, an end) [`STASH_FOR`] (100 ms) after the
/// stash took its first (see [`Local::flush`]): then the waker goes in the
/// log, for the recorder to keep (at the next fold). So a task that waits
/// reaches the table, and can be asked for a capture, about 100 ms after
/// its first `Pending`, and a task that ended on another thread keeps its
/// memory about that long, on a thread that runs tasks or parks. (A
/// thread that does neither, and has not ended, keeps them: a runtime
/// thread blocked in the service's own code.)
///
/// It starts at [`STASH_START`] entries (made on the first wrapped task)
/// and doubles while half full, up to [`STASH_MAX`] (96 KiB): a churn of
/// 2 000 wrapped tasks in flight on two workers lives and dies in it.
/// (Those are the only allocations it makes: five at most, in a thread's
/// life.)
#[derive(Default)]
pub(super) struct Stash {
    entries: Vec<Option<(Id, Waker)>>,
    len: usize,
    /// Where [`Stash::pop`] looks next.
    next: usize,
}

impl Stash {
    fn index(&self, id: &Id) -> usize {
        (super::tasks::number(id) as usize) & (self.entries.len() - 1)
    }

    /// Keeps `waker` for task `id`; the entry it takes the place of, if any.
    pub(super) fn put(&mut self, id: Id, waker: Waker) -> Option<(Id, Waker)> {
        if self.len * 2 >= self.entries.len() && self.entries.len() < STASH_MAX {
            self.grow();
        }
        let i = self.index(&id);
        let old = self.entries[i].replace((id, waker));
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Doubles the entries (or makes the first): each goes to its number
    /// modulo the new size, where no other can be (they had distinct
    /// numbers modulo the old).
    #[cold]
    fn grow(&mut self) {
        let size = (self.entries.len() * 2).max(STASH_START);
        let old = std::mem::replace(&mut self.entries, Vec::with_capacity(size));
        self.entries.resize_with(size, || None);
        for (id, waker) in old.into_iter().flatten() {
            let i = self.index(&id);
            self.entries[i] = Some((id, waker));
        }
    }

    /// Task `id`'s waker, if kept here.
    #[inline]
    pub(super) fn take(&mut self, id: Id) -> Option<Waker> {
        if self.len == 0 {
            return None;
        }
        let i = self.index(&id);
        let e = &mut self.entries[i];
        if e.as_ref().is_none_or(|(mine, _)| *mine != id) {
            return None;
        }
        self.len -= 1;
        e.take().map(|(_, w)| w)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A waker kept, taken (the entries in turn, from where the last
    /// pop stopped).
    pub(super) fn pop(&mut self) -> Option<(Id, Waker)> {
        if self.len == 0 {
            return None;
        }
        let size = self.entries.len();
        for k in 0..size {
            let i = (self.next + k) & (size - 1);
            if let Some(e) = self.entries[i].take() {
                self.next = i + 1;
                self.len -= 1;
                return Some(e);
            }
        }
        None
    }
}

impl Local {
    pub(super) fn new(recorder: usize) -> Local {
        let chunk = Chunk::new(FIRST);
        let log = Arc::new(ThreadLog::default());
        log.chunks.lock().unwrap_or_else(|e| e.into_inner()).current = Some(chunk.clone());
        Local {
            recorder,
            log,
            chunk,
            len: 0,
            cache: Default::default(),
            stash: Stash::default(),
            flush_due: 0,
        }
    }

    /// Appends an event of one slot, or two (a spawn, and its `parent`).
    #[inline]
    pub(super) fn push(
        &mut self,
        full: impl FnOnce(&mut Local),
        id: Id,
        kind: u64,
        at: u64,
        data: u64,
        parent: Option<Id>,
    ) {
        let n = 1 + usize::from(parent.is_some());
        if self.len + n > self.chunk.slots.len() {
            full(self);
        }
        let s = &self.chunk.slots[self.len];
        s.id.store(Some(id));
        s.word.store((at << KIND_BITS) | kind, Ordering::Relaxed);
        s.data.store(data, Ordering::Relaxed);
        if let Some(parent) = parent {
            self.chunk.slots[self.len + 1].id.store(Some(parent));
        }
        self.len += n;
        self.chunk.len.store(self.len as u32, Ordering::Release);
    }

    /// Appends a wrapped task's waker (see [`ADOPT`]), which the fold
    /// then owns.
    #[inline]
    pub(super) fn push_adopt(
        &mut self,
        full: impl FnOnce(&mut Local),
        id: Id,
        at: u64,
        waker: Waker,
    ) {
        if self.len + 2 > self.chunk.slots.len() {
            full(self);
        }
        let s = &self.chunk.slots[self.len];
        s.id.store(Some(id));
        s.word.store((at << KIND_BITS) | ADOPT, Ordering::Relaxed);
        let second = &self.chunk.slots[self.len + 1];
        second.id.store(None);
        let waker = std::mem::ManuallyDrop::new(waker);
        second.word.store(waker.data() as u64, Ordering::Relaxed);
        let vtable: *const RawWakerVTable = waker.vtable();
        second.data.store(vtable as u64, Ordering::Relaxed);
        self.len += 2;
        self.chunk.len.store(self.len as u32, Ordering::Release);
    }

    /// Puts the wakers kept in [`Stash`] in the log, for the recorder to
    /// keep (its task is alive, or its end is in another thread's log):
    /// up to `max` of them. A thread that parks or ends puts all; a busy
    /// thread [`FLUSH_STEP`] in a hook, which then writes a few hundred
    /// events, not thousands, and a fold its chunks may start stays that
    /// small.
    pub(super) fn flush(&mut self, full: impl Fn(&mut Local), at: u64, max: usize) {
        // Out while its wakers go in the log (which borrows the thread's
        // handle), then back, its entries kept for reuse: no allocation.
        let mut stash = std::mem::take(&mut self.stash);
        for _ in 0..max {
            let Some((id, waker)) = stash.pop() else {
                break;
            };
            self.push_adopt(&full, id, at, waker);
        }
        self.stash = stash;
    }

    /// Keeps a wrapped task's waker in the stash (see [`Stash::put`]);
    /// the one whose entry it takes goes in the log.
    pub(super) fn keep(&mut self, full: impl Fn(&mut Local), id: Id, waker: Waker, now: u64) {
        if self.stash.is_empty() {
            self.flush_due = now + STASH_FOR;
        }
        if let Some((old, waker)) = self.stash.put(id, waker) {
            self.push_adopt(&full, old, now, waker);
        }
    }

    /// [`Local::flush`], when the stash has kept its wakers for
    /// [`STASH_FOR`] (a thread that runs polls; one that parks puts them
    /// in the log as it parks).
    #[inline]
    pub(super) fn flush_if_due(&mut self, full: impl Fn(&mut Local), now: u64) {
        if !self.stash.is_empty() && now >= self.flush_due {
            self.flush(full, now, FLUSH_STEP);
            // Due again at once while some are left: the next hook goes on.
            if self.stash.is_empty() {
                self.flush_due = now + STASH_FOR;
            }
        }
    }

    /// After a fold by this thread: whether its chunk was folded whole (then
    /// it is reused, or, the first time, replaced by a full-size one).
    pub(super) fn after_fold(&mut self, pool: &Mutex<Vec<Arc<Chunk>>>) -> bool {
        if !self.chunk.folded() {
            return false;
        }
        if self.chunk.capacity() < SLOTS {
            let big = take_chunk(pool);
            let mut c = self.log.chunks.lock().unwrap_or_else(|e| e.into_inner());
            c.current = Some(big.clone());
            self.chunk = big;
        } else {
            self.chunk.reset();
        }
        self.len = 0;
        true
    }

    /// Events in the chunk it writes now.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Chunks handed over and not yet folded.
    pub(super) fn waiting(&self) -> usize {
        self.log
            .chunks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .full
            .len()
    }

    /// Hands the full chunk over to be folded and goes on in `fresh`.
    pub(super) fn hand_over(&mut self, fresh: Arc<Chunk>) {
        let mut c = self.log.chunks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = c.current.replace(fresh.clone()) {
            c.full.push(old);
        }
        drop(c);
        self.chunk = fresh;
        self.len = 0;
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // The thread ends: the wakers it kept go in its log, still read
        // (its tasks may live on, on other threads). Its last event is
        // earlier than any time now: the adoptions' times are not read.
        self.flush(|l| l.hand_over(Chunk::new(SLOTS)), 0, usize::MAX);
        self.log.leave();
        self.log.ended.store(true, Ordering::Release);
    }
}

/// A folded chunk from the pool, or a new one.
fn take_chunk(pool: &Mutex<Vec<Arc<Chunk>>>) -> Arc<Chunk> {
    let spare = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
    spare.unwrap_or_else(|| Chunk::new(SLOTS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::test_wakers::Flag;
    use std::sync::Arc;

    /// The stash keeps each task's waker by its number: growing keeps them
    /// all, a task whose number takes a kept one's entry hands that one
    /// back (for the log), and a task finds only its own.
    #[test]
    fn a_stash_keeps_wakers_by_number_and_gives_back_the_one_displaced() {
        let ids = super::super::consecutive_ids(STASH_MAX + 1);
        let flag = Arc::new(Flag);
        let mut stash = Stash::default();
        // Half of the most it holds: every one kept, through each growth.
        for &id in &ids[..STASH_MAX / 2] {
            assert!(stash.put(id, Waker::from(flag.clone())).is_none());
        }
        assert_eq!(stash.entries.len(), STASH_MAX);
        assert_eq!(Arc::strong_count(&flag), 1 + STASH_MAX / 2);
        // Numbers a full turn apart share an entry.
        let (first, late) = (ids[0], ids[STASH_MAX]);
        let gone = stash.put(late, Waker::from(flag.clone())).map(|(id, _)| id);
        assert_eq!(gone, Some(first), "the one displaced");
        assert!(stash.take(first).is_none(), "not kept any more");
        assert!(stash.take(late).is_some());
        assert!(stash.take(late).is_none(), "taken once");
        assert!(stash.take(ids[1]).is_some());
        let left = std::iter::from_fn(|| stash.pop()).count();
        assert!(stash.is_empty() && stash.take(ids[2]).is_none());
        assert_eq!(left, STASH_MAX / 2 - 2);
        assert_eq!(Arc::strong_count(&flag), 1, "every waker let go");
    }

    /// A fold that panics after taking an adoption's waker (a waker's drop
    /// is foreign code) leaves the chunk half read: whoever reads it next
    /// (the next fold, or its drop) does not take that waker back again.
    #[test]
    fn a_fold_that_panics_after_an_adoption_does_not_take_it_back_twice() {
        let id = super::super::test_ids(1)[0];
        let flag = Arc::new(Flag);
        // A second count of ours: a waker let go twice shows as 1 (not as
        // a free while we hold it).
        let ours = flag.clone();
        let mut local = Local::new(0);
        local.push_adopt(|_| unreachable!("room"), id, 1, Waker::from(flag.clone()));
        local.push(|_| unreachable!("room"), id, POLL, 2, 1, None);
        let chunk = local.chunk.clone();
        let folded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            chunk.drain(|e| match e {
                // SAFETY: the event just read, once.
                Event::Adopt { waker, .. } => drop(unsafe { adopted(waker) }),
                _ => panic!("a waker's drop panicked"),
            })
        }));
        assert!(folded.is_err());
        assert_eq!(Arc::strong_count(&ours), 2, "taken back once");
        drop(local);
        drop(chunk);
        assert_eq!(
            Arc::strong_count(&ours),
            2,
            "and not again by the chunk's drop"
        );
        drop(flag);
    }
}
