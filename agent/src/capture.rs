//! Exact waits without stopping the runtime: one task at a time, by the
//! task itself.
//!
//! tokio's `Handle::dump` stops every worker at a barrier, and on tokio
//! 1.54 it can hang the runtime for good (see
//! `docs/upstream/tokio-taskdump-steal-all.md`). The agent never calls it.
//! Instead a task's future is wrapped in [`Traced`] (by [`spawn`],
//! [`traced`] or [`TracedExecutor`]); when the agent wants to know what
//! that task waits on, it sets the task's flag and wakes it. On that poll
//! the wrapper polls its future once in tokio's tracing mode
//! (`tokio::runtime::dump::trace_with` under `Trace::root`): every tokio
//! leaf future it reaches (a socket's readiness, a `Sleep`, a channel, a
//! `Notify`…) records where it is and returns `Pending` without touching
//! its registration, so the waker it registered on the task's last real
//! poll stays in place. The traced poll is given a waker that does
//! nothing, and a real poll follows at once, in the same poll of the task,
//! which registers the task's own waker wherever the traced one reached.
//! The stack is walked on the task's own worker, a few microseconds;
//! nothing else waits for it.
//!
//! What that costs the task, and what it can change:
//! - One poll it did not ask for (a spurious wake-up; futures must accept
//!   them). The hooks recorder does not count it as the task's activity
//!   (its idle time and poll count stay the task's own). An event that
//!   arrives within that same poll is handled by its real half, as ever,
//!   but the poll is still counted as the agent's.
//! - In the traced poll, tokio futures read as not ready. Code that treats
//!   a tokio future as certainly ready (`now_or_never().unwrap()` on one)
//!   would see it otherwise — exactly as under tokio's own task dump. Do
//!   not wrap such a task.
//!
//! Under the hooks source, a wrapped task hands its waker to the recorder
//! on its first `Pending` (through a thread-local mailbox, `slot`'s
//! `Mail`, that the recorder's after-poll hook empties on the same
//! thread, right after the poll), and does nothing more until the agent
//! asks: the agent's first ask makes the task's [`Slot`] (the flag, the
//! waker, the last capture), which the task takes from `slot::handoff` on
//! the poll that the ask's wake causes. Its captures go to the recorder
//! through the mailbox. In console mode the task makes its slot on its
//! first `Pending`, and a registry keeps it by task id. Without an agent
//! in the process the wrapper only passes polls through.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[cfg(taskdumps)]
use crate::limits::{MAX_FRAMES, MAX_LEAVES};
use crate::slot::{Slot, SlotRef, handoff, post};

pin_project_lite::pin_project! {
    /// A future whose waits the agent can capture (see the module doc).
    /// Under the hooks source: a waker's clone on the first poll that
    /// returns `Pending`, and two atomic loads on each later poll, until
    /// the agent asks (then the slot's protocol: a few loads a poll). In
    /// console mode, a slot (an allocation) on the first `Pending`. Without
    /// an agent in the process it only passes polls through.
    pub struct Traced<F> {
        #[pin]
        inner: F,
        slot: Option<SlotRef>,
        // Under the hooks source: the task's waker was handed over on its
        // first `Pending` (its thread keeps it, then its record: see
        // `slot::Link`).
        posted: bool,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            // The recorder keeps the slot until the task ends; its waker
            // must not keep the task's memory alive after that.
            if let Some(s) = this.project().slot {
                s.forget_waker();
                registry::forget(s);
            }
        }
    }
}

