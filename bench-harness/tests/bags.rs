//! Every bag adapter against the same sequence of duplicate-registry operations and its
//! expected results, then under concurrent joins, leaves and exits checked against a model:
//! the semantics the `dispatch` and `join_leave` figures rely on.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use regent_bench::bags::{
    Bags, DashMapBags, FlurryBags, PapayaBags, RegentBags, RwLockBags, SccBags,
};

/// `key`'s entries as sorted `(pid, value)` pairs, checked against dispatch's count.
fn entries<B: Bags>(bags: &B, key: u64) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    let n = bags.dispatch(key, |pid, value| seen.push((pid, value)));
    assert_eq!(n, seen.len(), "{}: dispatch counts what it visits", B::NAME);
    seen.sort_unstable();
    seen
}

fn semantics<B: Bags>() {
    let b = B::default();
    let name = B::NAME;
    assert_eq!(b.dispatch(10, |_, _| panic!("no entries")), 0, "{name}");
    assert_eq!(b.leave(1, 10), 0, "{name}: nothing to leave");
    assert_eq!(b.down(1), 0, "{name}: nothing to remove");

    // The same pid joins a key twice: both entries are kept, with their values.
    b.join(1, 10, 100);
    b.join(1, 10, 101);
    b.join(2, 10, 200);
    b.join(1, 11, 110);
    assert_eq!(
        entries(&b, 10),
        [(1, 100), (1, 101), (2, 200)],
        "{name}: duplicates kept"
    );
    assert_eq!(entries(&b, 11), [(1, 110)], "{name}");

    assert_eq!(
        b.leave(1, 10),
        2,
        "{name}: a leave removes all of the pid's entries"
    );
    assert_eq!(b.leave(1, 10), 0, "{name}: already gone");
    assert_eq!(entries(&b, 10), [(2, 200)], "{name}");
    assert_eq!(b.leave(3, 10), 0, "{name}: another pid's entries stay");
    assert_eq!(entries(&b, 10), [(2, 200)], "{name}");

    // The pid index forgot the key left: the exit removes only the other one.
    b.join(1, 12, 120);
    b.join(1, 12, 121);
    assert_eq!(b.down(1), 3, "{name}: one entry on 11, two on 12");
    assert_eq!(b.down(1), 0, "{name}: already down");
    assert!(entries(&b, 11).is_empty(), "{name}");
    assert!(entries(&b, 12).is_empty(), "{name}");
    assert_eq!(entries(&b, 10), [(2, 200)], "{name}: other pids untouched");

    // A key emptied by leaves and exits takes new joins; a pid that went down can rejoin.
    assert_eq!(b.leave(2, 10), 1, "{name}");
    assert!(entries(&b, 10).is_empty(), "{name}");
    b.join(1, 10, 102);
    b.join(2, 10, 201);
    assert_eq!(entries(&b, 10), [(1, 102), (2, 201)], "{name}");
    assert_eq!(b.down(2), 1, "{name}");
    assert_eq!(b.down(1), 1, "{name}");
    assert!(entries(&b, 10).is_empty(), "{name}");
}

