//! Epoch reclamation: how removed entries and retired arrays are freed, and how many bytes
//! wait for it.
//!
//! Everything a reader may still hold is handed to crossbeam-epoch's global collector and
//! freed once every thread pinned at removal time has unpinned. `RETIRED` counts the bytes
//! handed over and not yet freed, process-wide, so `Stats::retired_bytes` shows garbage
//! piling up behind a long-pinned reader.

use crossbeam_epoch::{Collector, Guard};

#[cfg(not(loom))]
use crate::counter::Counter;

/// Every removal adds to it and every deferred free takes away: a `Counter`, so that each
/// thread counts in a slot of its own without a locked instruction. Under loom the counter
/// is built on loom's atomics, which a static cannot hold (it must outlive each model's
/// state), and the count is outside every protocol anyway: one std atomic stands in.
#[cfg(not(loom))]
static RETIRED: Counter = Counter::new();
#[cfg(loom)]
static RETIRED: crate::sync::stats::AtomicIsize = crate::sync::stats::AtomicIsize::new(0);

pub(crate) fn add_retired(bytes: isize) {
    #[cfg(not(loom))]
    RETIRED.add(bytes as usize);
    #[cfg(loom)]
    RETIRED.fetch_add(bytes, crate::sync::stats::Ordering::Relaxed);
}

/// Bytes removed from every regent registry in this process and not yet freed.
pub(crate) fn retired_bytes() -> usize {
    #[cfg(not(loom))]
    return RETIRED.sum();
    #[cfg(loom)]
    return RETIRED.load(crate::sync::stats::Ordering::Relaxed).max(0) as usize;
}

/// Panics caught by [`contain`], process-wide (as `RETIRED`): outside every protocol, so a
/// std atomic under loom too.
static DROP_PANICS: crate::sync::stats::AtomicUsize = crate::sync::stats::AtomicUsize::new(0);

/// Panics that keys' and values' `Drop` impls raised since the process started.
pub(crate) fn drop_panics() -> usize {
    DROP_PANICS.load(crate::sync::stats::Ordering::Relaxed)
}

/// Runs `drop`, which drops keys or values of the user's types, and catches a panic it
/// raises: counted in `DROP_PANICS`, after the panic hook has reported it.
///
/// Keys and values are dropped late, by the epoch, in whichever thread happens to collect
/// garbage (any call that pins): a panic there has no caller to go to. Let through, it
/// would surface in an unrelated call, of regent or of any other user of the global
/// collector, and unwind out of crossbeam-epoch's garbage bag, which then never runs the
/// bag's other deferred functions (crossbeam-rs/crossbeam#206): up to 63 other values
/// never dropped, and the `RETIRED` count never brought back down. Caught here, the one
/// value is dropped as far as its drop glue got (a panicking `Drop` still drops the
/// value's fields while unwinding), never touched again, and everything else proceeds.
/// Registry teardown and the other drops of user data inside regent go through here too,
/// so the rule is one: a panicking `Drop` of a key or value never escapes regent.
#[inline]
pub(crate) fn contain(drop: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(drop)) {
        DROP_PANICS.fetch_add(1, crate::sync::stats::Ordering::Relaxed);
        // A payload is any type, whose own drop may panic in turn: forget such a one.
        if let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            core::mem::drop(payload)
        })) {
            core::mem::forget(again);
        }
    }
}

/// Hands `ptr` to the collector: `free(ptr)` runs once no thread can still read it.
///
/// # Safety
///
/// `ptr` must be unreachable for any thread that pins after this call, `free(ptr)` must be
/// sound to call once from any thread after every current pin ends, and nothing else may
/// free `ptr`.
pub(crate) unsafe fn retire<T>(guard: &Guard, ptr: *mut T, bytes: usize, free: unsafe fn(*mut T)) {
    add_retired(bytes as isize);
    let ptr = SendPtr(ptr);
    // SAFETY: the caller guarantees no thread pinned from now on can reach `ptr`, so the
    // collector may run `free` once the current pins end; `T`'s contents are `Send` (the
    // registries require `K`, `V`, `P: Send`) so freeing on another thread is fine.
    unsafe {
        guard.defer_unchecked(move || {
            let ptr = ptr;
            free(ptr.0);
            add_retired(-(bytes as isize));
        });
    }
}

/// Runs `f` once every thread pinned now has unpinned.
///
/// # Safety
///
/// `f` must be sound to run once, on any thread, after every current pin has ended.
pub(crate) unsafe fn defer<F: FnOnce() + Send + 'static>(guard: &Guard, f: F) {
    // SAFETY: as the caller guarantees.
    unsafe { guard.defer_unchecked(f) };
}

/// Hands `value` to the collector, to be dropped once every current pin has ended.
///
/// # Safety
///
/// `value` may still be read through the bytes it was moved from by threads pinned now, so
/// it must not be dropped before; it must be safe to drop on another thread, and must not
/// borrow anything that could end first (the registries require `Send + 'static`).
pub(crate) unsafe fn defer_drop<T>(guard: &Guard, value: T) {
    add_retired(core::mem::size_of::<T>() as isize);
    let value = SendBox(value);
    // SAFETY: the caller guarantees the value may be dropped on any thread once the
    // current pins end, and outlives the deferral. The closure captures the value alone:
    // crossbeam-epoch keeps up to three words inline and boxes anything larger.
    unsafe {
        guard.defer_unchecked(move || {
            contain(move || drop(value));
            add_retired(-(core::mem::size_of::<T>() as isize));
        });
    }
}

struct SendBox<T>(T);
// SAFETY: only moves the value to the thread that drops it; see `defer_drop`.
unsafe impl<T> Send for SendBox<T> {}

struct SendPtr<T>(*mut T);
// SAFETY: only moves the pointer to the thread that runs the deferred free; see `retire`.
unsafe impl<T> Send for SendPtr<T> {}

/// Pins the epoch and flushes this thread's garbage so that removed entries can be freed.
///
/// Reclamation is incremental: a call frees what the epoch already allows and pushes this
/// thread's pending garbage to the global queue. To wait until everything removed so far is
/// freed (leak accounting, drop-counting tests), call it in a loop until
/// [`Stats::retired_bytes`](crate::Stats::retired_bytes) reaches 0.
pub fn reclaim() {
    let guard = crossbeam_epoch::pin();
    guard.flush();
}

/// Which epoch collector a registry pins.
pub(crate) enum Epoch {
    /// crossbeam-epoch's default collector, with a cached per-thread handle: the fast path.
    Global,
    /// A collector of the embedder's (a fresh one per loom model, or one isolated from the
    /// rest of the process). Each operation registers a participant, which allocates.
    Own(Collector),
}

impl Epoch {
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        match self {
            Epoch::Global => crossbeam_epoch::pin(),
            // The guard keeps its participant alive after the handle drops.
            Epoch::Own(collector) => collector.register().pin(),
        }
    }
}
