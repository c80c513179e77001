//! Bytes per process, split into unique entries, duplicate entries and monitors.
//!
//! `Stats` gives each registry's table bytes and slot capacity as sums over its two kinds
//! of tables (records by key, monitors by pid). Their layout is documented in
//! `engine/docs/table.md`: a group of seven inline records behind an 8-byte control word.
//! With the two record sizes known, capacity and bytes are two equations in the groups of
//! each kind, which this solves. The arrays' spare tail groups and headers make the split
//! off by a few groups per partition, nothing at scale. An array a migration is filling
//! counts in the bytes but not in the capacity, so a registry with a migration in flight,
//! like one whose layout no longer fits, gets no split rather than a guessed one.
//!
//! `Stats` also counts a duplicate registry's bags together with its monitors' key lists
//! (a pid with several memberships lists their marks). [`key_list_bytes`] measures a
//! list on two small registries with the same memberships, one with lists and one
//! without, and the split moves that much per monitor from entries to monitors.

use std::mem::size_of;

use regent::{Duplicate, Pid, Stats};

use super::runtime::Inbox;
use crate::peers::reclaim_until;

/// Slots per group.
const WIDTH: usize = 7;
/// The control word of a group.
const CTRL: usize = 8;

/// A `Unique` entry: key, pid and value inline.
pub const UNIQUE_RECORD: usize = size_of::<(u64, Pid, Inbox)>();
/// A `Duplicate` key record: a pointer to the key's bag.
pub const BAG_RECORD: usize = size_of::<usize>();
/// A monitor: the pid and its lock-and-marks word.
pub const MONITOR_RECORD: usize = size_of::<(Pid, u64)>();

/// Bytes of a registry's record tables and of its monitor tables, or `None` if `stats`
/// does not fit the documented layout.
#[must_use]
pub fn split_tables(stats: &Stats, record: usize, monitor: usize) -> Option<(usize, usize)> {
    if stats.capacity % WIDTH != 0 || stats.migrations != 0 || record == monitor {
        return None;
    }
    let groups = (stats.capacity / WIDTH) as i128;
    let per_group = |size: usize| (CTRL + WIDTH * size) as i128;
    // Bytes beyond what all-monitor groups would take: the record groups' extra size.
    let extra = stats.table_bytes as i128 - groups * per_group(monitor);
    let record_groups = (extra / (per_group(record) - per_group(monitor))).clamp(0, groups);
    let monitor_groups = groups - record_groups;
    if monitor_groups * (WIDTH as i128) < stats.monitors as i128 {
        return None;
    }
    let monitor_bytes = usize::try_from(monitor_groups * per_group(monitor)).ok()?;
    Some((stats.table_bytes.checked_sub(monitor_bytes)?, monitor_bytes))
}

/// Per-process bytes of the two registries at their peak, from their `Stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Split {
    /// Both registries: tables, bags and key lists.
    pub registries: f64,
    pub unique: f64,
    pub duplicate: f64,
    /// The name tables.
    pub unique_entries: Option<f64>,
    /// The topic tables and the bags with their entries.
    pub duplicate_entries: Option<f64>,
    /// Both registries' monitor tables and the monitors' key lists.
    pub monitors: Option<f64>,
}

impl Split {
    /// Splits `unique`'s and `duplicate`'s bytes over `processes`, given the bytes of one
    /// duplicate monitor's key list ([`key_list_bytes`]).
    #[must_use]
    pub fn of(unique: &Stats, duplicate: &Stats, processes: usize, key_list: usize) -> Self {
        let per = |bytes: usize| bytes as f64 / processes.max(1) as f64;
        let owned = |s: &Stats| s.table_bytes + s.entry_bytes;
        let mut split = Split {
            registries: per(owned(unique) + owned(duplicate)),
            unique: per(owned(unique)),
            duplicate: per(owned(duplicate)),
            ..Split::default()
        };
        let names = split_tables(unique, UNIQUE_RECORD, MONITOR_RECORD);
        let topics = split_tables(duplicate, BAG_RECORD, MONITOR_RECORD);
        let lists = (key_list * duplicate.monitors).min(duplicate.entry_bytes);
        if let (Some((names, name_monitors)), Some((topics, topic_monitors))) = (names, topics) {
            split.unique_entries = Some(per(names));
            split.duplicate_entries = Some(per(topics + duplicate.entry_bytes - lists));
            // A unique pid has a key list only if it holds several names: none here.
            split.monitors = Some(per(name_monitors
                + unique.entry_bytes
                + topic_monitors
                + lists));
        }
        split
    }
}

