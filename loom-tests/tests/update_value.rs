//! Model 6: `update_value` racing lookups.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry};

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
