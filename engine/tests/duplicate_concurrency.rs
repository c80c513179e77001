//! Duplicate registries under concurrency: dispatch racing joins and leaves on one key,
//! hot-key churn, and linearizable exits.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use common::{
    assert_dup_consistent, duplicate, for_each_dup_config, scaled, Counted, Rng, Tracker, Workers,
};
use regent::{Duplicate, Pid};

const THREADS: usize = 4;

/// Dispatch while other threads join and leave the same key: no entry is seen twice within
/// one dispatch, every entry present for the whole dispatch is seen, no dead value is ever
/// touched (values are drop-counted and checked alive on visit).
#[test]
fn dispatch_races_joins_and_leaves_on_one_key() {
    for_each_dup_config(|partitions, by| {
        let tracker = Tracker::new();
        let reg: Duplicate<u64, Counted> = duplicate(partitions, by);
        // Stable subscribers, present for the whole test, under pids no writer uses.
        const STABLE: u64 = 200;
        for i in 0..STABLE {
            reg.register(Pid::new(1_000_000 + i), 0, tracker.counted(1_000_000 + i));
        }
        let workers = Workers::new(THREADS - 1);
        thread::scope(|s| {
            for t in 0..THREADS as u64 - 1 {
                let (reg, tracker, workers) = (&reg, &tracker, &workers);
                s.spawn(move || {
                    workers.run(|| {
                        let mut rng = Rng::new(t + 1);
                        let mut next = 0;
                        for _ in 0..scaled(20_000) {
                            let pid = Pid::new(t * 1000 + rng.below(50));
                            if rng.below(2) == 0 {
                                next += 1;
                                reg.register(pid, 0, tracker.counted(t << 32 | next));
                            } else if rng.below(2) == 0 {
                                reg.unregister(pid, &0);
                            } else {
                                reg.process_down(pid);
                            }
                        }
                    });
                });
            }
            let mut dispatches = 0;
            while workers.running() || dispatches < 10 {
                let mut seen = HashSet::new();
                let mut stable = 0;
                reg.dispatch(&0, |pid, value| {
                    assert!(seen.insert(value.id), "entry {} seen twice", value.id);
                    if pid.get() >= 1_000_000 {
                        assert_eq!(pid.get(), value.id);
                        stable += 1;
                    } else {
                        assert_eq!(
                            pid.get() / 1000,
                            value.id >> 32,
                            "value under a foreign pid"
                        );
                    }
                });
                assert_eq!(stable, STABLE, "every stable entry is seen");
                dispatches += 1;
            }
        });
        assert_dup_consistent(&reg_view(&reg));
        let live = reg.count();
        tracker.assert_live(live);
        drop(reg);
        tracker.assert_live(0);
    });
}

/// `assert_dup_consistent` wants `Ord` values: a view of `reg` by value id.
fn reg_view(reg: &Duplicate<u64, Counted>) -> Duplicate<u64, u64> {
    let view = Duplicate::builder().partitions(1).build();
    reg.select(|k, p, v| Some((*k, p, v.id)))
        .into_iter()
        .for_each(|(k, p, v)| view.register(p, k, v));
    assert_eq!(view.count(), reg.count());
    assert_eq!(view.monitors(), reg.monitors());
    view
}

