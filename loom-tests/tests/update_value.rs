//! Model 6: `update_value` racing lookups, and an update of another key in its group.
#![cfg(loom)]

use std::hash::BuildHasher;

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry, registry_with_capacity, FixedHasher};

const KEY: u64 = 7;
const OWNER: Pid = Pid::new(1);
const INTRUDER: Pid = Pid::new(2);

/// The owner updates its value twice (0 → 1 → 2) while the model's own thread looks the key
/// up, tries an update as a pid that does not own the key, and looks it up again.
///
/// Property: each update returns `(new, old)` with `new == old + 1` and no update is lost;
/// a reader sees only 0, 1 or 2 with the owner's pid, and never goes back (a later lookup in
/// the same thread sees the same or a newer value); a non-owner's update changes nothing and
/// never runs its closure.
///
/// Why the interleavings matter: an update publishes a new entry in place of the old one
/// and retires the old, while readers keep probing without a lock. A reader may load the old
/// entry just before the swap and clone its value after it, and the owner's second update
/// must start from the first one's value, not from what a reader still holds. Lost updates,
/// freed values and a reader going back in time appear only in some of those orders.
#[test]
fn update_value_races_lookups() {
    model(|| {
        let reg = registry::<u64>();
        reg.register(OWNER, KEY, 0).unwrap();

        let owner = {
            let reg = reg.clone();
            thread::spawn(move || {
                for old in 0..2 {
                    let updated = reg.update_value(OWNER, &KEY, |&value| value + 1);
                    assert_eq!(updated, Some((old + 1, old)));
                }
            })
        };
        let before = reg.lookup(&KEY);
        let denied = reg.update_value(INTRUDER, &KEY, |_| unreachable!("ran a non-owner's update"));
        let after = reg.lookup(&KEY);
        owner.join().unwrap();

        assert_eq!(denied, None);
        let (before, after) = (before.unwrap(), after.unwrap());
        assert_eq!((before.0, after.0), (OWNER, OWNER));
        assert!(
            before.1 <= after.1 && after.1 <= 2,
            "lookups saw {before:?} then {after:?}"
        );
        assert_eq!(reg.lookup(&KEY), Some((OWNER, 2)));
    });
}

/// Two owners update their keys at once, and the keys share a group (a table of two home
/// groups, keys with the same home), while the model's thread also looks one of them up.
///
/// Property: both updates return `(1, 0)` and both keys end at 1 with their owners; the
/// reader sees 0 or 1; afterwards the group can be migrated and its keys removed.
///
/// Why the interleavings matter: a group marks one record `UPDATING` at a time (in its
/// state byte), so the second updater must wait until the first has published its
/// replacement and cleared the mark, and must then find its own record still current. An
/// update that cleared the other's mark, overwrote its slot byte, or went ahead without
/// the mark shows here as a lost update, a key gone, a reader seeing nothing, or a mark left
/// behind that no migration or removal gets past (a planted bug of the last kind, an
/// update that does not wait, fails this model).
#[test]
fn updates_in_one_group_wait_their_turn() {
    const A: Pid = Pid::new(1);
    const B: Pid = Pid::new(2);
    // Two home groups (capacity 2 at two slots a group): pick keys with the same home.
    let home = |k: u64| (FixedHasher::default().hash_one(k) >> 3) & 1;
    let first = 7;
    let second = (first + 1..)
        .find(|&k| home(k) == home(first))
        .expect("a key with the same home group");
    model(move || {
        let reg = registry_with_capacity::<u64>(2);
        reg.register(A, first, 0).unwrap();
        reg.register(B, second, 0).unwrap();

        let other = {
            let reg = reg.clone();
            thread::spawn(move || reg.update_value(A, &first, |&value| value + 1))
        };
        let updated = reg.update_value(B, &second, |&value| value + 1);
        let seen = reg.lookup(&first);
        assert_eq!(other.join().unwrap(), Some((1, 0)));
        assert_eq!(updated, Some((1, 0)));

        assert!(matches!(seen, Some((A, 0 | 1))), "a lookup saw {seen:?}");
        assert_eq!(reg.lookup(&first), Some((A, 1)));
        assert_eq!(reg.lookup(&second), Some((B, 1)));
        // The group is free again: the migration the updates started (they filled the
        // table) freezes it, and both records are removable.
        reg.register(Pid::new(3), first + second, 0).unwrap();
        assert!(reg.unregister(A, &first));
        assert!(reg.unregister(B, &second));
        assert_eq!(reg.count(), 1);
    });
}
