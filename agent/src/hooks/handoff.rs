//! A thread's log chunk is full: who folds it, and whether anyone waits.

use std::sync::TryLockError;

use super::log::{self, Chunk, Local};
use super::{Inner, lock};

/// Chunks a thread that runs no tasks may leave to others to fold before
/// it waits to fold them itself.
const MAX_WAITING: usize = 4;

/// A thread's chunk is full. A runtime's worker folds every published
/// event if nobody else is folding (never waiting for the lock) and goes
/// on in its chunk, else hands it over and goes on in a spare (or new)
/// one. Another thread (a `block_on` spawning, a blocking thread) hands
/// it over for a spare when there is one, else does as a worker does, up
/// to [`MAX_WAITING`] chunks left to others; then it waits for the lock
/// and folds: it runs no tasks, and a spawner that outruns the folds
/// would otherwise pile chunks up (a million spawns from `block_on`
/// queued hundreds, and the process peaked 5-14 % higher).
#[cold]
pub(super) fn full(local: &mut Local, inner: &Inner) {
    // `worker_index` is stable from tokio 1.54, behind `tokio_unstable`
    // before; without that cfg there are no hooks, and no log fills.
    #[cfg(tokio_unstable)]
    let worker = tokio::runtime::worker_index().is_some();
    #[cfg(not(tokio_unstable))]
    let worker = false;
    let waiting = local.waiting();
    if waiting < MAX_WAITING {
        let spare = lock(&inner.pool).pop();
        if let Some(spare) = spare {
            local.hand_over(spare);
            return;
        }
    }
    if worker && waiting < MAX_WAITING {
        let spare = lock(&inner.pool).pop();
        local.hand_over(spare.unwrap_or_else(|| Chunk::new(log::SLOTS)));
        return;
    }
    let table = if worker || waiting < MAX_WAITING {
        match inner.table.try_lock() {
            Ok(t) => Some(t),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    } else {
        Some(lock(&inner.table))
    };
    if let Some(mut t) = table {
        t.fold(inner);
        if local.after_fold(&inner.pool) {
            return;
        }
    }
    let spare = lock(&inner.pool).pop();
    local.hand_over(spare.unwrap_or_else(|| Chunk::new(log::SLOTS)));
}

/// A runtime's worker is about to park (it has no task to run): a fold
/// then costs the service nothing, so it folds what its thread left.
pub(super) fn parking(local: &mut Local, inner: &Inner) {
    if local.waiting() == 0 && local.len() < PARK_FOLD {
        return;
    }
    let table = match inner.table.try_lock() {
        Ok(t) => t,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    let mut t = table;
    t.fold(inner);
    local.after_fold(&inner.pool);
}

/// Events in a parking worker's log that make it fold.
const PARK_FOLD: usize = 256;
