//! A sharded counter: writers touch their own cache line, readers sum the shards.
//!
//! Entry and monitor counts change on every register and exit; one shared `AtomicUsize`
//! would bounce its cache line between every scheduler thread. Sums are exact whenever no
//! update is in flight, which is what `count()` and `monitors()` promise.

use crossbeam_utils::CachePadded;

use crate::sync::{thread_shard, AtomicUsize, Ordering};

#[cfg(not(loom))]
const SHARDS: usize = 8;
#[cfg(loom)]
const SHARDS: usize = 2;

pub(crate) struct Counter {
    shards: [CachePadded<AtomicUsize>; SHARDS],
}

impl Counter {
    pub(crate) fn new() -> Counter {
        Counter {
            shards: core::array::from_fn(|_| CachePadded::new(AtomicUsize::new(0))),
        }
    }

    /// Adds `n` on this thread's shard; returns the shard's new value (a cheap local trend
    /// that callers use to decide when to look at the whole sum).
    #[inline]
    pub(crate) fn add(&self, n: usize) -> usize {
        let shard = &self.shards[thread_shard() % SHARDS];
        shard.fetch_add(n, Ordering::Relaxed).wrapping_add(n)
    }

    /// Subtracts `n` on this thread's shard. Shards wrap; only the sum is meaningful.
    #[inline]
    pub(crate) fn sub(&self, n: usize) {
        self.shards[thread_shard() % SHARDS].fetch_sub(n, Ordering::Relaxed);
    }

    /// The sum of all shards: exact when no update is in flight. A racing reader may see a
    /// removal before the insert it undoes; that transient negative reads as 0.
    pub(crate) fn sum(&self) -> usize {
        let sum = self
            .shards
            .iter()
            .fold(0usize, |acc, s| acc.wrapping_add(s.load(Ordering::Relaxed)));
        if (sum as isize) < 0 {
            0
        } else {
            sum
        }
    }
}

impl core::fmt::Debug for Counter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Counter").field(&self.sum()).finish()
    }
}
