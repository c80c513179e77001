//! Model 13: a reader that meets a group a migration already copied does not look at the
//! records left behind in it.
#![cfg(loom)]

use loom::thread;
use regent::{Duplicate, PartitionBy, Pid};
use regent_loom::model;

/// Hashes a `u64` key or a [`Pid`] to itself (`nohash-hasher`; each hashes with one
/// `write_u64`), so that the model chooses each record's group: a table of `len` home groups
/// puts hash `h` in group `(h >> 3) % len`, and these small hashes all carry tag 0, so a
/// probe compares every record it meets.
type Identity = nohash_hasher::BuildNoHashHasher<u64>;

type Bags = Duplicate<u64, u64, Pid, Identity>;

/// Homes in group 0 of a two-group table.
const READ: Pid = Pid::new(16);
/// Home in group 1; the third spills into the tail group.
const FILLERS: [Pid; 3] = [Pid::new(8), Pid::new(24), Pid::new(40)];
/// `READ`'s first topic, which it alone holds: its leave frees the bag.
const ALONE: u64 = 1 << 3;
/// `READ`'s second topic, and the fillers'.
const SHARED: u64 = 2 << 3;

/// The monitor index (two home groups, sized by `capacity(2)`) is left mid-migration with
/// `READ`'s group copied and the others not: the four pids' monitors pass its load limit,
/// and `READ`'s second registration copies its own group before it turns the copy's word
/// into a list. The record left behind in the old array still names `READ`'s first slot.
/// Then `READ` leaves `ALONE`, whose bag empties and closes, and the epoch is flushed three
/// times, while the model's thread reads `READ`'s keys and values through the monitor
/// index, which still probes the old array first.
///
/// Property: the reads see `READ`'s entries before or after the leave, and never touch
/// memory the leave gave back: the slot, its segment and its bag are freed once the epoch
/// lets them go, and the record left in the copied group still points at them.
///
/// Why the interleavings matter: a reader that pinned before the leave retired the slot
/// keeps it alive; one that pinned after the flushes does not, yet still finds the old
/// record in the old array, which stays current until the last group is copied. Its probe
/// may not even compare that record (a duplicate registry's monitor reads its pid out of the
/// slot it names): the copy in the next array is the truth. Before this model the probe
/// compared first and checked the group's state after, and `mixed_operations_keep_the_
/// registry_consistent` crashed one run in fifteen on a freed bag segment.
#[test]
fn readers_skip_the_records_a_migration_left_behind() {
    model(|| {
        let reg: loom::sync::Arc<Bags> = loom::sync::Arc::new(
            Duplicate::builder()
                .partitions(1)
                .partition_by(PartitionBy::Key)
                .capacity(2)
                .hasher(Identity::default())
                .build(),
        );
        reg.register(READ, ALONE, 1);
        for (value, pid) in (2..).zip(FILLERS) {
            reg.register(pid, SHARED, value);
        }
        assert_eq!(
            reg.stats().migrations,
            1,
            "setup must leave the monitor index mid-migration"
        );
        reg.register(READ, SHARED, 5);
        assert_eq!(
            reg.stats().migrations,
            1,
            "copying READ's group must not finish the migration"
        );

        let leaver = {
            let reg = reg.clone();
            thread::spawn(move || {
                assert_eq!(reg.unregister(READ, &ALONE), 1);
                for _ in 0..3 {
                    regent::reclaim();
                }
            })
        };
        let mut keys = reg.keys(READ);
        keys.sort_unstable();
        assert!(
            keys == [ALONE, SHARED] || keys == [SHARED],
            "keys(READ) = {keys:?}"
        );
        assert_eq!(reg.values(&SHARED, READ), [5]);
        let alone = reg.values(&ALONE, READ);
        assert!(
            alone.is_empty() || alone == [1],
            "values(ALONE, READ) = {alone:?}"
        );
        leaver.join().unwrap();

        assert_eq!(reg.keys(READ), [SHARED]);
        assert!(reg.values(&ALONE, READ).is_empty());
        assert_eq!((reg.count(), reg.monitors()), (4, 4));
    });
}
