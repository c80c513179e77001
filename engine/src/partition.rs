//! Splitting the hash space into partitions, one table each.

use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;

use crate::raw::{RawTable, Record};
use crate::stats::Stats;

/// The most partitions a registry accepts.
pub(crate) const MAX_PARTITIONS: usize = 1 << 16;

/// A hash's partition is read from its bits from here up, the top 16: a table takes its
/// home group from the low bits and its tags from the 8 below these, so the three choices
/// stay independent.
const PARTITION_BITS: u32 = 64 - MAX_PARTITIONS.trailing_zeros();

/// `n` tables, picked by the lowest `log2(n)` of a hash's top 16 bits.
pub(crate) struct Partitioned<N> {
    tables: Box<[CachePadded<RawTable<N>>]>,
    /// `tables.len() - 1`: the length is a power of two.
    mask: usize,
}

impl<N> Partitioned<N> {
    /// `partitions` (a power of two) tables sized for `capacity` entries in all.
    pub(crate) fn new(partitions: usize, capacity: usize) -> Partitioned<N> {
        debug_assert!(partitions.is_power_of_two() && partitions <= MAX_PARTITIONS);
        let per_table = capacity.div_ceil(partitions);
        Partitioned {
            tables: (0..partitions)
                .map(|_| CachePadded::new(RawTable::with_capacity(per_table)))
                .collect(),
            mask: partitions - 1,
        }
    }

    /// The table of `hash`. Every operation starts here: a shift, a mask and a load.
    #[inline]
    pub(crate) fn get(&self, hash: u64) -> &RawTable<N> {
        let index = (hash >> PARTITION_BITS) as usize & self.mask;
        debug_assert!(index < self.tables.len());
        // SAFETY: `mask` is `tables.len() - 1` with the length a power of two, so
        // `index <= mask < tables.len()`.
        unsafe { self.tables.get_unchecked(index) }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &RawTable<N>> {
        self.tables.iter().map(|t| &**t)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut RawTable<N>> {
        self.tables.iter_mut().map(|t| &mut **t)
    }

    pub(crate) fn len(&self) -> usize {
        self.tables.len()
    }

    /// Makes room in every table for its share of `additional` more entries, as `new` shares
    /// a capacity out: see `RawTable::reserve`.
    pub(crate) fn reserve(&self, additional: usize, rehash: &impl Fn(&N) -> u64, guard: &Guard)
    where
        N: Record,
    {
        let per_table = additional.div_ceil(self.tables.len());
        for table in self.iter() {
            table.reserve(per_table, rehash, guard);
        }
    }

    /// Adds these tables' capacity, bytes and migrations under way to `stats`; returns the
    /// bytes it added.
    pub(crate) fn add_to(&self, stats: &mut Stats, guard: &Guard) -> usize {
        let mut added = 0;
        for table in self.iter() {
            let (bytes, migrating) = table.bytes(guard);
            stats.capacity += table.capacity(guard);
            added += bytes;
            stats.migrations += usize::from(migrating);
        }
        stats.table_bytes += added;
        added
    }
}

/// The default partition count: available cores rounded up to a power of two.
pub(crate) fn default_partitions() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .next_power_of_two()
}

/// Validates a requested partition count: rounded up to a power of two.
///
/// # Panics
///
/// If `n` is 0 or more than `MAX_PARTITIONS`.
pub(crate) fn checked_partitions(n: usize) -> usize {
    assert!(n > 0, "a registry needs at least one partition");
    assert!(
        n <= MAX_PARTITIONS,
        "at most {MAX_PARTITIONS} partitions, got {n}"
    );
    n.next_power_of_two()
}