/// Four threads, each with pids of its own, join, leave and go down on the same few keys;
/// each keeps a model of what its pids hold. Every count returned must match the model, a
/// dispatch running beside them never sees an entry twice, and afterwards every key holds
/// exactly the entries the models say.
fn concurrent<B: Bags>() {
    const THREADS: u64 = 4;
    const PIDS: u64 = 64;
    const KEYS: u64 = 5;
    const ROUNDS: u64 = 20_000;
    let b = B::default();
    let name = B::NAME;
    let done = AtomicBool::new(false);
    let models: Vec<BTreeMap<(u64, u64), Vec<u64>>> = thread::scope(|s| {
        s.spawn(|| {
            // Every (pid, value) is unique: values carry their thread and round.
            while !done.load(Ordering::Relaxed) {
                for key in 0..KEYS {
                    let seen = entries(&b, key);
                    assert!(
                        seen.windows(2).all(|w| w[0] != w[1]),
                        "{name}: dispatch saw an entry twice"
                    );
                }
                thread::yield_now();
            }
        });
        let spawned: Vec<_> = (0..THREADS)
            .map(|t| {
                let b = &b;
                s.spawn(move || {
                    // (pid, key) → values, for this thread's pids only.
                    let mut model: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
                    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ t;
                    for round in 0..ROUNDS {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let pid = t * PIDS + rng % PIDS;
                        let key = (rng >> 8) % KEYS;
                        match (rng >> 16) % 8 {
                            0..=4 => {
                                let value = (t << 32) | round;
                                b.join(pid, key, value);
                                model.entry((pid, key)).or_default().push(value);
                            }
                            5 | 6 => {
                                let held = model.remove(&(pid, key)).map_or(0, |v| v.len());
                                assert_eq!(b.leave(pid, key), held, "{name}: leave");
                            }
                            _ => {
                                let mut held = 0;
                                model.retain(|&(p, _), values| {
                                    held += if p == pid { values.len() } else { 0 };
                                    p != pid
                                });
                                assert_eq!(b.down(pid), held, "{name}: down");
                            }
                        }
                    }
                    model
                })
            })
            .collect();
        let models = spawned.into_iter().map(|h| h.join().unwrap()).collect();
        done.store(true, Ordering::Relaxed);
        models
    });
    let model: BTreeMap<(u64, u64), Vec<u64>> = models.into_iter().flatten().collect();
    for key in 0..KEYS {
        let mut want: Vec<(u64, u64)> = model
            .iter()
            .filter(|((_, k), _)| *k == key)
            .flat_map(|(&(pid, _), values)| values.iter().map(move |&v| (pid, v)))
            .collect();
        want.sort_unstable();
        assert_eq!(entries(&b, key), want, "{name}: key {key}");
    }
    // Every pid's exit removes exactly what the model holds for it, and nothing is left.
    for pid in 0..THREADS * PIDS {
        let held: usize = model
            .iter()
            .filter(|((p, _), _)| *p == pid)
            .map(|(_, values)| values.len())
            .sum();
        assert_eq!(b.down(pid), held, "{name}: final down of {pid}");
    }
    for key in 0..KEYS {
        assert_eq!(b.dispatch(key, |_, _| {}), 0, "{name}: key {key} empty");
    }
}

/// Four pids, one per thread, join one of two keys (sometimes twice) and leave it again:
/// the keys empty and refill all the time, so this catches a join landing in a key's
/// member map just as a leave removes it for being empty.
fn churn<B: Bags>() {
    const ROUNDS: u64 = 20_000;
    let b = B::default();
    let name = B::NAME;
    thread::scope(|s| {
        for pid in 0..4 {
            let b = &b;
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let key = round % 2;
                    b.join(pid, key, round);
                    let joined = if round % 3 == 0 {
                        b.join(pid, key, round);
                        2
                    } else {
                        1
                    };
                    assert_eq!(b.leave(pid, key), joined, "{name}: join then leave");
                }
            });
        }
    });
    for key in 0..2 {
        assert_eq!(b.dispatch(key, |_, _| {}), 0, "{name}: key {key} empty");
    }
    for pid in 0..4 {
        assert_eq!(b.down(pid), 0, "{name}: nothing left for {pid}");
    }
}

fn conformance<B: Bags>() {
    semantics::<B>();
    concurrent::<B>();
    churn::<B>();
}

#[test]
fn every_bag_keeps_duplicate_registry_semantics() {
    conformance::<RegentBags<false>>();
    conformance::<RegentBags<true>>();
    conformance::<DashMapBags>();
    conformance::<SccBags>();
    conformance::<PapayaBags>();
    conformance::<FlurryBags>();
    conformance::<RwLockBags>();
}
