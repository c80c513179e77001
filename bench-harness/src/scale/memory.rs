//! Bytes per process, split into unique entries, duplicate entries and monitors.
//!
//! Each registry's `Stats` gives its bytes (tables, bags, key lists) and the monitor
//! index's share of them (`monitor_bytes`: the pid tables and the key lists of pids that
//! hold several entries), so the split is a subtraction.

use regent::Stats;

/// Per-process bytes of the two registries at their peak, from their `Stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Split {
    /// Both registries: tables, bags and key lists.
    pub registries: f64,
    pub unique: f64,
    pub duplicate: f64,
    /// The name tables.
    pub unique_entries: f64,
    /// The topic tables and the bags with their entries.
    pub duplicate_entries: f64,
    /// Both registries' monitor tables and the monitors' key lists.
    pub monitors: f64,
}

impl Split {
    /// Splits `unique`'s and `duplicate`'s bytes over `processes`.
    #[must_use]
    pub fn of(unique: &Stats, duplicate: &Stats, processes: usize) -> Self {
        let per = |bytes: usize| bytes as f64 / processes.max(1) as f64;
        let owned = |s: &Stats| s.table_bytes + s.entry_bytes;
        let entries = |s: &Stats| owned(s).saturating_sub(s.monitor_bytes);
        Split {
            registries: per(owned(unique) + owned(duplicate)),
            unique: per(owned(unique)),
            duplicate: per(owned(duplicate)),
            unique_entries: per(entries(unique)),
            duplicate_entries: per(entries(duplicate)),
            monitors: per(unique.monitor_bytes + duplicate.monitor_bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use regent::{Duplicate, Pid, Unique};

    use super::Split;

    /// The parts add up to the whole, and a duplicate registry's monitors (one word per
    /// pid, the pid read from its slot) take less than a unique registry's (pid and word)
    /// for as many pids in tables of the same size.
    #[test]
    fn splits_real_registries() {
        const N: u64 = 100_000;
        let unique: Unique<u64, u64, Pid> = Unique::builder().partitions(2).build();
        let duplicate: Duplicate<u64, u64, Pid> = Duplicate::builder().partitions(2).build();
        for i in 0..N {
            unique.register(Pid::new(i), i, i).unwrap();
            duplicate.register(Pid::new(i), i % 1_000, i);
        }
        let (u, d) = (unique.stats(), duplicate.stats());
        assert_eq!((u.monitors, d.monitors), (N as usize, N as usize));
        let split = Split::of(&u, &d, N as usize);
        let sum = split.unique_entries + split.duplicate_entries + split.monitors;
        assert!((sum - split.registries).abs() < 1e-6, "{split:?}");
        // Divided separately, the parts may differ from the whole in the last bit.
        assert!((split.unique + split.duplicate - split.registries).abs() < 1e-6);
        // Same pids, same partitions, same growth: the tables have the same slots.
        assert!(
            d.monitor_bytes * 3 < u.monitor_bytes * 2,
            "duplicate monitors {} B, unique {} B",
            d.monitor_bytes,
            u.monitor_bytes
        );
    }
}
