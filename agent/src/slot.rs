//! The contract between a wrapped task (`capture`'s `Traced`) and the
//! recorder (`hooks`), so that neither reaches into the other: the
//! [`Mail`] a task's poll leaves on its thread for the recorder's
//! after-poll hook, the [`Link`] the recorder keeps (the task's waker,
//! then its slot), and the task's [`Slot`] once the agent has asked it
//! for a capture (in console mode, from its first `Pending`).
//!
//! A slot is 24 bytes, counted in its own word ([`SlotRef`]: a 32-byte
//! allocation). Under the hooks source it is made by the agent's first
//! ask and passed to the task through [`handoff`]: a task never asked
//! (a churn's) costs a waker's clone (and a boxed waker, once it outlives
//! its thread's stash), and nothing else.
//!
//! One atomic word holds the flags, the last capture's stack and its
//! time (whole seconds since the Unix epoch): the task's common poll only
//! loads it. The task's waker sits beside it, moved in or out under a
//! lock bit of that word (taken for a store or a take, never on a poll
//! that nobody asked about; crossbeam's `AtomicCell` did this behind a
//! global striped lock, a cache line every worker shared).

use std::cell::{Cell, RefCell, UnsafeCell};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Waker;

/// The agent asked for a capture.
const WANT: u64 = 1;
/// The agent holds the task's waker.
const HAS_WAKER: u64 = 1 << 1;
/// The task has really run since its last capture: it no longer holds.
const RAN: u64 = 1 << 2;
/// The console mode's registry keeps it (see `capture::registry`).
const LISTED: u64 = 1 << 3;
/// Someone moves the waker in or out (see [`Slot::with_waker`]).
const LOCKED: u64 = 1 << 4;
const FLAG_BITS: u32 = 5;
/// 1 + the interned stack of the last capture (0: none), 14 bits (there
/// are at most `stacks::MAX_STACKS`).
const STACK_BITS: u32 = 14;
const STACK_SHIFT: u32 = FLAG_BITS;
const STACK_MASK: u64 = ((1 << STACK_BITS) - 1) << STACK_SHIFT;
const _: () = assert!(crate::stacks::MAX_STACKS < (1 << STACK_BITS) - 1);
/// The references to the slot ([`SlotRef`]s), 13 bits.
const REFS_SHIFT: u32 = FLAG_BITS + STACK_BITS;
const REFS_BITS: u32 = 13;
const ONE_REF: u64 = 1 << REFS_SHIFT;
/// A clone past this many references aborts, as `Arc`'s does past
/// `isize::MAX` (there are a handful: the task's, the record's, a mail's,
/// a capture round's), long before the count could carry into `at`.
const MAX_REFS: u64 = 1 << (REFS_BITS - 1);
/// When it was taken, in seconds since the Unix epoch (32 bits: 2106).
const AT_SHIFT: u32 = REFS_SHIFT + REFS_BITS;
const _: () = assert!(AT_SHIFT == 32);

/// One wrapped task's link with the agent.
#[derive(Default)]
pub struct Slot {
    state: AtomicU64,
    /// The task's waker, from its first real poll that returned `Pending`
    /// since its last capture: held only until the task is captured (a
    /// capture that holds needs no refresh), so that a task whose wait is
    /// known holds no waker of the agent's (console-subscriber counts
    /// wakers, and reads two as a timeout around a wait). Moved in and
    /// out under the `LOCKED` bit of `state` only.
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: `waker` is only reached in `with_waker`, under the `LOCKED` bit
// (one thread at a time, with acquire and release ordering); a `Waker` is
// `Send + Sync`.
unsafe impl Sync for Slot {}

/// A counted reference to a [`Slot`]: `Arc<Slot>`, with the count in
/// the slot's own word. The slot is then a 24-byte allocation (a 32-byte
/// chunk of glibc's malloc) where `Arc`'s two counts beside it made 40
/// (a 48-byte chunk): 16 bytes less for every wrapped task.
pub struct SlotRef(NonNull<Slot>);

// SAFETY: a `SlotRef` shares a `Slot` (which is `Sync`) between threads,
// as `Arc<Slot>` does; the count is atomic.
unsafe impl Send for SlotRef {}
// SAFETY: as above.
unsafe impl Sync for SlotRef {}

impl SlotRef {
    /// A new slot, with this one reference.
    pub fn new() -> SlotRef {
        SlotRef(SlotRef::alloc(ONE_REF, None))
    }

