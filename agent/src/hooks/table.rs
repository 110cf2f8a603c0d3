//! The task table: every live task's record, made by folding the threads'
//! event logs (see `log`) under one lock that a runtime's worker never
//! waits for (see `handoff`).
//!
//! A fold reads, for each thread, the chunks it handed over and then its
//! current chunk, in order, so one thread's events are applied in the
//! order it wrote them. Threads' logs are folded one after another, so a
//! task's poll or end can be read before its spawn (spawned on one thread,
//! polled or ended on another): such an event waits in `pending` and is
//! applied once the spawn is folded. The spawn happened before it, so a
//! fold that starts after it was read sees the spawn; an event still
//! unmatched after such a complete fold belongs to a task never spawned
//! under the hooks (a blocking task's end: tokio runs no spawn hook for
//! those) and is dropped.

use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::task::Id;

use super::Inner;
use super::log::{Chunk, Event, ThreadLog};
use super::places::{NONE, PLACE_BITS};
use super::site::{Site, age_bucket};
use super::tasks::Tasks;
use crate::slot::{Link, Mail};

#[derive(Default)]
/// One live task: 48 bytes, and its id as the key (56 bytes a task in
/// the map, before its spare room).
pub(super) struct Rec {
    pub(super) parent: Option<Id>,
    /// Nanoseconds since the recorder's epoch.
    pub(super) created: u64,
    /// End of the last poll (0: never polled).
    pub(super) last_poll_end: u64,
    /// Time in poll in µs (the coarse clock counts whole ms), above its
    /// place's number ([`PLACE_BITS`]).
    busy_site: u64,
    /// Polls, above its spawner's location's number.
    polls_parent: u64,
    /// The task's link with the agent (its waker, or once asked for a
    /// capture its slot), when its future is wrapped in
    /// [`crate::capture::Traced`].
    pub(super) link: Option<Link>,
}

// Every live task has a record: its size is the hooks source's memory.
const _: () = assert!(std::mem::size_of::<Rec>() == 48);

const PLACE_MASK: u64 = (1 << PLACE_BITS) - 1;
/// The most a record counts: 2^44 polls, 2^44 µs (203 days) in poll.
const COUNT_MAX: u64 = (1 << (64 - PLACE_BITS)) - 1;

impl Rec {
    fn new(parent: Option<Id>, created: u64, site: u32, parent_loc: u32) -> Rec {
        Rec {
            parent,
            created,
            last_poll_end: 0,
            busy_site: u64::from(site) & PLACE_MASK,
            polls_parent: u64::from(parent_loc) & PLACE_MASK,
            link: None,
        }
    }

    pub(super) fn site(&self) -> u32 {
        (self.busy_site & PLACE_MASK) as u32
    }

    /// Its spawner's location's number ([`NONE`] when spawned outside any
    /// task).
    pub(super) fn parent_loc(&self) -> u32 {
        (self.polls_parent & PLACE_MASK) as u32
    }

    pub(super) fn polls(&self) -> u64 {
        self.polls_parent >> PLACE_BITS
    }

    pub(super) fn busy_ns(&self) -> u64 {
        (self.busy_site >> PLACE_BITS) * 1000
    }

    fn add_busy(&mut self, ns: u64) {
        let us = ((self.busy_site >> PLACE_BITS) + ns / 1000).min(COUNT_MAX);
        self.busy_site = (us << PLACE_BITS) | (self.busy_site & PLACE_MASK);
    }

    /// The task's waker, handed over on its first `Pending` (once: a slot
    /// it has stays).
    fn adopt(&mut self, waker: std::task::Waker) {
        if self.link.as_ref().is_none_or(Link::is_kept) {
            self.link = Some(Link::task(waker));
        }
    }

    fn add_poll(&mut self) {
        let n = (self.polls() + 1).min(COUNT_MAX);
        self.polls_parent = (n << PLACE_BITS) | (self.polls_parent & PLACE_MASK);
    }
}

/// The folded state (behind `Inner::table`).
#[derive(Default)]
pub struct Table {
    pub(super) tasks: Tasks,
    /// Events read before their task's spawn, with the fold that read them.
    pending: Vec<(u64, Event, Option<Box<Mail>>)>,
    /// Tasks' ends read in this fold, applied once every log is read (see
    /// `fold`).
    ends: Vec<Event>,
    /// Folds so far.
    folds: u64,
    /// Events dropped as belonging to no task spawned under the hooks.
    pub(super) strays: u64,
    /// The places by number (see `places`).
    pub(super) sites: Vec<&'static Site>,
    pub(super) locations: Vec<&'static Location<'static>>,
    /// Scratch: the logs, and a log's handed-over chunks, of one fold.
    logs: Vec<Arc<ThreadLog>>,
    chunks: Vec<Arc<Chunk>>,
}

