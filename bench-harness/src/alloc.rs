//! A counting global allocator: mimalloc underneath, live requested bytes on top.
//!
//! Live bytes are kept in per-thread-sharded counters so that counting does not add a
//! contended cache line to every allocation: a shared counter would tax the peers that
//! allocate per entry (regent's nodes) and spare those that allocate per resize. The sum of
//! the shards is exact whenever the threads that allocated have been joined.
//!
//! The high-water mark is sampled, not exact: a shard cannot see the global sum cheaply,
//! so [`peak`] is raised at every allocation of at least [`PEAK_SAMPLE_BYTES`] and at every
//! [`live`] read. Peaks in a registry come from table growth, where the new array is
//! allocated while the old one is still live, so the samples land on them.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use mimalloc::MiMalloc;

/// Allocations at least this large also sample the global sum into the high-water mark.
pub const PEAK_SAMPLE_BYTES: usize = 64 * 1024;

const SHARDS: usize = 64;

/// Install with `#[global_allocator] static ALLOC: Counting = Counting;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

// Padded so that two threads' shards never share a cache line.
#[repr(align(128))]
struct Shard(AtomicIsize);

// A shard may go negative: memory is often freed by a thread other than its allocator.
static LIVE: [Shard; SHARDS] = [const { Shard(AtomicIsize::new(0)) }; SHARDS];
static PEAK: AtomicUsize = AtomicUsize::new(0);
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialized and without `Drop`: reading it never allocates and stays valid
    // during thread teardown, which an allocator requires.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn shard() -> &'static AtomicIsize {
    let index = SHARD.with(|s| {
        if s.get() == usize::MAX {
            s.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS);
        }
        s.get()
    });
    &LIVE[index].0
}

// The `as isize` casts cannot wrap: no allocation exceeds `isize::MAX` bytes.
fn grew(bytes: usize) {
    shard().fetch_add(bytes as isize, Ordering::Relaxed);
    if bytes >= PEAK_SAMPLE_BYTES {
        sample();
    }
}

fn shrank(bytes: usize) {
    shard().fetch_sub(bytes as isize, Ordering::Relaxed);
}

/// Bytes currently allocated (as requested, not as rounded up by mimalloc). Also samples
/// the high-water mark.
#[must_use]
pub fn live() -> usize {
    sample()
}

fn sample() -> usize {
    let sum: isize = LIVE.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    // Racing frees can make a momentary sum negative; nothing is live then.
    let live = usize::try_from(sum).unwrap_or(0);
    PEAK.fetch_max(live, Ordering::Relaxed);
    live
}

/// The highest [`live`] value sampled since the last [`reset_peak`].
#[must_use]
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Restarts the high-water mark from the current live bytes.
pub fn reset_peak() {
    PEAK.store(0, Ordering::Relaxed);
    sample();
}

// SAFETY: every method forwards to `MiMalloc` with the caller's layout and pointer
// unchanged, so `MiMalloc`'s `GlobalAlloc` guarantees carry over; the counting around it
// touches only atomics and a const thread-local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which we forward.
        let ptr = unsafe { MiMalloc.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc_zeroed`'s contract, which we forward.
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator, that is by `MiMalloc`, with `layout`.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `MiMalloc` with `layout`; the caller upholds the
        // rest of `realloc`'s contract.
        let new = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // On failure the old block stays allocated and the count stays as it was.
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}
