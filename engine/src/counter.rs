//! A sharded counter: writers touch their own cache line, readers sum the shards.
//!
//! Entry and monitor counts change on every register and exit; one shared `AtomicUsize`
//! would bounce its cache line between every scheduler thread. Sums are exact whenever no
//! update is in flight, which is what `count()` and `monitors()` promise.
//!
//! The first `OWNED` thread indices (`sync::thread_index`: small, and held by one live
//! thread at a time) each own a slot that only they write, with a plain load and store: a
//! locked read-modify-write costs as much as the rest of a small update, and a
//! registration makes several. Threads past them, and threads tearing down their locals,
//! share the other `SHARDS` slots through `fetch_add`. Under loom two owned slots and two
//! shared ones keep the models small and still take both paths (model 14, `counters.rs`).

use crossbeam_utils::CachePadded;

use crate::sync::{thread_index, AtomicUsize, Ordering};

#[cfg(not(loom))]
const OWNED: usize = 8;
#[cfg(not(loom))]
const SHARDS: usize = 8;
#[cfg(loom)]
const OWNED: usize = 2;
#[cfg(loom)]
const SHARDS: usize = 2;

pub(crate) struct Counter {
    /// Slot `i` is written only by the thread holding index `i`.
    owned: [CachePadded<AtomicUsize>; OWNED],
    shared: [CachePadded<AtomicUsize>; SHARDS],
}

impl Counter {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Counter {
        Counter {
            owned: [const { CachePadded::new(AtomicUsize::new(0)) }; OWNED],
            shared: [const { CachePadded::new(AtomicUsize::new(0)) }; SHARDS],
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Counter {
        Counter {
            owned: core::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
            shared: core::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
        }
    }

    /// Adds `n` (wrapping: adding `0usize.wrapping_sub(n)` subtracts); returns this
    /// thread's slot's new value, a cheap local trend that callers use to decide when to
    /// look at the whole sum.
    #[inline]
    pub(crate) fn add(&self, n: usize) -> usize {
        let index = thread_index();
        if let Some(slot) = index.and_then(|i| self.owned.get(i)) {
            // Relaxed load and store: this thread is the only writer of its slot (see the
            // module docs), and readers want no ordering from a count.
            let value = slot.load(Ordering::Relaxed).wrapping_add(n);
            slot.store(value, Ordering::Relaxed);
            return value;
        }
        let shard = &self.shared[index.unwrap_or(0) % SHARDS];
        shard.fetch_add(n, Ordering::Relaxed).wrapping_add(n)
    }

    /// Subtracts `n` on this thread's slot. Slots wrap; only the sum is meaningful.
    #[inline]
    pub(crate) fn sub(&self, n: usize) {
        self.add(n.wrapping_neg());
    }

    /// The sum of all slots, as a signed number: exact when no update is in flight.
    pub(crate) fn signed_sum(&self) -> isize {
        self.owned
            .iter()
            .chain(&self.shared)
            .fold(0usize, |acc, s| acc.wrapping_add(s.load(Ordering::Relaxed))) as isize
    }

    /// The sum of all slots: exact when no update is in flight. A racing reader may see a
    /// removal before the insert it undoes; that transient negative reads as 0.
    pub(crate) fn sum(&self) -> usize {
        self.signed_sum().max(0) as usize
    }
}

impl core::fmt::Debug for Counter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Counter").field(&self.sum()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// More threads than owned slots add and subtract at once, each exiting while the
    /// others still run, and later threads inherit the exited ones' slots: the sum is
    /// exact, so no slot had two writers and no count was lost in a hand-over.
    #[test]
    fn sums_are_exact_across_threads_owned_and_shared() {
        let counter = Counter::new();
        for round in 0..4 {
            std::thread::scope(|s| {
                for t in 0..(2 * OWNED + 3) {
                    let counter = &counter;
                    s.spawn(move || {
                        for i in 0..20_000 {
                            counter.add(3);
                            if i % 2 == 0 {
                                counter.sub(1);
                            }
                        }
                        // Threads leave at different times, so that indices change hands
                        // while others still count.
                        std::thread::sleep(std::time::Duration::from_micros(t as u64 * 50));
                    });
                }
            });
            let per_thread = 20_000 * 3 - 10_000;
            let expected = (round + 1) * (2 * OWNED + 3) * per_thread;
            assert_eq!(counter.sum(), expected, "round {round}");
        }
        // The owned slots did take part (a bug that bypassed them would still sum right).
        assert!(counter.owned.iter().any(|s| s.load(Ordering::Relaxed) != 0));
    }

    #[test]
    fn a_negative_transient_reads_as_zero() {
        let counter = Counter::new();
        counter.sub(5);
        assert_eq!(counter.sum(), 0);
        assert_eq!(counter.signed_sum(), -5);
        counter.add(7);
        assert_eq!(counter.sum(), 2);
    }
}
