//! Model 5: concurrent inserts that finish a migration while a reader probes the table.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{assert_holds_exactly, model, registry_mid_migration};

const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);

/// Under `cfg(loom)` a table starts with two slots, so registering keys 10 and 20 for pid 1
/// up front leaves the name table mid-migration: the next array installed, nothing copied
/// yet. Then pid 1's thread registers key 11 while the model's thread registers key 21 as
/// pid 2, which fills the monitor index too, and looks key 10 up. Every value is its pid.
///
/// Property: migration loses and duplicates nothing. Key 10 is found throughout; at the end
/// `count`, a full `select`, every `lookup` and each pid's `keys` agree exactly, and the
/// tables really have grown.
///
/// Why the interleavings matter: both writers must copy their share of a migration before
/// they write, so they race to claim the one group, one waits for the other's copy, the last
/// copier promotes the new array, and the claims land in it, while pid 2's claim starts a
/// migration of the monitor index under pid 1's lock; meanwhile the reader may probe the old
/// array after its key moved. A key lost or duplicated by any of these shows only in some
/// orders. (Two threads, not three: a separate reader thread multiplies the run time by more
/// than twenty.)
#[test]
fn growth_under_concurrent_inserts() {
    model(|| {
        let (reg, fresh_capacity) = registry_mid_migration(P1);

        let writer = {
            let reg = reg.clone();
            thread::spawn(move || reg.register(P1, 11, P1.get()).unwrap())
        };
        reg.register(P2, 21, P2.get()).unwrap();
        assert_eq!(
            reg.lookup(&10),
            Some((P1, P1.get())),
            "a migration lost key 10"
        );
        writer.join().unwrap();

        assert_holds_exactly(&reg, &[(10, P1), (11, P1), (20, P1), (21, P2)]);
        assert!(
            reg.stats().capacity > fresh_capacity,
            "the tables never grew"
        );
    });
}