    /// A slot on the heap, with its references counted in `state`: freed
    /// by the `Drop` of the last (`Box::from_raw`).
    fn alloc(state: u64, waker: Option<Waker>) -> NonNull<Slot> {
        NonNull::from(Box::leak(Box::new(Slot {
            state: AtomicU64::new(state),
            waker: UnsafeCell::new(waker),
        })))
    }

    /// A new slot holding the task's `waker`, and two references to it
    /// (the task's, and the one it hands the recorder): made whole before
    /// anyone else can see it, with no atomic operation. It counts as run
    /// (no capture to hold), so the task's later polls only load its word.
    pub(crate) fn pair(waker: &Waker) -> (SlotRef, SlotRef) {
        let p = SlotRef::alloc((2 * ONE_REF) | HAS_WAKER | RAN, Some(waker.clone()));
        (SlotRef(p), SlotRef(p))
    }

    /// A new slot the agent made to ask a task for its first capture (see
    /// [`Link`]): asked, no waker, no capture; two references (the
    /// recorder's, and the one [`handoff`] passes to the task).
    pub(crate) fn asked() -> (SlotRef, SlotRef) {
        let p = SlotRef::alloc((2 * ONE_REF) | WANT | RAN, None);
        (SlotRef(p), SlotRef(p))
    }

    /// The reference as a number (for an event in a log), to be owned
    /// again by [`SlotRef::from_raw`], once.
    pub(crate) fn into_raw(self) -> usize {
        let p = self.0.as_ptr() as usize;
        std::mem::forget(self);
        p
    }

    /// # Safety
    /// `raw` came from [`SlotRef::into_raw`], and is given back once.
    pub(crate) unsafe fn from_raw(raw: usize) -> SlotRef {
        // SAFETY: `into_raw` gave a pointer from `NonNull`, per the contract.
        SlotRef(unsafe { NonNull::new_unchecked(raw as *mut Slot) })
    }

    /// The references to its slot now.
    pub(crate) fn count(&self) -> u64 {
        SlotRef::refs(self.state.load(Ordering::Relaxed))
    }

    fn refs(state: u64) -> u64 {
        (state >> REFS_SHIFT) & ((1 << REFS_BITS) - 1)
    }
}

impl Default for SlotRef {
    fn default() -> Self {
        SlotRef::new()
    }
}

impl std::ops::Deref for SlotRef {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        // SAFETY: the slot lives while a reference to it does (this one).
        unsafe { self.0.as_ref() }
    }
}

impl Clone for SlotRef {
    fn clone(&self) -> SlotRef {
        // Relaxed, as `Arc::clone`: a new reference needs an existing one.
        let old = self.state.fetch_add(ONE_REF, Ordering::Relaxed);
        if SlotRef::refs(old) >= MAX_REFS {
            std::process::abort();
        }
        SlotRef(self.0)
    }
}

