//! The poll hooks run on every poll of every task: once a thread's log is
//! made (its first events), they must not allocate, its folds included. A counting
//! allocator (per thread, so the runtime's own threads do not count)
//! checks it over 100 000 polls.
#![cfg(tokio_unstable)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use taskscope_agent::testing::Recorder;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn polls_do_not_allocate() {
    let recorder = Recorder::new();
    // A real task id and spawn location (tokio makes ids only for tasks).
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    let id = rt.block_on(async { tokio::spawn(async {}).id() });
    let at = std::panic::Location::caller();
    recorder.spawned(id, at);
    // The first polls on this thread make its log: a small chunk, then,
    // once that fills, its full-size one.
    for _ in 0..10_000 {
        recorder.before_poll(id, at);
        recorder.after_poll(id);
    }
    let before = allocs();
    for _ in 0..100_000 {
        recorder.before_poll(id, at);
        recorder.after_poll(id);
    }
    let after = allocs();
    assert_eq!(after - before, 0, "allocations in 100 000 polls");
    // And the polls were recorded.
    let page = recorder.tasks((at.file(), at.line(), at.column()), false, None, 0, 10);
    assert_eq!(page.tasks.len(), 1);
    assert_eq!(page.tasks[0].polls, 110_000);
}
