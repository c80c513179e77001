//! Reads of a table that stays mid-migration, after the records a migration copied changed
//! in the next array and what the old copies point to was freed.
//!
//! A migration copies a table group by group, as writers pass; the old array stays current
//! until the last group is copied, so a registry whose writers stop can sit mid-migration for
//! good. A copied group's records are left behind as they were, and their originals in the
//! next array may since have been removed. A reader must not even compare them: in a
//! duplicate registry a monitor reads its pid out of the slot it names, and a unique
//! registry's key may own heap bytes. Both tests use an identity hasher to put each record in
//! a chosen group. Before the fix, both read freed memory: valgrind reports it (CI runs this
//! file under memcheck, `scripts/valgrind.sh`), and `mixed_operations_keep_the_registry_
//! consistent` crashed on it one run in fifteen. Loom model 13 (`loom-tests/tests/
//! migrated_groups.rs`) checks the same protocol under every interleaving.

use std::hash::{Hash, Hasher};

use regent::{Duplicate, Pid, Unique};

/// Hashes a `u64` to itself (`nohash-hasher`): a table of `len` home groups puts hash `h` in
/// group `(h >> 3) % len`, and a fresh table has 4 home groups of 7 slots and starts
/// migrating at its 25th record. Keys and pids each hash with one `write_u64`.
type Fixed = nohash_hasher::BuildNoHashHasher<u64>;

/// A hash in home group `group` of a fresh table, the `i`-th of them.
fn in_group(group: u64, i: u64) -> u64 {
    (4 * i + group) << 3
}

/// Flushes the epoch until everything removed so far is freed.
fn drain(stats: impl Fn() -> regent::Stats) {
    while stats().retired_bytes > 0 {
        regent::reclaim();
    }
}

/// Duplicate registry: `read`'s monitor is copied, the copy's word becomes a list, and
/// `read` then leaves the topic it alone held, so the slot the record left behind names is
/// freed with its bag; `read`'s keys and values are then read through the old array.
#[test]
fn duplicate_reads_skip_monitors_a_migration_left_behind() {
    let reg: Duplicate<u64, u64, Pid, Fixed> = Duplicate::builder()
        .partitions(1)
        .hasher(Fixed::default())
        .build();
    let (alone, shared) = (1 << 3, 2 << 3);
    let read = Pid::new(in_group(0, 1));
    reg.register(read, alone, 0);
    // In group 1, spilling over into groups 2 to 4.
    for i in 0..24 {
        reg.register(Pid::new(in_group(1, i)), shared, i);
    }
    assert_eq!(
        reg.stats().migrations,
        1,
        "the monitor index must be migrating"
    );
    // Copies groups 0 to 3 (`read`'s among them) and turns the copy's word into a list.
    reg.register(read, shared, 100);
    // Copies groups 4 to 7; the bag of `alone` closes.
    assert_eq!(reg.unregister(read, &alone), 1);
    assert_eq!(
        reg.stats().migrations,
        1,
        "the migration must still be under way"
    );
    drain(|| reg.stats());

    assert_eq!(reg.keys(read), [shared]);
    assert_eq!(reg.values(&shared, read), [100]);
    assert!(reg.values(&alone, read).is_empty());
    assert_eq!((reg.count(), reg.monitors()), (25, 25));
    assert_eq!(reg.process_down(read), 1);
    assert_eq!((reg.count(), reg.monitors()), (24, 24));
}

/// A key that owns heap bytes, hashed by its id alone and compared by both fields.
#[derive(Debug, PartialEq, Eq)]
struct Named {
    id: u64,
    name: Box<str>,
}

impl Hash for Named {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.id);
    }
}

fn named(id: u64) -> Named {
    Named {
        id,
        name: format!("name {id}").into(),
    }
}

/// Unique registry: a key's record is copied and the copy unregistered, so the key's heap
/// bytes, which the record left behind still points to, are freed; the key is then looked
/// up, registered again and looked up through the old array.
#[test]
fn unique_reads_skip_keys_a_migration_left_behind() {
    let reg: Unique<Named, u64, Pid, Fixed> = Unique::builder()
        .partitions(1)
        .hasher(Fixed::default())
        .build();
    let gone = in_group(0, 1);
    reg.register(Pid::new(1), named(gone), 0).unwrap();
    // One pid holds them all, so that only the name table migrates.
    for i in 0..24 {
        reg.register(Pid::new(2), named(in_group(1, i)), i).unwrap();
    }
    assert_eq!(
        reg.stats().migrations,
        1,
        "the name table must be migrating"
    );
    // Copies groups 0 to 3 (the key's among them) and removes the copy.
    assert!(reg.unregister(Pid::new(1), &named(gone)));
    assert_eq!(
        reg.stats().migrations,
        1,
        "the migration must still be under way"
    );
    drain(|| reg.stats());

    assert_eq!(reg.lookup(&named(gone)), None);
    assert_eq!(reg.lookup(&named(in_group(1, 3))), Some((Pid::new(2), 3)));
    assert_eq!(reg.count(), 24);
}
