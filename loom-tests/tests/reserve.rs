//! Model 16: `reserve` copies a whole table in one thread while another registers into it.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{assert_holds_exactly, model, registry_mid_migration};

const P1: Pid = Pid::new(1);

/// As in model 5, registering keys 10 and 20 for pid 1 up front leaves the name table
/// mid-migration. Then a spawned thread calls `reserve(2)`: it must finish that migration
/// (copying the groups nobody claimed, waiting for a group the other thread is copying),
/// promote the new array, find it too small for two more keys, install a larger one and
/// copy into that as well, then do the same to the monitor index. Meanwhile the model's
/// thread registers key 21 for pid 1, holding the lock on pid 1's monitor record while the
/// reserver may freeze and copy it, and looks key 10 up.
///
/// Property: nothing is lost or duplicated by migrations the reserver runs to the end while
/// a writer helps and writes into the arrays it moves between: key 10 is found throughout;
/// at the end `count`, a full `select`, every `lookup`, `keys` and `monitors` agree
/// exactly; no migration is left under way; and two more keys, with two more pids, then
/// fit without one.
///
/// Why the interleavings matter: the writer may copy its share of the first migration
/// before or after the reserver claims every group, may claim a slot in the array the
/// reserver is about to leave (it must then copy its probe sequence into the next one
/// first), and may find its monitor record frozen and copied under its lock (it follows
/// the record into the next array). A writer that sees a frozen group or record must also
/// see the array it moved to: with the freeze made Acquire only, this model fails
/// (`Model exceeded maximum number of branches`, the writer retrying forever on a stale
/// `next`). (Pid 2 for the writer, which makes the monitor index grow from both threads,
/// took this model from 80 s to 8 minutes at two preemptions.)
#[test]
fn reserve_races_a_writer_through_two_migrations() {
    model(|| {
        let (reg, _) = registry_mid_migration(P1);

        let reserver = {
            let reg = reg.clone();
            thread::spawn(move || reg.reserve(2))
        };
        reg.register(P1, 21, P1.get()).unwrap();
        assert_eq!(
            reg.lookup(&10),
            Some((P1, P1.get())),
            "a migration lost key 10"
        );
        reserver.join().unwrap();

        assert_holds_exactly(&reg, &[(10, P1), (20, P1), (21, P1)]);
        assert_eq!(reg.stats().migrations, 0, "a migration left under way");
        // The reservation was for the live keys and pids and two more of each.
        for key in 30..32 {
            reg.register(Pid::new(key), key, key).unwrap();
            assert_eq!(reg.stats().migrations, 0, "key {key} needed a growth");
        }
    });
}
