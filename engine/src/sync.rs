//! The loom shim: the only module that names `std::sync::atomic`.
//!
//! Under `--cfg loom` every atomic comes from loom so the models in `regent-loom` explore
//! the engine's real interleavings (tokio's `src/loom`, crossbeam-epoch's `primitive`).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use loom::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Atomics outside the lock-free protocols (process-wide statistics, the `await_registered`
/// wake-up): always std atomics, so statics holding them outlive loom's per-model state.
pub(crate) mod stats {
    #[cfg(loom)]
    pub(crate) use std::sync::atomic::AtomicIsize;
    pub(crate) use std::sync::atomic::{fence, AtomicUsize, Ordering};
}

/// Waits a little while another thread finishes a short critical section (a per-pid lock
/// or a group being copied). Under loom it yields so the model can schedule that thread.
#[inline]
pub(crate) fn spin(backoff: &crossbeam_utils::Backoff) {
    #[cfg(loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    backoff.snooze();
}

/// A small per-thread index used to spread contended state (a hot bag's stripes, the entry
/// limit's gate) over shards: the thread's [`thread_index`], or 0 while its thread-locals
/// are being destroyed.
#[cfg(not(loom))]
#[inline]
pub(crate) fn thread_shard() -> usize {
    thread_index().unwrap_or(0)
}

/// This thread's index: at most one live thread holds each, and a thread that exits hands
/// its index to the next thread that asks, so indices stay as small as the number of live
/// threads. `None` once the thread's locals are being destroyed (a deferred free can run
/// in a thread-local destructor).
///
/// Whatever a thread wrote before it exited happens before whatever the next holder of its
/// index does: the hand-over is a Release store and an Acquire claim. That is what lets a
/// counter give each index a slot that only its holder writes (`Counter`). Under loom every
/// thread takes a fresh index (see `index`).
#[inline]
pub(crate) fn thread_index() -> Option<usize> {
    let index = index::INDEX.with(std::cell::Cell::get);
    if index < index::GONE {
        Some(index)
    } else if index == index::UNSET {
        index::acquire()
    } else {
        None
    }
}

#[cfg(not(loom))]
mod index {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    pub(super) const UNSET: usize = usize::MAX;
    pub(super) const GONE: usize = usize::MAX - 1;

    /// Indices below this are given back when their thread exits; a thread that finds them
    /// all held takes a fresh one above them, never given back. Only the first few indices
    /// own counter slots, so only those need to come back.
    const REUSED: usize = 64;

    /// Whether a live thread holds index `i`. No allocation: the leak accounting of the
    /// benchmarks counts every heap byte left behind.
    static HELD: [AtomicBool; REUSED] = [const { AtomicBool::new(false) }; REUSED];
    static FRESH: AtomicUsize = AtomicUsize::new(REUSED);

    std::thread_local! {
        /// The index, `UNSET` or `GONE`: a plain cell with no destructor, so reading it is
        /// cheap and always allowed.
        pub(super) static INDEX: Cell<usize> = const { Cell::new(UNSET) };
        /// Gives the index back when the thread exits.
        static RELEASE: Release = const {
            Release {
                index: Cell::new(UNSET),
            }
        };
    }

    struct Release {
        index: Cell<usize>,
    }

    impl Drop for Release {
        fn drop(&mut self) {
            INDEX.with(|index| index.set(GONE));
            give_back(self.index.get());
        }
    }

    fn give_back(index: usize) {
        if let Some(held) = HELD.get(index) {
            // Release: the next holder's Acquire claim sees everything this thread wrote
            // in the slots of that index.
            held.store(false, Ordering::Release);
        }
    }

    #[cold]
    pub(super) fn acquire() -> Option<usize> {
        // The smallest free index, so that indices stay below the number of live threads.
        let index = HELD
            .iter()
            .position(|held| {
                // Acquire: pairs with the Release in `give_back` (see there).
                !held.load(Ordering::Relaxed)
                    && held
                        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
            })
            .unwrap_or_else(|| FRESH.fetch_add(1, Ordering::Relaxed));
        if RELEASE
            .try_with(|release| release.index.set(index))
            .is_err()
        {
            // The thread is already tearing down its locals: no index, and no one to give
            // this one back later.
            give_back(index);
            INDEX.with(|cell| cell.set(GONE));
            return None;
        }
        INDEX.with(|cell| cell.set(index));
        Some(index)
    }

    #[cfg(test)]
    mod tests {
        use super::super::thread_index;

        /// Two live threads never hold one index, and threads that run one after another
        /// reuse indices instead of taking new ones.
        #[test]
        fn indices_are_unique_among_live_threads_and_reused() {
            let barrier = std::sync::Barrier::new(8);
            let live: Vec<usize> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            let index = thread_index().expect("a live thread has an index");
                            // All eight hold their index at once.
                            barrier.wait();
                            assert_eq!(thread_index(), Some(index), "an index is stable");
                            index
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut unique = live.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), 8, "live threads shared an index: {live:?}");
            // Other tests' threads come and go meanwhile, but never 40 at once.
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                seen.insert(std::thread::spawn(thread_index).join().unwrap().unwrap());
            }
            assert!(
                seen.len() < 40,
                "{} indices for 200 threads in turn",
                seen.len()
            );
        }
    }
}

// Under loom each thread takes a fresh index and none is given back: loom drops the main
// thread's locals after its statics, and sync operations in a thread's last destructors
// upset its exploration. So the models check the slots of live threads, owned and shared,
// and the unit tests check the hand-over, with real threads.
#[cfg(loom)]
mod index {
    use std::cell::Cell;

    use loom::sync::atomic::{AtomicUsize, Ordering};

    pub(super) const UNSET: usize = usize::MAX;
    pub(super) const GONE: usize = usize::MAX - 1;

    loom::thread_local! {
        pub(super) static INDEX: Cell<usize> = Cell::new(UNSET);
    }

    loom::lazy_static! {
        static ref FRESH: AtomicUsize = AtomicUsize::new(0);
    }

    pub(super) fn acquire() -> Option<usize> {
        let index = FRESH.fetch_add(1, Ordering::Relaxed);
        INDEX.with(|cell| cell.set(index));
        Some(index)
    }
}

/// Under loom every thread shares shard 0, which keeps the state space small.
#[cfg(loom)]
pub(crate) fn thread_shard() -> usize {
    0
}

/// A cell whose accesses loom checks against each other: a read that a too-weak ordering
/// leaves racing a write is reported (tokio's `UnsafeCell` shim).
pub(crate) struct Cell<T> {
    #[cfg(not(loom))]
    inner: core::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> Cell<T> {
    pub(crate) fn new(value: T) -> Cell<T> {
        Cell {
            #[cfg(not(loom))]
            inner: core::cell::UnsafeCell::new(value),
            #[cfg(loom)]
            inner: loom::cell::UnsafeCell::new(value),
        }
    }

    /// A pointer to read through (loom records a read here).
    #[inline]
    pub(crate) fn get(&self) -> *const T {
        #[cfg(not(loom))]
        return self.inner.get();
        #[cfg(loom)]
        return self.inner.with(|p| p);
    }

    /// A pointer to write through (loom records a write here).
    #[inline]
    pub(crate) fn get_mut(&self) -> *mut T {
        #[cfg(not(loom))]
        return self.inner.get();
        #[cfg(loom)]
        return self.inner.with_mut(|p| p);
    }
}
