//! Model 12: striped bags. A hot bag counts its entries on per-thread stripes, each of
//! which, while it counts anything, holds one of the bag's own counts; closing and freeing
//! the bag turn on the bag's own counts alone. Every model here stripes every bag at its
//! second reservation (`regent::stripe_every_bag`), so the test thread's entries after the
//! first are counted on stripe 1 and the spawned thread's on stripe 2.
#![cfg(loom)]

use loom::thread;
use regent::{PartitionBy, Pid};
use regent_loom::{bags, dispatch_races_leave_reclaim_and_rejoin, model, model_tracked};

const TOPIC: u64 = 3;
const FIRST: Pid = Pid::new(1);
const STRIPED: Pid = Pid::new(2);
const JOINER: Pid = Pid::new(3);

/// The bag holds one entry on its own count and one on the test thread's stripe; the
/// spawned thread removes both, which empties the stripe (giving its count back) and then
/// the bag (closing it), while the test thread joins on the same stripe.
///
/// Property: the join is never lost: afterwards the topic holds exactly the joiner's entry,
/// under one bag, the counts agree, and once it leaves every byte is given back.
///
/// Why the interleavings matter: the joiner may find its stripe at 1 (joining the open
/// count), at 0 with the bag open (taking one of the bag's counts first), or at 0 with the
/// bag closed (making a new bag). A stripe that counted an entry without holding one of the
/// bag's counts would let the bag close under the joiner, and lose its entry.
#[test]
fn a_join_races_the_leaves_that_empty_a_stripe_and_close_the_bag() {
    model(|| {
        regent::stripe_every_bag(true);
        let reg = bags(PartitionBy::Key);
        reg.register(FIRST, TOPIC, 1u64);
        reg.register(STRIPED, TOPIC, 2u64);
        let leaver = {
            let reg = reg.clone();
            thread::spawn(move || {
                assert_eq!(reg.unregister(STRIPED, &TOPIC), 1);
                assert_eq!(reg.process_down(FIRST), 1);
            })
        };
        reg.register(JOINER, TOPIC, 3u64);
        leaver.join().unwrap();
        assert_eq!(reg.lookup(&TOPIC), vec![(JOINER, 3)]);
        assert_eq!(reg.dispatch(&TOPIC, |_, _| {}), 1);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
        assert_eq!(reg.unregister(JOINER, &TOPIC), 1);
        assert_eq!(reg.stats().entry_bytes, 0, "the bags' bytes all given back");
    });
}

/// The spawned thread removes the test thread's striped entry and, after two reclamations,
/// joins on its own stripe, whose free list is empty: it takes the freed slot from the
/// other stripe's list. Meanwhile the test thread dispatches and clones every value.
///
/// Property: as model 8's first: the first subscriber is seen once, nothing twice, no
/// dropped value touched, each pid with its own value; every value is dropped once.
///
/// Why the interleavings matter: the freed slot goes back on the stripe that counted it
/// (named in its control word) by a deferred reclamation that may run on either thread,
/// and is popped from there by a thread of another stripe; the slot's reuse must still wait
/// for the epoch.
#[test]
fn dispatch_races_a_striped_leave_and_a_reuse_from_another_stripe() {
    model_tracked(|ledger| {
        regent::stripe_every_bag(true);
        dispatch_races_leave_reclaim_and_rejoin(ledger, FIRST, STRIPED, JOINER);
    });
}

/// The spawned thread removes the striped entry, so its stripe counts a pending
/// reclamation, and reclaims; the test thread removes the first entry, closing the bag and
/// retiring it, and reclaims too.
///
/// Property: every value is dropped exactly once, the bag is freed once both the table's
/// reference and the stripe's are gone (never before: a reclamation pushing on a freed
/// stripe's list would touch freed loom atomics), and the topic ends empty.
///
/// Why the interleavings matter: the reclamation lets go of the stripe's last reference,
/// which hands the stripe's count on the bag's own `refs` back; the bag's own last
/// reference may be the table's (the test thread's retirement) or the stripe's.
#[test]
fn a_striped_reclamation_races_the_bags_close_and_free() {
    model_tracked(|ledger| {
        regent::stripe_every_bag(true);
        let reg = bags(PartitionBy::Key);
        reg.register(FIRST, TOPIC, ledger.value(FIRST));
        reg.register(STRIPED, TOPIC, ledger.value(STRIPED));
        let leaver = {
            let reg = reg.clone();
            thread::spawn(move || {
                assert_eq!(reg.unregister(STRIPED, &TOPIC), 1);
                regent::reclaim();
                regent::reclaim();
            })
        };
        assert_eq!(reg.process_down(FIRST), 1);
        regent::reclaim();
        regent::reclaim();
        leaver.join().unwrap();
        assert!(reg.lookup(&TOPIC).is_empty());
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        assert_eq!(reg.stats().entry_bytes, 0);
    });
}