impl Drop for SlotRef {
    fn drop(&mut self) {
        // Release, then an acquire fence before freeing: `Arc`'s protocol.
        let old = self.state.fetch_sub(ONE_REF, Ordering::Release);
        if SlotRef::refs(old) != 1 {
            return;
        }
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: this was the last reference; the slot came from
        // `Box::leak` in `SlotRef::alloc`.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

impl Slot {
    /// Asks the task for a capture: sets its flag and wakes it (the agent
    /// gives the waker back to the task: its next poll is the capture).
    /// Never blocks on the runtime (a wake only queues the task).
    pub fn request(&self) {
        self.state.fetch_or(WANT, Ordering::AcqRel);
        if let Some(w) = self.with_waker(0, HAS_WAKER, Option::take) {
            w.wake();
        }
    }

    /// Runs `f` on the waker under the slot's own lock (a bit of `state`:
    /// the lock the slot's line already holds, where a global striped
    /// lock was a cache miss shared by every task), setting the flags
    /// `set` as it takes the lock and clearing `clear` as it lets go (so
    /// `HAS_WAKER` follows the waker at no cost of its own). While the
    /// lock is held the flag may be ahead of the waker (set before it is
    /// stored) or behind it (still set after a take): `request` takes the
    /// lock before it looks, and a task whose `has_waker` reads the stale
    /// flag and keeps its waker is being woken by the taker. `f` only moves
    /// a waker in or out: a clone, a drop or a wake (code of the waker's
    /// maker) happens outside, so the lock is held for a few stores, and
    /// a thread that finds it taken spins that long, then yields.
    fn with_waker<R>(&self, set: u64, clear: u64, f: impl FnOnce(&mut Option<Waker>) -> R) -> R {
        let mut spins = 0u32;
        loop {
            let s = self.state.load(Ordering::Relaxed);
            if s & LOCKED == 0
                && self
                    .state
                    .compare_exchange_weak(
                        s,
                        s | LOCKED | set,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                break;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // SAFETY: the `LOCKED` bit is ours until the release below.
        let r = f(unsafe { &mut *self.waker.get() });
        self.state.fetch_and(!(LOCKED | clear), Ordering::Release);
        r
    }

    /// Whether a capture was asked for and not yet taken.
    pub fn wanted(&self) -> bool {
        self.state.load(Ordering::Acquire) & WANT != 0
    }

    /// Takes the request, if any: a load, and a write only when asked.
    pub(crate) fn take_request(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WANT != 0
            && self.state.fetch_and(!WANT, Ordering::AcqRel) & WANT != 0
    }

    /// Whether a capture is worth asking for: the task has no capture that
    /// holds (it ran since, or was never captured), and the agent has its
    /// waker to ask with.
    pub fn askable(&self) -> bool {
        let s = self.state.load(Ordering::Acquire);
        s & HAS_WAKER != 0 && s & WANT == 0 && holding(s).is_none()
    }

    /// The last capture, while it holds (the task has not really run
    /// since): (stack id, ns since the Unix epoch).
    pub fn holding(&self) -> Option<(u32, i64)> {
        holding(self.state.load(Ordering::Acquire))
    }

    /// Marks the slot as kept by the console mode's registry.
    pub(crate) fn list(&self) {
        self.state.fetch_or(LISTED, Ordering::AcqRel);
    }

    pub(crate) fn listed(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LISTED != 0
    }

    pub(crate) fn has_waker(&self) -> bool {
        self.state.load(Ordering::Relaxed) & HAS_WAKER != 0
    }

    /// The task really runs: a capture taken before no longer holds (one
    /// write per capture, none on later polls).
    pub(crate) fn ran(&self) {
        if self.state.load(Ordering::Relaxed) & RAN == 0 {
            self.state.fetch_or(RAN, Ordering::AcqRel);
        }
    }

    /// Keeps a capture of `stack` taken at `at_unix_ns`, just taken (in
    /// the task's poll: it has not run since).
    pub(crate) fn store(&self, stack: u32, at_unix_ns: i64) {
        self.update(|s| {
            (s & !RAN & !STACK_MASK & !(u64::MAX << AT_SHIFT)) | packed(stack, at_unix_ns)
        });
    }

    /// A capture taken in this poll, whose stack the recorder will keep
    /// (see [`Slot::keep`]): the last one no longer holds, and the task
    /// has not run since this one.
    pub(crate) fn captured_now(&self) {
        self.state.fetch_and(!(RAN | STACK_MASK), Ordering::AcqRel);
    }

    /// The recorder keeps the stack of the capture taken at `at_unix_ns`
    /// (later: whether the task ran since is the task's to say).
    pub(crate) fn keep(&self, stack: u32, at_unix_ns: i64) {
        self.update(|s| (s & !STACK_MASK & !(u64::MAX << AT_SHIFT)) | packed(stack, at_unix_ns));
    }

    pub(crate) fn set_waker(&self, w: &Waker) {
        let w = Some(w.clone());
        let old = self.with_waker(HAS_WAKER, 0, |slot| std::mem::replace(slot, w));
        drop(old);
    }

    pub(crate) fn forget_waker(&self) {
        if self.state.load(Ordering::Acquire) & HAS_WAKER == 0 {
            return;
        }
        let old = self.with_waker(0, HAS_WAKER, Option::take);
        drop(old);
    }

    fn update(&self, f: impl Fn(u64) -> u64) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| Some(f(s)));
    }
}

/// What the recorder keeps of a wrapped task, in 8 bytes (a record's
/// field, which every task has, wrapped or not): from its first `Pending`
/// that the task is wrapped ([`Link::kept`]: its thread keeps its waker,
/// see `hooks::log::Stash`); the task's own waker, boxed, once that comes
/// to the record; from the agent's first ask, the [`Slot`] the two share.
/// A tagged pointer: the box and the slot are allocations aligned to at
/// least 4 bytes (checked below), the low bit says which this is, and
/// "kept" is the constant 2, which neither can be. So a
/// wrapped task that is never asked costs a waker's clone, and a box once
/// it outlives its thread's stash; the slot, its protocol and its flags
/// are only for the tasks the agent asks.
pub struct Link(NonNull<u8>);

/// The low bit of a [`Link`] that holds a slot.
const SLOT_TAG: usize = 1;
const _: () = assert!(align_of::<Waker>() >= 4 && align_of::<Slot>() >= 4);
/// A [`Link`] to a task whose waker its thread still keeps (see
/// `hooks::log::Stash`): no allocation, never read.
const KEPT: usize = 2;

// SAFETY: a `Link` owns a `Box<Waker>` or a `SlotRef`, both `Send + Sync`.
unsafe impl Send for Link {}
// SAFETY: as above.
unsafe impl Sync for Link {}

impl Link {
    /// The task's own waker.
    pub(crate) fn task(waker: Waker) -> Link {
        Link(NonNull::from(Box::leak(Box::new(waker))).cast())
    }

    /// A wrapped task whose waker its thread still keeps: the agent can
    /// reach it (its waker comes to the record within 100 ms), not yet
    /// ask it.
    pub(crate) fn kept() -> Link {
        // SAFETY: not 0.
        Link(unsafe { NonNull::new_unchecked(KEPT as *mut u8) })
    }

    /// Whether it is [`Link::kept`].
    pub(crate) fn is_kept(&self) -> bool {
        self.0.as_ptr() as usize == KEPT
    }

    fn slot(slot: SlotRef) -> Link {
        let p = slot.into_raw() | SLOT_TAG;
        // SAFETY: `into_raw` gave a non-null pointer; tagged, still not 0.
        Link(unsafe { NonNull::new_unchecked(p as *mut u8) })
    }

    fn is_slot(&self) -> bool {
        self.0.as_ptr() as usize & SLOT_TAG != 0
    }

    /// The slot, once the agent asked the task (before, the task's waker,
    /// in the record or still on its thread).
    pub fn as_slot(&self) -> Option<&Slot> {
        self.is_slot().then(|| {
            // SAFETY: a tagged link is a `SlotRef`'s pointer (untagged),
            // alive while the link is (it owns that reference).
            unsafe { &*((self.0.as_ptr() as usize & !SLOT_TAG) as *const Slot) }
        })
    }

    /// Whether the agent could ask the task for a capture now (the
    /// caller knows it is not in a poll): the record holds the task's
    /// waker (not its thread), or its slot is [`Slot::askable`].
    pub fn askable(&self) -> bool {
        !self.is_kept() && self.as_slot().is_none_or(Slot::askable)
    }

    /// Asks the task for a capture, in two steps: this one under the
    /// recorder's lock (a link that holds the task's waker becomes a new
    /// slot, asked), and [`Asked::send`] once the lock is let go (a wake
    /// is the waker's maker's code). `None` for a waker its thread keeps.
    pub(crate) fn ask(&mut self, task: tokio::task::Id) -> Option<Asked> {
        if self.is_kept() {
            return None;
        }
        if let Some(slot) = self.as_slot() {
            // SAFETY: the link's own reference, cloned (not taken): it
            // stays the link's.
            let s = std::mem::ManuallyDrop::new(unsafe {
                SlotRef::from_raw(slot as *const Slot as usize)
            });
            return Some(Asked {
                slot: (*s).clone(),
                first: None,
            });
        }
        let (mine, theirs) = SlotRef::asked();
        let old = std::mem::replace(self, Link::slot(mine.clone()));
        let old = std::mem::ManuallyDrop::new(old);
        // SAFETY: an untagged link other than `KEPT` is a `Box<Waker>`
        // from `Link::task`; taken once, here, from a link not dropped.
        let waker = *unsafe { Box::from_raw(old.0.as_ptr().cast::<Waker>()) };
        Some(Asked {
            slot: mine,
            first: Some((task, theirs, waker)),
        })
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if self.is_kept() {
            return;
        }
        if self.is_slot() {
            // SAFETY: the link's `SlotRef`, given back once.
            drop(unsafe { SlotRef::from_raw(self.0.as_ptr() as usize & !SLOT_TAG) });
        } else {
            // SAFETY: the `Box<Waker>` of `Link::task`, freed once.
            drop(unsafe { Box::from_raw(self.0.as_ptr().cast::<Waker>()) });
        }
    }
}

/// A capture asked of a task (see [`Link::ask`]), to send.
pub(crate) struct Asked {
    slot: SlotRef,
    /// The task's first: its id, the slot's reference for it, its waker.
    first: Option<(tokio::task::Id, SlotRef, Waker)>,
}

impl Asked {
    /// Asks: the slot's `request` (its flag, and the waker it holds), or
    /// for a first capture the slot left in [`handoff`] for the task, then
    /// its waker woken (so its next poll finds the slot). Returns the
    /// slot, to wait on.
    pub(crate) fn send(self) -> SlotRef {
        match self.first {
            None => self.slot.request(),
            Some((task, theirs, waker)) => {
                handoff::give(task, theirs);
                waker.wake();
            }
        }
        self.slot
    }
}

/// The slots the agent made to ask tasks for their first capture (see
/// [`Link::ask`]), by task id, until each task's next poll takes its own.
/// A wrapped task that has handed its waker over, and has no slot, looks
/// here on each poll: one load of a count that is 0 outside a capture
/// round, then a bit of a filter by task id, and only then the lock,
/// which a worker only tries (see [`handoff::take`]).
pub(crate) mod handoff {
    use super::SlotRef;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{LazyLock, Mutex, MutexGuard, TryLockError};
    use std::task::Waker;
    use tokio::task::Id;

    static GIVEN: AtomicUsize = AtomicUsize::new(0);
    /// Bit `n % 4096` (`n`: the id's number) is set while a slot for a task
    /// with that number's low bits waits here: rebuilt from the slots
    /// left whenever one goes, so that it never keeps a bit for none.
    static FILTER: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
    pub(super) static SLOTS: LazyLock<Mutex<HashMap<Id, SlotRef>>> = LazyLock::new(Mutex::default);

    fn bit(id: &Id) -> (usize, u64) {
        let n = crate::hooks::id_number(id);
        (((n >> 6) & 63) as usize, 1 << (n & 63))
    }

    fn slots() -> MutexGuard<'static, HashMap<Id, SlotRef>> {
        SLOTS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leaves `slot` for task `id`'s next poll.
    pub(super) fn give(id: Id, slot: SlotRef) {
        let mut m = slots();
        m.insert(id, slot);
        let (word, b) = bit(&id);
        FILTER[word].fetch_or(b, Ordering::Relaxed);
        GIVEN.store(m.len(), Ordering::Release);
    }

    /// The slot left for the task being polled on this thread, if any.
    /// Never waits: when the agent holds the lock (for an insert, or
    /// preempted while it does), the task wakes itself and looks again on
    /// its next poll (a spurious wake-up, which futures accept), so a
    /// worker goes on to its other tasks.
    #[inline]
    pub(crate) fn take(waker: &Waker) -> Option<SlotRef> {
        if GIVEN.load(Ordering::Acquire) == 0 {
            return None;
        }
        take_slow(waker)
    }

    #[cold]
    fn take_slow(waker: &Waker) -> Option<SlotRef> {
        let id = tokio::task::try_id()?;
        let (word, b) = bit(&id);
        if FILTER[word].load(Ordering::Acquire) & b == 0 {
            return None;
        }
        let mut m = match SLOTS.try_lock() {
            Ok(m) => m,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                waker.wake_by_ref();
                return None;
            }
        };
        let slot = m.remove(&id)?;
        settle(&m);
        Some(slot)
    }

    /// Lets go of the slots whose task ended before taking them (only
    /// this map holds them now).
    pub(crate) fn sweep() {
        if GIVEN.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut m = slots();
        let before = m.len();
        m.retain(|_, s| s.count() > 1);
        if m.len() != before {
            settle(&m);
        }
    }

    /// After a slot went: the count, and the filter rebuilt from the
    /// slots left (each word stored whole, with every bit still needed:
    /// a task that reads it meanwhile finds its own bit).
    fn settle(m: &HashMap<Id, SlotRef>) {
        GIVEN.store(m.len(), Ordering::Release);
        let mut words = [0u64; 64];
        for id in m.keys() {
            let (word, b) = bit(id);
            words[word] |= b;
        }
        for (w, new) in FILTER.iter().zip(words) {
            if w.load(Ordering::Relaxed) != new {
                w.store(new, Ordering::Relaxed);
            }
        }
    }

    /// Whether a slot waits here for task `id` (for tests).
    #[cfg(test)]
    pub(crate) fn holds(id: Id) -> bool {
        slots().contains_key(&id)
    }

    /// Slots waiting here (for tests).
    #[cfg(test)]
    pub(crate) fn len() -> usize {
        slots().len()
    }

    /// Whether the filter has task `id`'s bit (for tests).
    #[cfg(test)]
    pub(crate) fn marked(id: Id) -> bool {
        let (word, b) = bit(&id);
        FILTER[word].load(Ordering::Relaxed) & b != 0
    }
}

fn packed(stack: u32, at_unix_ns: i64) -> u64 {
    let stack = u64::from(stack.saturating_add(1)).min((1 << STACK_BITS) - 1);
    let secs = (at_unix_ns.max(0) / 1_000_000_000).min(i64::from(u32::MAX)) as u64;
    (stack << STACK_SHIFT) | (secs << AT_SHIFT)
}

/// The latest a capture kept as taken at `at` (the start of its whole
/// second) may have been taken, and no later than `now`: what a reply
/// says. A reader takes a capture for a task's wait only when it was
/// taken after the task's last poll ended; the start of the second would
/// read a capture made later in the very second of that poll as older
/// than it, and the task as not captured for as long as it stays idle.
/// A capture listed holds (the task has not run since), so the latest
/// time is never one after a poll that would undo it.
pub(crate) fn latest_at(at: i64, now: i64) -> i64 {
    (at + 999_999_999).min(now).max(at)
}

fn holding(s: u64) -> Option<(u32, i64)> {
    let stack = (s & STACK_MASK) >> STACK_SHIFT;
    (stack != 0 && s & RAN == 0)
        .then(|| ((stack - 1) as u32, ((s >> AT_SHIFT) as i64) * 1_000_000_000))
}

/// Wakers for tests, here and in `hooks`: each made of an `Arc`, whose
/// count says who holds a clone.
#[cfg(test)]
pub(crate) mod test_wakers {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Does nothing when woken.
    pub(crate) struct Flag;
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {}
    }