/// Every thread joins and leaves one hot key with its own pids; the bag never loses or
/// duplicates an entry, and counts and drops add up at the end.
#[test]
fn hot_key_churn_from_every_thread() {
    for_each_dup_config(|partitions, by| {
        let tracker = Tracker::new();
        let reg: Duplicate<u64, Counted> = duplicate(partitions, by);
        let held: Vec<u64> = thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS as u64)
                .map(|t| {
                    let (reg, tracker) = (&reg, &tracker);
                    s.spawn(move || {
                        let mut mine = vec![0u64; 64];
                        let mut rng = Rng::new(t + 7);
                        for i in 0..scaled(40_000) as u64 {
                            let p = rng.below(64) as usize;
                            let pid = Pid::new(t * 100 + p as u64);
                            if mine[p] < 3 && rng.below(3) > 0 {
                                reg.register(pid, 42, tracker.counted(i));
                                mine[p] += 1;
                            } else {
                                assert_eq!(reg.unregister(pid, &42) as u64, mine[p]);
                                mine[p] = 0;
                            }
                        }
                        mine
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let expected: u64 = held.iter().sum();
        assert_eq!(reg.count() as u64, expected);
        assert_eq!(reg.dispatch(&42, |_, _| {}) as u64, expected);
        assert_eq!(reg.monitors(), held.iter().filter(|&&n| n > 0).count());
        tracker.assert_live(expected as usize);
        for (i, &n) in held.iter().enumerate() {
            let pid = Pid::new((i / 64) as u64 * 100 + (i % 64) as u64);
            assert_eq!(reg.process_down(pid) as u64, n);
        }
        assert!(reg.is_empty());
        tracker.assert_live(0);
    });
}

/// A hot key (1,000 stable subscribers, so its bag stripes itself under contention) churned
/// by every thread with a window of its own subscribers, each leaving through `unregister`
/// or `process_down`, while dispatches check the stable ones. At the end the counts,
/// dispatch and drops agree; once everything leaves, the bag's bytes (its stripes
/// included) are all given back to `Stats`.
#[test]
fn hot_key_stripes_keep_counts_drops_and_bytes() {
    const STABLE: u64 = 1_000;
    const WINDOW: u64 = 32;
    for_each_dup_config(|partitions, by| {
        let tracker = Tracker::new();
        let reg: Duplicate<u64, Counted> = duplicate(partitions, by);
        for i in 0..STABLE {
            reg.register(Pid::new(1 << 40 | i), 9, tracker.counted(1 << 40 | i));
        }
        let workers = Workers::new(THREADS);
        thread::scope(|s| {
            for t in 0..THREADS as u64 {
                let (reg, tracker, workers) = (&reg, &tracker, &workers);
                s.spawn(move || {
                    workers.run(|| {
                        let base = (t + 1) << 32;
                        for i in 0..scaled(40_000) as u64 {
                            reg.register(Pid::new(base + i), 9, tracker.counted(base + i));
                            if i >= WINDOW {
                                let old = Pid::new(base + i - WINDOW);
                                let left = if i % 2 == 0 {
                                    reg.unregister(old, &9)
                                } else {
                                    reg.process_down(old)
                                };
                                assert_eq!(left, 1, "the window's oldest entry leaves once");
                            }
                        }
                    });
                });
            }
            while workers.running() {
                let mut seen = HashSet::new();
                let mut stable = 0;
                reg.dispatch(&9, |pid, value| {
                    assert!(seen.insert(value.id), "entry {} seen twice", value.id);
                    assert_eq!(pid.get(), value.id, "a pid with another entry's value");
                    stable += u64::from(pid.get() >> 40 == 1);
                });
                assert_eq!(stable, STABLE, "every stable entry is seen");
            }
        });
        let held = STABLE + THREADS as u64 * WINDOW;
        assert_eq!(reg.count() as u64, held);
        assert_eq!(reg.dispatch(&9, |_, _| {}) as u64, held);
        assert_eq!(reg.monitors() as u64, held);
        tracker.assert_live(held as usize);
        for pid in reg.lookup(&9).into_iter().map(|(pid, _)| pid) {
            assert_eq!(reg.process_down(pid), 1);
        }
        assert!(reg.is_empty());
        assert_eq!(
            reg.stats().entry_bytes,
            0,
            "an emptied bag gives back every byte"
        );
        tracker.assert_live(0);
    });
}

/// Once `process_down(pid)` returns, no dispatch that starts afterwards sees `pid`.
#[test]
fn no_dispatch_sees_a_pid_after_its_process_down_returned() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        // The highest pid whose process_down has returned.
        let down = AtomicU64::new(0);
        let done = AtomicBool::new(false);
        thread::scope(|s| {
            s.spawn(|| {
                for p in 1..=scaled(20_000) as u64 {
                    reg.register(Pid::new(p), p % 4, p);
                    reg.register(Pid::new(p), (p + 1) % 4, p);
                    assert_eq!(reg.process_down(Pid::new(p)), 2);
                    down.store(p, Ordering::Release);
                }
                done.store(true, Ordering::Release);
            });
            for _ in 0..THREADS - 2 {
                s.spawn(|| {
                    while !done.load(Ordering::Acquire) {
                        for key in 0..4 {
                            let before = down.load(Ordering::Acquire);
                            reg.dispatch(&key, |pid, _| {
                                assert!(
                                    pid.get() > before,
                                    "{pid:?} seen after its process_down returned"
                                );
                            });
                        }
                    }
                });
            }
        });
        assert!(reg.is_empty());
        assert_eq!(reg.monitors(), 0);
    });
}

/// Registrations of many keys from every thread while others look up, select and exit:
/// the invariants hold at the end.
#[test]
fn mixed_operations_keep_the_registry_consistent() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        thread::scope(|s| {
            for t in 0..THREADS as u64 {
                let reg = &reg;
                s.spawn(move || {
                    let mut rng = Rng::new(t + 100);
                    for i in 0..scaled(20_000) as u64 {
                        let pid = Pid::new(t * 1000 + rng.below(100));
                        match rng.below(10) {
                            0..=4 => reg.register(pid, rng.below(500), i),
                            5 => {
                                reg.unregister(pid, &rng.below(500));
                            }
                            6 => {
                                reg.process_down(pid);
                            }
                            7 => {
                                let key = rng.below(500);
                                for (p, _) in reg.lookup(&key) {
                                    assert!(p.get() < THREADS as u64 * 1000);
                                }
                            }
                            8 => {
                                let _ = reg.keys(pid);
                            }
                            _ => {
                                let _ = reg.count_select(|_, _, _| true);
                            }
                        }
                    }
                });
            }
        });
        assert_dup_consistent(&reg);
    });
}