/// Wraps `future` so the agent can tell what it waits on: for
/// `tokio::task::Builder::spawn`, `JoinSet::spawn`, an executor…
pub fn traced<F: Future>(future: F) -> Traced<F> {
    Traced {
        inner: future,
        slot: None,
        posted: false,
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if !crate::slot::enabled() {
            // No agent in this process: nothing will ask.
            return this.inner.poll(cx);
        }
        let slot = match this.slot.as_ref() {
            Some(slot) => slot,
            // Under the hooks source the recorder keeps the task's waker,
            // until it first asks for a capture: then the slot it made
            // waits in `handoff`.
            None if *this.posted => match handoff::take(cx.waker()) {
                Some(slot) => this.slot.insert(slot),
                None => return this.inner.poll(cx),
            },
            // The first poll that returns `Pending` hands the waker over
            // (in the poll's mail).
            None if crate::hooks::polling_a_task() => {
                let res = this.inner.poll(cx);
                if res.is_pending() {
                    post(|m| m.waker = Some(cx.waker().clone()));
                    *this.posted = true;
                }
                return res;
            }
            // In console mode the registry keeps the slot, by task id; a
            // future that is no task's (a `block_on` future) has nothing
            // to capture it by.
            None => {
                let res = this.inner.poll(cx);
                if res.is_pending()
                    && let Some(id) = tokio::task::try_id()
                {
                    let (slot, theirs) = SlotRef::pair(cx.waker());
                    registry::insert(crate::hooks::task_id(id), theirs);
                    *this.slot = Some(slot);
                }
                return res;
            }
        };
        // A load first: the common poll (nobody asked) writes nothing.
        if slot.take_request() {
            // The traced poll gets a waker that does nothing: tokio's
            // leaves, in tracing mode, return before registering one (and
            // defer a wake of it, which is then a no-op); anything else the
            // poll reaches registers it, and the real poll right after
            // registers the task's own waker again, on the same thread,
            // before any event could be missed (a future checks readiness
            // when polled). So a capture costs the task one poll, and
            // leaves every registration as it was.
            let mut noop = Context::from_waker(Waker::noop());
            if let Some((traced, ips)) = capture(this.inner.as_mut(), &mut noop) {
                if traced.is_ready() {
                    return traced;
                }
                if crate::hooks::polling_a_task() {
                    slot.captured_now();
                    post(|m| {
                        m.captured = Some(ips);
                        m.synthetic = true;
                    });
                } else if let Some(stack) = crate::stacks::intern(ips) {
                    slot.store(stack, crate::wire::unix_now_ns());
                }
                // Captured: the agent lets go of the task's waker until
                // the task really runs again.
                slot.forget_waker();
                return this.inner.poll(cx);
            }
        }
        slot.ran();
        let res = this.inner.poll(cx);
        if res.is_pending() && !slot.has_waker() {
            slot.set_waker(cx.waker());
        }
        res
    }
}

/// The wrapped tasks of runtimes without the hooks source (console mode),
/// by tokio task id: the captures' budget picks among them.
pub(crate) mod registry {
    use super::{Slot, SlotRef};
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    const SHARDS: usize = 64;

    /// By the slot's address: its task's id, the slot.
    type Shard = Mutex<HashMap<usize, (u64, SlotRef)>>;

    static TASKS: LazyLock<Box<[Shard]>> =
        LazyLock::new(|| (0..SHARDS).map(|_| Mutex::default()).collect());

    fn addr(slot: &Slot) -> usize {
        slot as *const Slot as usize
    }

    fn shard(addr: usize) -> std::sync::MutexGuard<'static, HashMap<usize, (u64, SlotRef)>> {
        TASKS[(addr >> 4) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn insert(id: u64, slot: SlotRef) {
        slot.list();
        let a = addr(&slot);
        shard(a).insert(a, (id, slot));
    }

    /// Asks up to `total` tasks for a capture (those with none that
    /// holds).
    pub fn request(total: usize) -> Vec<SlotRef> {
        let mut slots: Vec<SlotRef> = Vec::new();
        'walk: for s in TASKS.iter() {
            let tasks = s.lock().unwrap_or_else(|e| e.into_inner());
            for (_, slot) in tasks.values() {
                if slots.len() >= total {
                    break 'walk;
                }
                if slot.askable() {
                    slots.push(slot.clone());
                }
            }
        }
        for s in &slots {
            s.request();
        }
        slots
    }