    /// Counts its wakes.
    pub(crate) struct Counting(pub(crate) AtomicUsize);
    impl std::task::Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn counting() -> Arc<Counting> {
        Arc::new(Counting(AtomicUsize::new(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_reply_says_the_latest_a_capture_may_have_been_taken() {
        let second = 1_700_000_000_000_000_000;
        // Kept as its second's start; said as that second's end, or now.
        assert_eq!(
            latest_at(second, second + 5_000_000_000),
            second + 999_999_999
        );
        assert_eq!(
            latest_at(second, second + 400_000_000),
            second + 400_000_000
        );
        // A clock that went back says the second's start, not before.
        assert_eq!(latest_at(second, second - 1), second);
    }

    #[test]
    fn a_capture_holds_until_the_task_runs() {
        let s = Slot::default();
        assert_eq!(s.holding(), None);
        s.store(41, 1_700_000_000_500_000_000);
        assert_eq!(s.holding(), Some((41, 1_700_000_000_000_000_000)));
        s.ran();
        assert_eq!(s.holding(), None);
        // The hooks' way: cleared in the capture poll, kept by the fold.
        s.captured_now();
        assert_eq!(s.holding(), None);
        s.keep(7, 1_800_000_000_000_000_000);
        assert_eq!(s.holding(), Some((7, 1_800_000_000_000_000_000)));
        // A task that ran between its capture and the fold: never held.
        s.captured_now();
        s.ran();
        s.keep(8, 1_800_000_001_000_000_000);
        assert_eq!(s.holding(), None);
    }

    /// The task stores and forgets its waker while the agent asks, from
    /// another thread: every clone is dropped or woken once (a waker lost
    /// or taken twice would leave the count off, or free it twice).
    #[test]
    fn the_waker_moves_under_the_slots_lock_only() {
        let counting = counting();
        let waker = Waker::from(counting.clone());
        let slot = Slot::default();
        let start = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                for _ in 0..100_000 {
                    slot.set_waker(&waker);
                    slot.forget_waker();
                    slot.set_waker(&waker);
                }
            });
            s.spawn(|| {
                start.wait();
                for _ in 0..100_000 {
                    slot.request();
                    slot.take_request();
                }
            });
        });
        slot.forget_waker();
        drop(waker);
        assert_eq!(Arc::strong_count(&counting), 1, "no waker left or lost");
        assert_eq!(slot.state.load(Ordering::Relaxed) & (LOCKED | HAS_WAKER), 0);
    }

