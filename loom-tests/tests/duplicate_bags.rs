//! Model 8: duplicate bags. Joins, leaves, slot reuse and bag close racing `dispatch`.
#![cfg(loom)]

use loom::thread;
use regent::{PartitionBy, Pid};
use regent_loom::{bags, dispatch_races_leave_reclaim_and_rejoin, model, model_tracked};

const TOPIC: u64 = 3;
const STABLE: Pid = Pid::new(1);
const LEAVER: Pid = Pid::new(2);
const JOINER: Pid = Pid::new(3);

/// A subscriber leaves and, after reclamation, another joins (reusing the leaver's slot if
/// the epoch let it go), while the model's thread dispatches to the topic and clones each
/// value it visits. Values are `(id, Tracked)`: `Tracked` audits its clones and drops.
///
/// Property: the dispatch sees the stable subscriber exactly once, sees no entry twice,
/// never visits a value that was dropped (a clone of a dropped `Tracked` fails), and sees
/// each pid with its own value (a reused slot never shows a torn pid/value pair). Every
/// value is dropped exactly once.
///
/// Why the interleavings matter: the leaver's slot is reclaimed (value dropped, slot pushed
/// on the free list) only after the epoch passes, and the joiner pops it from the free
/// list and writes a new entry there. A dispatcher pinned before the leave must keep
/// reading the old value; one that reads the slot while it is rewritten must see it not
/// live. A too-weak publication or an early push would let it read a dropped or half
/// written entry.
#[test]
fn dispatch_races_leave_reclaim_and_reuse() {
    model_tracked(|ledger| {
        dispatch_races_leave_reclaim_and_rejoin(ledger, STABLE, LEAVER, JOINER);
    });
}

/// Two subscribers join at once, overflowing the bag's first segment (one slot under loom,
/// taken by the first subscriber), so that both race to append the next one.
///
/// Property: no join is lost or lands in a slot another join took: afterwards dispatch
/// sees all three entries, each once, and the bag counts three.
///
/// Why the interleavings matter: a slot index past a segment's end sends the claimer to
/// append the next segment; two appenders race on `next` and `tail`, and the loser must
/// free its segment and use the winner's.
#[test]
fn two_joins_race_to_append_a_segment() {
    model(|| {
        let reg = bags(PartitionBy::Key);
        reg.register(STABLE, TOPIC, 1u64);
        let joiner = {
            let reg = reg.clone();
            thread::spawn(move || reg.register(LEAVER, TOPIC, 2))
        };
        reg.register(JOINER, TOPIC, 3);
        joiner.join().unwrap();
        let mut seen = Vec::new();
        assert_eq!(reg.dispatch(&TOPIC, |pid, &v| seen.push((pid.get(), v))), 3);
        seen.sort_unstable();
        assert_eq!(seen, vec![(1, 1), (2, 2), (3, 3)]);
        assert_eq!(reg.count(), 3);
    });
}

/// A subscriber joins, appending a segment, while the model's thread dispatches.
///
/// Property: dispatch sees the first subscriber once and the joiner at most once, with its
/// own value (never a slot of an unpublished segment or a half-written entry).
///
/// Why the interleavings matter: the dispatcher follows `next` to a segment the joiner is
/// appending and reads slots the joiner is writing; only the Release/Acquire pairs on
/// `next` and on each slot's control word keep it from reading uninitialized memory.
#[test]
fn dispatch_races_a_join_that_appends_a_segment() {
    model(|| {
        let reg = bags(PartitionBy::Key);
        reg.register(STABLE, TOPIC, 1u64);
        let joiner = {
            let reg = reg.clone();
            thread::spawn(move || reg.register(JOINER, TOPIC, 3))
        };
        let mut seen = Vec::new();
        reg.dispatch(&TOPIC, |pid, &v| seen.push((pid.get(), v)));
        seen.sort_unstable();
        assert!(
            seen == vec![(1, 1)] || seen == vec![(1, 1), (3, 3)],
            "{seen:?}"
        );
        joiner.join().unwrap();
    });
}

/// The topic's only subscriber leaves (emptying and closing its bag) while another pid
/// joins the topic.
///
/// Property: the join is never lost: afterwards the topic holds exactly the joiner's
/// entry, under one bag (one dispatch visits it once), and the counts agree.
///
/// Why the interleavings matter: the leaver closes the bag when its count reaches 0 and
/// removes it from the key table; the joiner may find the bag before or after the close,
/// and must either get a place in it before the close or help remove the closed bag and
/// make a new one. Joining a closed bag would lose the entry.
#[test]
fn join_races_the_last_leave_of_a_topic() {
    model(|| {
        let reg = bags(PartitionBy::Key);
        reg.register(LEAVER, TOPIC, 2u64);
        let leaver = {
            let reg = reg.clone();
            thread::spawn(move || assert_eq!(reg.unregister(LEAVER, &TOPIC), 1))
        };
        reg.register(JOINER, TOPIC, 3u64);
        leaver.join().unwrap();
        assert_eq!(reg.lookup(&TOPIC), vec![(JOINER, 3)]);
        assert_eq!(reg.dispatch(&TOPIC, |_, _| {}), 1);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}
