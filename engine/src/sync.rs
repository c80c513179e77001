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
    pub(crate) use std::sync::atomic::{fence, AtomicIsize, AtomicUsize, Ordering};
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

/// A small per-thread index used to spread counters over shards.
#[cfg(not(loom))]
pub(crate) fn thread_shard() -> usize {
    use std::cell::Cell;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|s| {
        let mut v = s.get();
        if v == usize::MAX {
            v = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s.set(v);
        }
        v
    })
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