    use test_wakers::{Flag, counting};

    /// A slot made with its task's waker: two references, the waker held
    /// and askable, no capture; the waker goes with the last reference.
    #[test]
    fn a_slot_made_whole_holds_its_waker_and_two_references() {
        let flag = Arc::new(Flag);
        let (task, recorder) = SlotRef::pair(&Waker::from(flag.clone()));
        assert_eq!(task.count(), 2);
        assert!(task.has_waker() && recorder.askable());
        assert_eq!(task.holding(), None);
        // Counted as run: a later poll writes nothing.
        let before = task.state.load(Ordering::Relaxed);
        task.ran();
        assert_eq!(task.state.load(Ordering::Relaxed), before);
        assert_eq!(Arc::strong_count(&flag), 2, "the slot holds a clone");
        drop(task);
        assert_eq!(Arc::strong_count(&flag), 2);
        drop(recorder);
        assert_eq!(Arc::strong_count(&flag), 1, "let go with the slot");
    }

    /// The count shares the slot's word: references come and go without
    /// touching a capture kept there, captures without touching the
    /// count, and the last reference frees the slot (its waker with it).
    #[test]
    fn a_slot_ref_counts_in_the_slots_word() {
        let flag = Arc::new(Flag);
        let a = SlotRef::new();
        a.set_waker(&Waker::from(flag.clone()));
        a.store(41, 1_700_000_000_500_000_000);
        let copies: Vec<SlotRef> = (0..100).map(|_| a.clone()).collect();
        assert_eq!(SlotRef::refs(a.state.load(Ordering::Relaxed)), 101);
        assert_eq!(a.holding(), Some((41, 1_700_000_000_000_000_000)));
        std::thread::scope(|s| {
            for c in copies {
                s.spawn(move || {
                    c.keep(7, 1_800_000_000_000_000_000);
                    drop(c);
                });
            }
        });
        assert_eq!(SlotRef::refs(a.state.load(Ordering::Relaxed)), 1);
        assert_eq!(a.holding(), Some((7, 1_800_000_000_000_000_000)));
        let raw = a.clone().into_raw();
        // SAFETY: from `into_raw` just above, given back once.
        let b = unsafe { SlotRef::from_raw(raw) };
        assert_eq!(SlotRef::refs(b.state.load(Ordering::Relaxed)), 2);
        assert_eq!(Arc::strong_count(&flag), 2, "the slot holds the waker");
        drop(a);
        drop(b);
        assert_eq!(Arc::strong_count(&flag), 1, "the last reference freed it");
    }

