//! Waits tokio cannot trace, seen where they register their waker.
//!
//! tokio's tracing mode records a stack at each "trace leaf" a future
//! reaches, and most of tokio's waits are one (a socket's read or write
//! readiness, a `Sleep`, channels, locks, `Notify`, `JoinHandle`…). A few
//! are not: `TcpListener::accept`, `UdpSocket::recv` and the other waits
//! on readiness through `async_io` (accept loops, UDP servers,
//! `readable()`), and every future outside tokio (futures' and
//! async-std's channels, event-listener, hyper's internal signals). A
//! traced poll of a task waiting on one of those reaches no leaf, and its
//! capture would say nothing.
//!
//! Every wait registers the waker it is given, and a future that keeps a
//! waker clones it. So the traced poll is given a waker of ours: when a
//! future clones it, the clone walks the stack from there up to the
//! capture's root, the same walk a trace leaf makes, and the capture
//! keeps those stacks when it reached no tokio leaf (a combinator's own
//! registration, `FuturesUnordered`'s, is not mistaken for the wait when
//! the real waits are leaves). The clone handed out is a no-op waker
//! (`Waker::noop`), so a waker stored by a future never refers to the
//! capture; the real poll that follows the traced one registers the
//! task's own waker in its place, as it does for the leaves.

#![cfg(taskdumps)]

use std::cell::RefCell;
use std::task::{RawWaker, RawWakerVTable, Waker};

/// The clones' stacks of the capture running on this thread, when one
/// runs: instruction pointers, stack after stack, each ended by a 0.
struct Registrations {
    ips: Vec<usize>,
    stacks: usize,
    /// The capture's root frame (see [`root`]).
    root: usize,
}

thread_local! {
    static CAPTURING: RefCell<Option<Registrations>> = const { RefCell::new(None) };
}

/// Runs `poll` (a traced poll) as the capture's root frame, with a waker
/// whose clones record where they were made. Returns what `poll` returns
/// and the clones' stacks (leaf after leaf, each ended by a 0).
#[inline(never)]
pub(crate) fn root<R>(poll: &mut dyn FnMut(&Waker) -> R) -> (R, Vec<usize>) {
    let root = root::<R> as *const () as usize;
    CAPTURING.with(|c| {
        *c.borrow_mut() = Some(Registrations {
            ips: Vec::new(),
            stacks: 0,
            root,
        })
    });
    // SAFETY: the vtable's functions never read the data pointer (null),
    // and each is safe to call from any thread at any time: `clone`
    // records a stack only on this thread while this capture runs (it is
    // told by the thread-local, not by the pointer) and returns a no-op
    // waker, the others do nothing.
    let waker = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };
    let out = poll(&waker);
    drop(waker);
    let ips = CAPTURING
        .with(|c| c.borrow_mut().take())
        .map(|r| r.ips)
        .unwrap_or_default();
    (out, ips)
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);

unsafe fn noop(_: *const ()) {}

#[inline(never)]
unsafe fn clone(_: *const ()) -> RawWaker {
    record();
    // The no-op waker's own raw parts: a stored clone is inert.
    let w = Waker::noop();
    RawWaker::new(w.data(), w.vtable())
}

/// Walks the stack from the clone up to the capture's root, if a capture
/// runs on this thread (at most `MAX_LEAVES` stacks a capture).
fn record() {
    // A clone outside a capture (the no-op clones are the no-op vtable's,
    // so only ours come here) or a re-entrant one records nothing.
    let Ok(Some(mut r)) =
        CAPTURING.try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()))
    else {
        return;
    };
    if r.stacks < crate::limits::MAX_LEAVES {
        r.stacks += 1;
        let leaf = clone as *const () as usize;
        let mut above_leaf = false;
        let mut frames = 0;
        let mut step = |frame: &backtrace::Frame| {
            let at = frame.symbol_address() as usize;
            let below_root = at != r.root;
            if above_leaf && below_root && frames < crate::limits::MAX_FRAMES {
                r.ips.push(frame.ip() as usize);
                frames += 1;
            }
            if at == leaf {
                above_leaf = true;
            }
            below_root
        };
        // SAFETY: as in `capture::walk`: on Linux (the only platform with
        // `cfg(taskdumps)`) the unwinder is libgcc's, which is thread-safe.
        unsafe { backtrace::trace_unsynchronized(&mut step) };
        r.ips.push(0);
    }
    let _ = CAPTURING.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            *c = Some(r);
        }
    });
}
