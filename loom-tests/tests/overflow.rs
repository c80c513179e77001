//! Model 15: a record placed past a full group, and readers that stop at full groups.
#![cfg(loom)]

use std::hash::BuildHasher;

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry_with_capacity, FixedHasher};

/// Home groups of the model's table: capacity 3 at two slots a group (under loom) gives 4.
const HOME_BITS: u64 = 0b11 << 3;

/// Keys whose home group is the same as 7's, the first three after it.
fn same_home() -> [u64; 3] {
    let home = |k: u64| FixedHasher::default().hash_one(k) & HOME_BITS;
    let mut keys = (8..).filter(|&k| home(k) == home(7));
    [(); 3].map(|()| keys.next().expect("keys share a home group"))
}

/// Two keys fill their home group; a third key with that home is registered by another
/// thread, which places it in the next group, while the model's thread looks it up twice
/// and also looks up a fourth key of that home that nobody registers.
///
/// Property: the looked-up key is seen with its owner or not at all, never seen and then
/// lost; after the join it is found; the absent key is never found; the counts add up.
///
/// Why the interleavings matter: a reader stops at a full group unless it carries the
/// OVERFLOW mark, which the registrant sets on the home group before it publishes the
/// record in the next one. A registrant that published first, or not at all, would let a
/// reader stop at the full home group and miss a registered key; a planted bug that never
/// sets the mark fails this model.
#[test]
fn a_reader_goes_past_a_full_group_once_a_record_was_placed_past_it() {
    let [filler, displaced, absent] = same_home();
    model(move || {
        let reg = registry_with_capacity::<u64>(3);
        reg.register(Pid::new(1), 7, 1).unwrap();
        reg.register(Pid::new(2), filler, 2).unwrap();

        let registrant = {
            let reg = reg.clone();
            thread::spawn(move || reg.register(Pid::new(3), displaced, 3).unwrap())
        };
        let first = reg.lookup(&displaced);
        let second = reg.lookup(&displaced);
        assert_eq!(reg.lookup(&absent), None);
        registrant.join().unwrap();

        for seen in [first, second] {
            assert!(matches!(seen, None | Some((_, 3))), "a lookup saw {seen:?}");
        }
        assert!(
            !(first.is_some() && second.is_none()),
            "a lookup found the key and the next one lost it"
        );
        assert_eq!(reg.lookup(&displaced), Some((Pid::new(3), 3)));
        assert_eq!(reg.lookup(&7), Some((Pid::new(1), 1)));
        assert_eq!(reg.lookup(&filler), Some((Pid::new(2), 2)));
        assert_eq!(reg.lookup(&absent), None);
        assert_eq!(reg.count(), 3);
    });
}
