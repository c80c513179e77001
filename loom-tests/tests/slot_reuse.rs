//! Model 9: a stale reader against memory reused for another key (ABA).
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model_tracked, registry};

const A: u64 = 1;
const B: u64 = 2;
const C: u64 = 3;
const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);
const P3: Pid = Pid::new(3);

/// Key A is registered; then a writer unregisters A, registers B and C (which, with the
/// loom-sized two-slot table, fills it and starts a migration into a compacted array that
/// drops A's tombstone), churns C until the old arrays are retired, and asks for
/// reclamation, while the model's thread looks A up once. The final assertions check that
/// the migrations really completed.
///
/// Property: the reader gets A's own entry (pid 1 with pid 1's value) or nothing; never
/// another key's entry, never a value that was already dropped; and every value is dropped
/// exactly once by the end.
///
/// Why the interleavings matter: regent never rewrites a slot in place; a slot's memory is
/// reused only once its whole array has been migrated away and reclaimed through the epoch.
/// A reader that matched A's tag and then stalls must still read A's bytes when it compares
/// the key and clones the value, whatever the writer did meanwhile: that holds only if the
/// reader's pin keeps the old array alive until it is done.
#[test]
fn stale_reader_never_sees_a_reused_slot() {
    model_tracked(|ledger| {
        let reg = registry();
        reg.register(P1, A, ledger.value(P1)).unwrap();

        let writer = {
            let (reg, ledger) = (reg.clone(), ledger.clone());
            thread::spawn(move || {
                assert!(reg.unregister(P1, &A));
                reg.register(P2, B, ledger.value(P2)).unwrap();
                reg.register(P3, C, ledger.value(P3)).unwrap();
                // Each write copies a group: these finish both tables' migrations, so the
                // arrays the reader may be probing are retired.
                assert!(reg.unregister(P3, &C));
                reg.register(P3, C, ledger.value(P3)).unwrap();
                for _ in 0..3 {
                    regent::reclaim();
                }
            })
        };
        if let Some((pid, value)) = reg.lookup(&A) {
            assert_eq!(
                (pid, value.owner),
                (P1, P1),
                "a stale read saw another entry"
            );
        }
        writer.join().unwrap();

        assert_eq!(reg.lookup(&A).map(|(pid, _)| pid), None);
        assert_eq!(
            reg.lookup(&B).map(|(pid, v)| (pid, v.owner)),
            Some((P2, P2))
        );
        assert_eq!(
            reg.lookup(&C).map(|(pid, v)| (pid, v.owner)),
            Some((P3, P3))
        );
        assert_eq!((reg.count(), reg.monitors()), (2, 2));
        assert_eq!(
            reg.stats().migrations,
            0,
            "the model must retire the old arrays"
        );
    });
}