    /// The captures that hold, at most `max` listed (no spawn locations:
    /// only the hooks source knows them).
    pub fn waits(max: usize) -> crate::hooks::Waits {
        let mut w = crate::hooks::Waits::default();
        let now = crate::wire::unix_now_ns();
        for s in TASKS.iter() {
            let tasks = s.lock().unwrap_or_else(|e| e.into_inner());
            for (id, slot) in tasks.values() {
                let Some((stack, at)) = slot.holding() else {
                    continue;
                };
                if w.tasks.len() >= max {
                    w.more += 1;
                } else {
                    w.tasks.push(crate::hooks::TaskWait {
                        id: *id,
                        site: None,
                        stack,
                        at_unix_ns: crate::slot::latest_at(at, now),
                    });
                }
            }
        }
        w
    }

    /// The wrapped tasks, at most `max`. The agent holds such a task's
    /// waker from its first real poll after a capture until the next
    /// capture (always, when no capture of it holds), and
    /// console-subscriber counts it as the task's.
    pub fn wrapped(max: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for s in TASKS.iter() {
            let tasks = s.lock().unwrap_or_else(|e| e.into_inner());
            out.extend(
                tasks
                    .values()
                    .map(|(id, _)| *id)
                    .take(max.saturating_sub(out.len())),
            );
        }
        out
    }

    /// The task ended: its slot goes (a no-op under the hooks source,
    /// where the recorder keeps the slot).
    pub(super) fn forget(slot: &Slot) {
        if !slot.listed() {
            return;
        }
        let a = addr(slot);
        shard(a).remove(&a);
    }
}

/// Polls `inner` once in tracing mode and returns what it returned and
/// the stacks of the leaves it reached: tokio's trace leaves, or where it
/// registered its waker when it reached none (a wait tokio cannot trace:
/// see `crate::untraced`).
#[cfg(taskdumps)]
fn capture<F: Future>(
    mut inner: Pin<&mut F>,
    _: &mut Context<'_>,
) -> Option<(Poll<F::Output>, Vec<usize>)> {
    use tokio::runtime::dump::{Trace, trace_with};
    let mut ips = Vec::new();
    let mut leaves = 0;
    let (res, registered) = crate::untraced::root(&mut |waker| {
        let mut cx = Context::from_waker(waker);
        let root = Trace::root(std::future::poll_fn(|cx| {
            trace_with(
                || inner.as_mut().poll(cx),
                |meta| walk(meta, &mut ips, &mut leaves),
            )
        }));
        let mut root = std::pin::pin!(root);
        root.as_mut().poll(&mut cx)
    });
    if leaves == 0 {
        ips = registered;
    }
    Some((res, ips))
}

#[cfg(not(taskdumps))]
fn capture<F: Future>(
    _: Pin<&mut F>,
    _: &mut Context<'_>,
) -> Option<(Poll<F::Output>, Vec<usize>)> {
    None
}

/// Walks the stack from tokio's `trace_leaf` up to the capture's root and
/// appends the frames' instruction pointers, then a 0.
#[cfg(taskdumps)]
fn walk(meta: &tokio::runtime::dump::TraceMeta, ips: &mut Vec<usize>, leaves: &mut usize) {
    use std::ffi::c_void;
    let Some(root) = meta.root_addr else {
        return;
    };
    if *leaves >= MAX_LEAVES {
        return;
    }
    *leaves += 1;
    let leaf = meta.trace_leaf_addr;
    let mut above_leaf = false;
    let mut frames = 0;
    let mut step = |frame: &backtrace::Frame| {
        let at = frame.symbol_address() as *const c_void;
        let below_root = at != root;
        if above_leaf && below_root && frames < MAX_FRAMES {
            ips.push(frame.ip() as usize);
            frames += 1;
        }
        if at == leaf {
            above_leaf = true;
        }
        below_root
    };
    // SAFETY: `trace_unsynchronized` is unsafe only where the platform's
    // unwinder is not thread-safe; on Linux (the only platform with
    // `cfg(taskdumps)`) it is libgcc's `_Unwind_Backtrace`, which is. The
    // synchronized `backtrace::trace` would share a lock with the agent's
    // symbol resolution, and a worker must never wait on that.
    unsafe { backtrace::trace_unsynchronized(&mut step) };
    ips.push(0);
}

/// Splits a capture into its leaves.
pub fn leaves(ips: &[usize]) -> impl Iterator<Item = &[usize]> {
    ips.split(|&ip| ip == 0).filter(|l| !l.is_empty())
}
