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
//! poll stays in place. The stack is walked on the task's own worker, a few
//! microseconds; nothing else waits for it. tokio then wakes the task
//! (its tracing-mode leaves defer a wake, and the wrapper wakes it too, for
//! tokio versions that do not), and the next poll is a real one.
//!
//! What that costs the task, and what it can change:
//! - Two polls the task did not ask for (the traced one and the real one
//!   after it). Futures must accept spurious polls; the hooks recorder
//!   does not count them as the task's activity (its idle time and poll
//!   count stay the task's own).
//! - In the traced poll, tokio futures read as not ready. Code that treats
//!   a tokio future as certainly ready (`now_or_never().unwrap()` on one)
//!   would see it otherwise — exactly as under tokio's own task dump. Do
//!   not wrap such a task.
//!
//! The hooks recorder keeps, per wrapped task, a [`Slot`] (the flag, the
//! waker, the last capture); the wrapper hands its slot and its captures to
//! the recorder through a thread-local mailbox that the recorder's
//! after-poll hook empties on the same thread, right after the poll, under
//! the lock it takes anyway. Without the hooks source the wrapper only
//! passes polls through.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Most leaf futures kept per capture (a `select!` over many), and most
/// frames per leaf.
pub const MAX_LEAVES: usize = 16;
pub const MAX_FRAMES: usize = 64;

/// One wrapped task's link with the agent.
#[derive(Default)]
pub struct Slot {
    /// The agent asked for a capture.
    want: AtomicBool,
    /// The task's waker, from its last real poll that returned `Pending`.
    waker: Mutex<Option<Waker>>,
    /// 1 + the interned stack of the last capture (0: none yet).
    stack: AtomicU32,
    /// When it was taken (recorder clock, ns).
    at: AtomicU64,
}

impl Slot {
    /// Asks the task for a capture: sets its flag and wakes it. Never
    /// blocks on the runtime (a wake only queues the task).
    pub fn request(&self) {
        self.want.store(true, Ordering::Release);
        let waker = self.waker.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether a capture was asked for and not yet taken.
    pub fn wanted(&self) -> bool {
        self.want.load(Ordering::Acquire)
    }

    /// The last capture: (stack id, recorder-clock ns).
    pub fn last(&self) -> Option<(u32, u64)> {
        let s = self.stack.load(Ordering::Acquire);
        (s != 0).then(|| (s - 1, self.at.load(Ordering::Relaxed)))
    }

    pub(crate) fn store(&self, stack: u32, at: u64) {
        self.at.store(at, Ordering::Relaxed);
        self.stack.store(stack.saturating_add(1), Ordering::Release);
    }

    fn set_waker(&self, w: &Waker) {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(w.clone());
    }

    fn forget_waker(&self) {
        self.waker.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// What a wrapped task's poll leaves for the recorder's after-poll hook.
#[derive(Default)]
pub struct Mail {
    /// The task's slot, on its first poll.
    pub adopt: Option<Arc<Slot>>,
    /// A capture: instruction pointers, leaf after leaf, each leaf ended
    /// by a 0.
    pub captured: Option<Vec<usize>>,
    /// The poll was the agent's (the traced one, or the real one after it).
    pub synthetic: bool,
}

thread_local! {
    static HAS_MAIL: Cell<bool> = const { Cell::new(false) };
    static MAIL: RefCell<Mail> = RefCell::new(Mail::default());
}

fn post(f: impl FnOnce(&mut Mail)) {
    MAIL.with(|m| f(&mut m.borrow_mut()));
    HAS_MAIL.set(true);
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

pin_project_lite::pin_project! {
    /// A future whose waits the agent can capture (see the module doc).
    /// Costs a thread-local read per poll, one allocation on the first
    /// poll that returns `Pending`, and nothing else until the agent asks.
    pub struct Traced<F> {
        #[pin]
        inner: F,
        slot: Option<Arc<Slot>>,
        waker: Option<Waker>,
        repoll: bool,
    }

    impl<F> PinnedDrop for Traced<F> {
        fn drop(this: Pin<&mut Self>) {
            // The recorder keeps the slot until the task ends; its waker
            // must not keep the task's memory alive after that.
            if let Some(s) = this.project().slot {
                s.forget_waker();
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
        waker: None,
        repoll: false,
    }
}

/// `tokio::spawn`, with the task's waits visible to the agent. The spawn
/// location is the caller's, as with `tokio::spawn`.
#[track_caller]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(traced(future))
}

/// An executor for hyper (`hyper::server::conn::http2::Builder::new`,
/// `hyper_util::client::legacy::Client::builder`, `hyper_util`'s
/// `server::conn::auto::Builder`) that spawns its connection and stream
/// tasks with [`traced`].
#[derive(Clone, Copy, Debug, Default)]
pub struct TracedExecutor;

impl<F> hyper::rt::Executor<F> for TracedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(traced(future));
    }
}

impl<F: Future> Future for Traced<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if !crate::hooks::polling_a_task() {
            // No recorder on this thread (or not a task's poll).
            return this.inner.poll(cx);
        }
        let Some(slot) = this.slot.as_ref() else {
            let res = this.inner.poll(cx);
            if res.is_pending() {
                let slot = Arc::new(Slot::default());
                slot.set_waker(cx.waker());
                *this.waker = Some(cx.waker().clone());
                post(|m| m.adopt = Some(slot.clone()));
                *this.slot = Some(slot);
            }
            return res;
        };
        if std::mem::take(this.repoll) {
            post(|m| m.synthetic = true);
        }
        if slot.want.swap(false, Ordering::AcqRel) {
            if let Some((res, ips)) = capture(this.inner.as_mut(), cx) {
                if res.is_pending() {
                    post(|m| {
                        m.captured = Some(ips);
                        m.synthetic = true;
                    });
                    *this.repoll = true;
                    cx.waker().wake_by_ref();
                }
                return res;
            }
        }
        let res = this.inner.poll(cx);
        if res.is_pending() && !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.set_waker(cx.waker());
            *this.waker = Some(cx.waker().clone());
        }
        res
    }
}

/// Polls `inner` once in tracing mode and returns what it returned and
/// the stacks of the leaves it reached.
#[cfg(taskdumps)]
fn capture<F: Future>(
    mut inner: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Option<(Poll<F::Output>, Vec<usize>)> {
    use tokio::runtime::dump::{Trace, trace_with};
    let mut ips = Vec::new();
    let mut leaves = 0;
    let res = {
        let root = Trace::root(std::future::poll_fn(|cx| {
            trace_with(
                || inner.as_mut().poll(cx),
                |meta| walk(meta, &mut ips, &mut leaves),
            )
        }));
        let mut root = std::pin::pin!(root);
        root.as_mut().poll(cx)
    };
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