    /// A link holds the task's waker until its first ask, which makes it
    /// a slot, asked, whose other reference waits in `handoff` for the
    /// task, and wakes the task once; later asks are the slot's own. A
    /// slot nobody took (its task ended) is swept; the link's slot goes
    /// with the link.
    #[test]
    fn a_link_becomes_a_slot_at_its_first_ask() {
        // An id no other test's task has.
        let task = crate::hooks::test_ids(1)[0];
        let counting = counting();
        let mut link = Link::task(Waker::from(counting.clone()));
        assert!(link.as_slot().is_none() && link.askable());
        let first = link.ask(task).expect("a waker to ask with");
        assert!(!handoff::holds(task), "nothing sent under the lock");
        let slot = first.send();
        assert!(handoff::holds(task), "left for the task");
        assert!(handoff::marked(task), "and marked in the filter");
        assert_eq!(counting.0.load(Ordering::Relaxed), 1, "woken once");
        assert_eq!(
            Arc::strong_count(&counting),
            1,
            "the waker went with the wake"
        );
        let mine = link.as_slot().expect("a slot now");
        assert!(std::ptr::eq(mine, &*slot));
        assert!(slot.wanted() && !slot.askable() && slot.holding().is_none());
        // The link's, the round's, and the one waiting for the task.
        assert_eq!(slot.count(), 3);
        // Asked again: the slot's request, nothing left in `handoff`.
        slot.take_request();
        slot.set_waker(&Waker::from(counting.clone()));
        assert!(link.askable());
        let again = link.ask(task).expect("a slot").send();
        assert!(std::ptr::eq(&*again, &*slot));
        assert_eq!(counting.0.load(Ordering::Relaxed), 2);
        drop(again);
        // The task never came for it: swept once only the map holds it.
        handoff::sweep();
        assert!(handoff::holds(task), "the link and the round still hold it");
        drop(link);
        drop(slot);
        handoff::sweep();
        assert!(!handoff::holds(task), "swept");
        // Unmarked, unless another test's slot shares the bit meanwhile.
        assert!(!handoff::marked(task) || handoff::len() > 0);
        assert_eq!(Arc::strong_count(&counting), 1, "no waker left behind");
    }

