//! A thread's log chunk is full: who folds it, and whether anyone waits.

use std::sync::{MutexGuard, TryLockError};

use super::log::{self, Chunk, Local};
use super::table::Table;
use super::{Inner, lock};

/// Chunks a thread may leave to others to fold: past them, a worker folds
/// when nobody else is, and a thread that runs no tasks waits to fold.
const MAX_WAITING: usize = 4;

/// A thread's chunk is full.
///
/// A thread that runs no tasks (a multi-thread runtime's `block_on`
/// spawning, a blocking thread, a thread spawning onto a handle; a
/// current-thread runtime's `block_on` is its worker) folds it at once
/// when nobody else is folding: the fold then runs on none of the
/// runtime's workers, and the thread that made the events pays for them.
/// (In a churn spawned from `block_on` the spawner waits for the workers
/// much of the time: folding there read 1.09-1.15x plain where leaving it
/// to the workers read 1.16-1.24x.) That thread stops for the fold: an
/// accept loop in `#[tokio::main]` pauses once every ~1 000 spawns for as
/// long as the backlog takes (~17 ns an event, up to ~5 chunks of 1 024
/// a thread). Workers that fill a chunk meanwhile hand it over, as while
/// any fold runs; readers wait for it. When the lock
/// is taken, it hands the chunk over for a spare when there is one, else
/// does as a worker does, up to [`MAX_WAITING`] chunks left to others;
/// then it waits for the lock and folds: a spawner that outruns the folds
/// would otherwise pile chunks up (a million spawns from `block_on`
/// queued hundreds, and the process peaked 5-14 % higher).
///
/// A runtime's worker hands it over for a spare (or new) one while it has
/// fewer than [`MAX_WAITING`] waiting to be folded, and leaves the fold to
/// whoever comes next: itself when it parks (see [`parking`]), a reader,
/// or another thread whose chunk fills. Past that (a worker that never
/// parks), it folds every published event if nobody else is folding
/// (never waiting for the lock) and goes on in its chunk, else hands it
/// over.
///
/// Why a worker leaves its fold for later: a fold on a worker stops its
/// tasks while it runs, and on a busy machine that is the service's
/// time; the same fold when the worker has nothing to run costs nothing.
#[cold]
pub(super) fn full(local: &mut Local, inner: &Inner) {
    // `worker_index` is stable from tokio 1.54, behind `tokio_unstable`
    // before; without that cfg there are no hooks, and no log fills.
    #[cfg(tokio_unstable)]
    let worker = tokio::runtime::worker_index().is_some();
    #[cfg(not(tokio_unstable))]
    let worker = false;
    if !worker && fold_if_free(local, inner) {
        return;
    }
    let waiting = local.waiting();
    if waiting < MAX_WAITING {
        let spare = lock(&inner.pool).pop();
        match spare {
            Some(spare) => return local.hand_over(spare),
            None if worker => return local.hand_over(Chunk::new(log::SLOTS)),
            None => {}
        }
    }
    // Past its waiting chunks: a worker folds if nobody else is, a thread
    // that runs no tasks waits to fold (its try failed above). One that
    // found no spare, with room to wait, goes on in a new chunk.
    let folded = if worker {
        fold_if_free(local, inner)
    } else if waiting >= MAX_WAITING {
        // Held until the chunk is reset: only a folder touches `consumed`.
        let mut table = lock(&inner.table);
        table.fold(inner);
        local.after_fold(&inner.pool)
    } else {
        false
    };
    if folded {
        return;
    }
    let spare = lock(&inner.pool).pop();
    local.hand_over(spare.unwrap_or_else(|| Chunk::new(log::SLOTS)));
}

/// A runtime's worker is about to park (tokio's `on_thread_park`: it has
/// no task to run): a fold then costs the service nothing, so it folds
/// what it left, when it left a chunk or [`PARK_FOLD`] events (a worker
/// that parks after every few polls does not fold each time). Never
/// waits: if someone else is folding, their fold takes these events too.
pub(super) fn parking(local: &mut Local, inner: &Inner, now: u64) {
    local.flush(|l| full(l, inner), now, usize::MAX);
    if local.waiting() == 0 && local.len() < PARK_FOLD {
        return;
    }
    fold_if_free(local, inner);
}

/// Folds every published event if nobody else is folding; whether this
/// thread's chunk was folded whole (and is ready to write again).
fn fold_if_free(local: &mut Local, inner: &Inner) -> bool {
    let Some(mut table) = try_table(inner) else {
        return false;
    };
    table.fold(inner);
    local.after_fold(&inner.pool)
}

/// The fold lock if nobody holds it (a poisoned one is taken: the table
/// stays consistent event by event).
fn try_table(inner: &Inner) -> Option<MutexGuard<'_, Table>> {
    match inner.table.try_lock() {
        Ok(t) => Some(t),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// Events in a parking worker's log that make it fold.
pub(super) const PARK_FOLD: usize = 256;
