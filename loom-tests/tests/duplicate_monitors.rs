//! Model 11: a duplicate registry's monitor index, whose records name their pid only
//! through the slots they point to.
#![cfg(loom)]

use loom::thread;
use regent::{PartitionBy, Pid};
use regent_loom::{bags, model, model_tracked, pid_sharing_probes_with};

const TOPIC: u64 = 3;
const OTHER_TOPIC: u64 = 4;
const LEAVER: Pid = Pid::new(1);

/// A subscriber leaves its topic, the epoch passes twice, and another pid whose probe meets
/// the leaver's monitor record joins the topic (reusing the leaver's slot once it is free),
/// while the main thread reads the leaver's entries through the monitor index (`values`,
/// `keys`) and clones each value. Values are `(id, Tracked)`.
///
/// Property: the reader sees the leaver's own entry or nothing: never the joiner's value
/// under the leaver's pid, never a dropped value; the joiner gets its own monitor (two
/// monitors never merge), and every value is dropped exactly once.
///
/// Why the interleavings matter: a monitor record holds the slot's address, not the pid; a
/// probe that meets a record reads the pid from that slot. The slot may be reclaimed and
/// rewritten by the joiner only after the leaver's record stopped naming it and every
/// thread pinned before that unpinned. A slot retired while its record still named it (the
/// order before this model) lets a thread that pins in between read the slot after its
/// reuse: another pid, or a value being written.
#[test]
fn a_pid_lookup_races_leave_reclaim_and_reuse() {
    let joiner = pid_sharing_probes_with(LEAVER);
    model_tracked(move |ledger| {
        let reg = bags(PartitionBy::Key);
        reg.register(LEAVER, TOPIC, (1, ledger.value(LEAVER)));

        let writer = {
            let (reg, ledger) = (reg.clone(), ledger.clone());
            thread::spawn(move || {
                assert_eq!(reg.unregister(LEAVER, &TOPIC), 1);
                regent::reclaim();
                regent::reclaim();
                reg.register(joiner, TOPIC, (2, ledger.value(joiner)));
            })
        };
        let values = reg.values(&TOPIC, LEAVER);
        assert!(values.len() <= 1, "values(leaver) = {values:?}");
        for (id, value) in &values {
            assert_eq!((*id, value.owner), (1, LEAVER), "another entry's value");
            let _alive = value.clone();
        }
        let keys = reg.keys(LEAVER);
        assert!(
            keys.is_empty() || keys == [TOPIC],
            "keys(leaver) = {keys:?}"
        );
        writer.join().unwrap();

        assert!(reg.keys(LEAVER).is_empty());
        assert_eq!(reg.keys(joiner), [TOPIC]);
        let joined: Vec<u64> = reg.values(&TOPIC, joiner).iter().map(|v| v.0).collect();
        assert_eq!(joined, [2]);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}

/// A pid exits (`process_down`) and registers again while another pid, whose probe meets
/// its monitor record and which already holds one entry, registers a second one (which
/// turns its monitor's word into a list).
///
/// Property: each pid ends with exactly its own entries and its own monitor: a registration
/// never lands in another pid's monitor, `process_down` removes only the exiting pid's
/// entries, and the counts are exact.
///
/// Why the interleavings matter: every lock and lookup of a pid compares the pids of the
/// records its probe meets, read through their slots, while those records are being
/// removed, inserted and rewritten. A fresh record must be published with its slot already
/// holding the pid, and the pid must stay readable through a record's list while the list
/// changes; a record whose pid reads wrong would merge two pids' monitors or split one.
#[test]
fn registrations_race_the_exit_of_a_pid_sharing_their_probe() {
    let other = pid_sharing_probes_with(LEAVER);
    model(move || {
        let reg = bags(PartitionBy::Key);
        reg.register(LEAVER, TOPIC, 1u64);
        reg.register(other, TOPIC, 3u64);

        let leaver = {
            let reg = reg.clone();
            thread::spawn(move || {
                assert_eq!(reg.process_down(LEAVER), 1);
                reg.register(LEAVER, OTHER_TOPIC, 2u64);
            })
        };
        reg.register(other, OTHER_TOPIC, 4u64);
        leaver.join().unwrap();

        assert_eq!(reg.keys(LEAVER), [OTHER_TOPIC]);
        let mut keys = reg.keys(other);
        keys.sort_unstable();
        assert_eq!(keys, [TOPIC, OTHER_TOPIC]);
        assert_eq!((reg.count(), reg.monitors()), (3, 2));
        assert_eq!(reg.process_down(other), 2);
        assert_eq!(reg.lookup(&OTHER_TOPIC), [(LEAVER, 2)]);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}