fn add(a: &AtomicU64, n: u64) {
    // One writer (the folder, under the fold lock): no read-modify-write.
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Table {
    /// Folds every published event into the table: all of it, whoever
    /// folds (a reader, or a thread whose chunk filled). A backlog is only
    /// what came while the last fold ran; leaving part of it for later
    /// would only hold other threads' events for those tasks as pending,
    /// at twice the memory.
    pub(super) fn fold(&mut self, inner: &Inner) {
        self.folds += 1;
        let fold = self.folds;
        let mut logs = std::mem::take(&mut self.logs);
        logs.clear();
        {
            let mut all = inner.logs.lock().unwrap_or_else(|e| e.into_inner());
            // Logs of ended threads, once folded, go.
            all.retain(|l| {
                let done = l.ended.load(Ordering::Acquire) && {
                    let c = l.chunks.lock().unwrap_or_else(|e| e.into_inner());
                    c.full.is_empty() && c.current.as_ref().is_none_or(|c| c.folded())
                };
                !done
            });
            logs.extend(all.iter().cloned());
        }
        let mut chunks = std::mem::take(&mut self.chunks);
        // A second pass, when some events came before their spawn: the
        // spawns published while the first pass ran (most such events'),
        // so they wait for no later fold.
        for pass in 0..2 {
            if pass == 1 && self.pending.is_empty() {
                break;
            }
            for log in &logs {
                let current = {
                    let mut c = log.chunks.lock().unwrap_or_else(|e| e.into_inner());
                    chunks.append(&mut c.full);
                    c.current.clone()
                };
                for chunk in chunks.drain(..) {
                    self.drain(inner, log, &chunk, fold);
                    recycle(inner, chunk);
                }
                if let Some(c) = current {
                    self.drain(inner, log, &c, fold);
                }
            }
        }
        self.chunks = chunks;
        let stray: Vec<Event> =
            std::mem::take(&mut *inner.stray.lock().unwrap_or_else(|e| e.into_inner()));
        for e in stray {
            self.read(inner, e, fold);
        }
        self.retry(inner);
        // The ends last: a task polled on one thread and ended on another
        // has its earlier polls in a log this fold may read after the
        // end's, and they must find its record. (Every event of a task's
        // earlier polls is published before its end can be: tokio runs a
        // task's poll hooks before another thread may poll it.)
        let mut ends = std::mem::take(&mut self.ends);
        for e in ends.drain(..) {
            self.apply(inner, e, fold);
        }
        self.ends = ends;
        {
            // Read before this fold began and still unmatched: no spawn
            // will come.
            let pending = std::mem::take(&mut self.pending);
            for (f, e, m) in pending {
                if f >= fold {
                    self.pending.push((f, e, m));
                } else if let Event::Spawn { id, at, .. } = e {
                    // An id used again whose last task's end never came:
                    // that task ended unseen.
                    if let Some(old) = self.tasks.remove(&id) {
                        self.ended(inner, old, at);
                    }
                    self.apply_with(inner, e, m.map(|m| *m), fold);
                } else {
                    self.strays += 1;
                    release(e);
                }
            }
        }
        logs.clear();
        self.logs = logs;
    }

    fn drain(&mut self, inner: &Inner, log: &ThreadLog, chunk: &Chunk, fold: u64) {
        chunk.drain(|e| match e {
            Event::Mail { .. } => {
                let mail = log
                    .mail
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front();
                self.apply_with(inner, e, mail, fold);
            }
            _ => self.read(inner, e, fold),
        });
    }

    /// An event as read from a log: a task's end waits for the fold's
    /// other events (see `fold`), the rest is applied.
    #[inline]
    fn read(&mut self, inner: &Inner, e: Event, fold: u64) {
        match e {
            Event::Term { .. } | Event::Poll { ended: true, .. } => self.ends.push(e),
            _ => self.apply(inner, e, fold),
        }
    }

    /// Applies the pending events that can be, in the order they came.
    fn retry(&mut self, inner: &Inner) {
        loop {
            let pending = std::mem::take(&mut self.pending);
            let before = pending.len();
            for (f, e, m) in pending {
                self.apply_with(inner, e, m.map(|m| *m), f);
            }
            if self.pending.len() == before {
                return;
            }
        }
    }

    fn site(&mut self, inner: &Inner, n: u32) -> &'static Site {
        if n as usize >= self.sites.len() {
            inner.places.catch_up(&mut self.sites, &mut self.locations);
        }
        self.sites[n as usize]
    }

    /// Applies one event that carries no mail (all but `Mail`: the fold's
    /// hot path, kept small), or keeps it pending.
    fn apply(&mut self, inner: &Inner, e: Event, fold: u64) {
        let applied = match e {
            Event::Spawn {
                id,
                at,
                site,
                parent_loc,
                parent,
            } => {
                if parent_loc != NONE && parent_loc as usize >= self.locations.len() {
                    inner.places.catch_up(&mut self.sites, &mut self.locations);
                }
                // Taken: an id used again (tokio may, once a task ended):
                // its last task's end is still to be folded.
                let ok = self
                    .tasks
                    .insert(id, Rec::new(parent, at, site, parent_loc))
                    .is_ok();
                if ok {
                    add(&self.site(inner, site).counts.spawned, 1);
                }
                ok
            }
            Event::Poll {
                id,
                start,
                end,
                ended,
                kept,
            } => {
                let busy = end.saturating_sub(start);
                if ended {
                    match self.tasks.remove(&id) {
                        Some(mut rec) => {
                            rec.add_busy(busy);
                            self.ended(inner, rec, end);
                            true
                        }
                        None => false,
                    }
                } else if let Some(rec) = self.tasks.get_mut(&id) {
                    if kept && rec.link.is_none() {
                        rec.link = Some(Link::kept());
                    }
                    rec.add_poll();
                    rec.add_busy(busy);
                    rec.last_poll_end = rec.last_poll_end.max(end);
                    true
                } else {
                    false
                }
            }
            Event::Term { id, at } => match self.tasks.remove(&id) {
                Some(rec) => {
                    self.ended(inner, rec, at);
                    true
                }
                None => false,
            },
            Event::Adopt { id, waker } => match self.tasks.get_mut(&id) {
                Some(rec) => {
                    // SAFETY: the event as read from its chunk (or kept
                    // pending since), applied once: it is not kept.
                    rec.adopt(unsafe { super::log::adopted(waker) });
                    true
                }
                None => false,
            },
            // Not reached from a log (`drain` sends mail to `apply_with`
            // with its mail); kept whole for any other caller.
            Event::Mail { .. } => return self.apply_with(inner, e, None, fold),
        };
        if !applied {
            self.pending.push((fold, e, None));
        }
    }

    /// Applies an event with the mail it carries: a `Mail` event's, the
    /// waker or capture its poll left (rare, and apart from the hot path);
    /// any other event as [`Table::apply`] does (one kept pending, retried).
    #[cold]
    fn apply_with(&mut self, inner: &Inner, e: Event, mail: Option<Mail>, fold: u64) {
        let Event::Mail { id, at } = e else {
            return self.apply(inner, e, fold);
        };
        let Some(rec) = self.tasks.get_mut(&id) else {
            self.pending.push((fold, e, mail.map(Box::new)));
            return;
        };
        let Some(m) = mail else { return };
        if let Some(waker) = m.waker {
            rec.adopt(waker);
        }
        if let (Some(ips), Some(slot)) = (m.captured, rec.link.as_ref().and_then(Link::as_slot))
            && let Some(stack) = crate::stacks::intern(ips)
        {
            slot.keep(stack, inner.unix_ns(at));
        }
    }

    /// A task's end: its place's totals.
    fn ended(&mut self, inner: &Inner, rec: Rec, at: u64) {
        let lived = at.saturating_sub(rec.created);
        let c = &self.site(inner, rec.site()).counts;
        add(&c.lifetime_ns, lived);
        add(&c.lifetimes[age_bucket(lived)], 1);
        add(&c.busy_ns, rec.busy_ns());
        add(&c.terminated, 1);
    }
}

/// An event dropped unapplied: the waker it may carry goes.
fn release(e: Event) {
    if let Event::Adopt { waker, .. } = e {
        // SAFETY: an event dropped unapplied, once: it is not kept.
        drop(unsafe { super::log::adopted(waker) });
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        for (_, e, _) in self.pending.drain(..) {
            release(e);
        }
    }
}

/// A handed-over chunk, folded: back to the pool for the next thread that
/// needs one (a few are kept).
fn recycle(inner: &Inner, chunk: Arc<Chunk>) {
    if Arc::strong_count(&chunk) == 1 && chunk.folded() && chunk.capacity() == super::log::SLOTS {
        chunk.reset();
        let mut pool = inner.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 16 {
            pool.push(chunk);
        }
    }
}