    /// A task that finds the handoff's lock held (the agent inserting, or
    /// preempted while it does) does not wait for it: it wakes itself,
    /// and takes its slot on a later poll. Another thread holds the lock
    /// until the task has looked, or for 5 s: a task that waited for it
    /// (a `lock` where the `try_lock` is) fails here, after those 5 s.
    #[test]
    fn a_task_that_finds_the_handoff_locked_wakes_itself_instead_of_waiting() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let task = tokio::spawn(async {
                let id = tokio::task::id();
                let (mine, theirs) = SlotRef::asked();
                handoff::give(id, theirs);
                let counting = counting();
                let waker = Waker::from(counting.clone());
                let (held_tx, held) = std::sync::mpsc::channel::<()>();
                let (looked, looked_rx) = std::sync::mpsc::channel::<()>();
                let holder = std::thread::spawn(move || {
                    let _held = handoff::SLOTS.lock().expect("lock");
                    held_tx.send(()).expect("held");
                    let _ = looked_rx.recv_timeout(std::time::Duration::from_secs(5));
                });
                held.recv().expect("the lock is held");
                let start = std::time::Instant::now();
                assert!(handoff::take(&waker).is_none(), "not while it is held");
                let took = start.elapsed();
                looked.send(()).expect("holder");
                holder.join().expect("holder");
                assert!(took < std::time::Duration::from_secs(4), "waited {took:?}");
                assert_eq!(counting.0.load(Ordering::Relaxed), 1, "woke itself");
                let slot = handoff::take(&waker).expect("its slot, on the next try");
                assert!(std::ptr::eq(&*slot, &*mine));
                assert!(!handoff::holds(id));
            });
            task.await.expect("task");
        });
    }

    #[test]
    fn a_request_wakes_once_and_is_taken_once() {
        let s = Slot::default();
        s.set_waker(Waker::noop());
        assert!(s.askable());
        s.request();
        assert!(s.wanted() && !s.has_waker() && !s.askable());
        assert!(s.take_request());
        assert!(!s.take_request());
        assert_eq!(std::mem::size_of::<Slot>(), 24);
    }
}

