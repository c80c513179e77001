//! Model 4: a lookup racing the removal and epoch reclamation of the entry it reads.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model_tracked, registry};

const KEY: u64 = 7;
const OWNER: Pid = Pid::new(1);

/// The owner unregisters its key, registers it again with a new value and asks for
/// reclamation, while the model's thread looks the key up and clones whatever value it finds.
/// Values are [`regent_loom::Tracked`], which audit their own clones and drops.
///
/// Property: every value is dropped exactly once, and only after every reader is done with
/// it: no clone of a dropped value, no double drop, and once the execution is over (the
/// registry dropped, every epoch participant gone) no value left alive.
///
/// Why the interleavings matter: the removed entry is retired to crossbeam-epoch and freed
/// once the epoch has advanced twice. The reader may pin before or after the removal, and
/// `reclaim` may try to advance the epoch while the reader is pinned, between its pin and its
/// clone, or after it has unpinned; only the orders where the advance must wait for the
/// reader show whether the entry was retired (not freed) and the reader pinned in time.
#[test]
fn lookup_races_removal_and_reclamation() {
    model_tracked(|ledger| {
        let reg = registry();
        reg.register(OWNER, KEY, ledger.value(OWNER)).unwrap();

        let owner = {
            let (reg, ledger) = (reg.clone(), ledger.clone());
            thread::spawn(move || {
                assert!(reg.unregister(OWNER, &KEY));
                reg.register(OWNER, KEY, ledger.value(OWNER)).unwrap();
                // Two epoch advances free the removed entry; a third covers one that fails
                // because the reader is pinned.
                for _ in 0..3 {
                    regent::reclaim();
                }
            })
        };
        if let Some((pid, value)) = reg.lookup(&KEY) {
            assert_eq!((pid, value.owner), (OWNER, OWNER));
        }
        owner.join().unwrap();

        assert_eq!(reg.lookup(&KEY).map(|(pid, _)| pid), Some(OWNER));
    });
}
