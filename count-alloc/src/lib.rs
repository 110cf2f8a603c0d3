//! The one counting allocator of taskscope's tests and benches: the system
//! allocator, counting bytes live and allocated in all, and per thread the
//! bytes live, their peak and the number of allocations (so that a test
//! measures its own thread, whatever other threads do meanwhile).
//!
//! A test binary or bench that needs it installs it, and only there (a
//! counting allocator slows every allocation of its binary):
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: taskscope_count_alloc::Counting = taskscope_count_alloc::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The counting allocator (see the crate's doc).
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THREAD_LIVE: Cell<isize> = const { Cell::new(0) };
    static THREAD_PEAK: Cell<isize> = const { Cell::new(0) };
    static THREAD_ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count(grow: usize, shrink: usize, allocation: bool) {
    LIVE.fetch_add(grow, Ordering::Relaxed);
    LIVE.fetch_sub(shrink, Ordering::Relaxed);
    ALLOCATED.fetch_add(grow as u64, Ordering::Relaxed);
    // `try_with`: a thread's own allocations while it is torn down.
    let _ = THREAD_LIVE.try_with(|l| {
        let now = l.get() + grow as isize - shrink as isize;
        l.set(now);
        let _ = THREAD_PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    if allocation {
        let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call goes to the system allocator with the same arguments;
// the counting around it touches only atomics and thread-locals (with
// `try_with`, so nothing panics or allocates there).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size(), 0, true);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        count(0, l.size(), false);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new, l.size(), true);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(p, l, new) }
    }
}

/// Bytes live now, in all threads.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Bytes ever allocated (reallocations count their new size), in all
/// threads.
pub fn allocated() -> u64 {
    ALLOCATED.load(Ordering::Relaxed)
}

/// This thread's bytes live (allocated here, less what was freed here: a
/// value freed by another thread counts there).
pub fn thread_live() -> isize {
    THREAD_LIVE.with(Cell::get)
}

/// The peak of [`thread_live`] since [`reset_thread_peak`].
pub fn thread_peak() -> isize {
    THREAD_PEAK.with(Cell::get)
}

/// Starts measuring this thread's peak from its bytes live now.
pub fn reset_thread_peak() {
    THREAD_PEAK.with(|p| p.set(thread_live()));
}

/// This thread's allocations and reallocations so far.
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCS.with(Cell::get)
}