// The mailbox: what a wrapped task's poll leaves for the recorder's
// after-poll hook, on the same thread, right after the poll.

/// What a wrapped task's poll leaves for the recorder's after-poll hook.
#[derive(Default)]
pub struct Mail {
    /// The task's waker, on its first `Pending` (see [`Link`]).
    pub waker: Option<Waker>,
    /// A capture: instruction pointers, leaf after leaf, each leaf ended
    /// by a 0.
    pub captured: Option<Vec<usize>>,
    /// The poll was the agent's (a capture).
    pub synthetic: bool,
    /// The task that posted it (a future polled inside another task's
    /// poll, in a `LocalSet`, is not that task: its mail is dropped).
    pub task: Option<tokio::task::Id>,
}

thread_local! {
    static HAS_MAIL: Cell<bool> = const { Cell::new(false) };
    static MAIL: RefCell<Mail> = const {
        RefCell::new(Mail {
            waker: None,
            captured: None,
            synthetic: false,
            task: None,
        })
    };
}

pub(crate) fn post(f: impl FnOnce(&mut Mail)) {
    let task = tokio::task::try_id();
    let pending = HAS_MAIL.get();
    MAIL.with(|m| {
        let mut m = m.borrow_mut();
        if pending && m.task != task {
            // Another task's mail in the same poll: only one task's counts.
            *m = Mail::default();
        }
        m.task = task;
        f(&mut m)
    });
    HAS_MAIL.set(true);
}

/// Whether the poll that just ended on this thread left mail (one
/// thread-local read).
#[inline]
pub fn has_mail() -> bool {
    HAS_MAIL.get()
}

/// The waker a poll of `task` just handed over, when that is all its
/// mail says (a wrapped task's first `Pending`, the common mail): taken,
/// so the recorder hands it over in the poll's own events.
pub(crate) fn take_adoption(task: tokio::task::Id) -> Option<Waker> {
    MAIL.with(|m| {
        let mut m = m.try_borrow_mut().ok()?;
        // Every field named: a new one must say what taking it leaves.
        let Mail {
            waker,
            captured: None,
            synthetic: false,
            task: mine,
        } = &mut *m
        else {
            return None;
        };
        if *mine != Some(task) {
            return None;
        }
        let waker = waker.take()?;
        // Nothing else in it now (no capture, not the agent's poll).
        *mine = None;
        HAS_MAIL.set(false);
        Some(waker)
    })
}

/// The mail of the poll that just ended on this thread, if any (one
/// thread-local read when there is none).
pub fn take_mail() -> Option<Mail> {
    if !HAS_MAIL.get() {
        return None;
    }
    HAS_MAIL.set(false);
    Some(MAIL.with(|m| std::mem::take(&mut *m.borrow_mut())))
}

/// Whether any agent exists in this process: without one, `Traced`
/// only passes polls through (no slot, no waker kept).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called when an agent is made: from then on wrapped tasks can be
/// captured.
pub(crate) fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether an agent was made (see [`enable`]).
#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
