//! What a registry holds, for watching table size and leak accounting.

/// A snapshot of a registry's size and memory, from [`Unique::stats`](crate::Unique::stats).
///
/// Counts are exact when no operation is in flight. Bytes are what the registry's own
/// structures hold on the heap (the tables, with their inline records, and the monitors'
/// key lists), not allocator overhead; `retired_bytes` is process-wide because
/// reclamation is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Live entries (`count()`).
    pub entries: usize,
    /// Processes holding at least one entry (`monitors()`).
    pub monitors: usize,
    /// Slots in the current arrays of all tables (names and monitor index).
    pub capacity: usize,
    /// Bytes of the tables (control words and inline records), including arrays being
    /// migrated into.
    pub table_bytes: usize,
    /// Bytes held outside the tables: the key lists of pids that hold more than one key.
    pub entry_bytes: usize,
    /// Bytes removed from any regent registry in this process and not yet reclaimed by the
    /// epoch: grows while a thread stays pinned, drains when it unpins.
    pub retired_bytes: usize,
    /// Tables with a migration (growth or compaction) under way.
    pub migrations: usize,
    /// The monitor index's share of the bytes above: its tables (counted in `table_bytes`)
    /// and the key lists of pids that hold several entries (counted in `entry_bytes`).
    pub monitor_bytes: usize,
    /// Panics raised by keys' and values' `Drop` impls that regent caught, in any registry
    /// of this process since it started (process-wide, as `retired_bytes`). regent drops
    /// removed keys and values late, in whichever thread collects the epoch's garbage, so it
    /// catches such a panic where it happens (the panic hook has reported it by then) rather
    /// than let it surface in an unrelated call; see the crate docs, "Panics in `Drop`".
    pub drop_panics: usize,
}

impl Stats {
    /// `table_bytes + entry_bytes + retired_bytes`.
    #[must_use]
    pub fn total_bytes(&self) -> usize {
        self.table_bytes + self.entry_bytes + self.retired_bytes
    }
}