/// The bytes of a duplicate monitor's key list when its pid holds `memberships` entries:
/// the difference in `Stats::entry_bytes` between two small registries with the same
/// entries under the same keys, held by `memberships` entries per pid in one and one per
/// pid in the other, so that their bags are alike.
#[must_use]
pub fn key_list_bytes(memberships: usize) -> usize {
    const PIDS: usize = 1_024;
    const KEYS: usize = 64;
    if memberships < 2 {
        return 0;
    }
    let lists: Duplicate<u64, Inbox, Pid> = Duplicate::builder().partitions(1).build();
    let flat: Duplicate<u64, Inbox, Pid> = Duplicate::builder().partitions(1).build();
    for p in 0..PIDS {
        for m in 0..memberships {
            let entry = (p * memberships + m) as u64;
            let key = entry % KEYS as u64;
            lists.register(Pid::new(p as u64), key, Inbox::new(p as u64));
            flat.register(Pid::new(entry), key, Inbox::new(entry));
        }
    }
    let bytes = lists
        .stats()
        .entry_bytes
        .saturating_sub(flat.stats().entry_bytes)
        / PIDS;
    // Freed before the caller reads its baseline.
    reclaim_until(|| lists.stats().retired_bytes == 0);
    bytes
}

#[cfg(test)]
mod tests {
    use regent::{Pid, Unique};

    use super::{key_list_bytes, split_tables, MONITOR_RECORD, UNIQUE_RECORD};
    use crate::scale::runtime::Inbox;

    #[test]
    fn record_sizes_are_the_documented_ones() {
        assert_eq!((UNIQUE_RECORD, MONITOR_RECORD), (24, 16));
    }

    /// A unique registry holds as many monitors as entries, in tables that grow alike, so
    /// the split halves its slots.
    #[test]
    fn splits_a_real_registry() {
        let registry: Unique<u64, Inbox, Pid> = Unique::builder().partitions(2).build();
        for i in 0..100_000 {
            registry
                .register(
                    Pid::new(i),
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    Inbox::new(i),
                )
                .unwrap();
        }
        // Growth is cooperative: a migration the fill left in flight advances only as
        // writers help it, and `split_tables` refuses a registry mid-migration. Throwaway
        // registrations, reported down at once, finish it (as `World::finish_migrations`).
        let mut k = 1 << 40;
        while registry.stats().migrations != 0 {
            registry.register(Pid::new(k), k, Inbox::new(k)).unwrap();
            registry.process_down(Pid::new(k));
            k += 1;
        }
        let stats = registry.stats();
        let (names, monitors) = split_tables(&stats, UNIQUE_RECORD, MONITOR_RECORD).unwrap();
        assert_eq!(names + monitors, stats.table_bytes);
        let ratio = names as f64 / monitors as f64;
        let slot = |record: usize| record as f64 + 8.0 / 7.0;
        let expected = slot(UNIQUE_RECORD) / slot(MONITOR_RECORD);
        assert!(
            (ratio / expected - 1.0).abs() < 0.35,
            "names {names}, monitors {monitors}"
        );
    }

    #[test]
    fn key_lists_cost_more_with_more_memberships() {
        let (two, many) = (key_list_bytes(2), key_list_bytes(9));
        assert_eq!(key_list_bytes(1), 0);
        assert!(two >= 16 && many > two, "{two} {many}");
    }
}
