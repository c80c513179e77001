//! The batch calls: `Unique::register_many`, `Unique::process_down_many` and
//! `Duplicate::process_down_many` against the single calls they batch.
//!
//! Each batch is checked against the same calls made one by one on a second registry (the
//! model), over batches shorter and longer than the pipeline and past the point where the
//! pin is renewed, with repeated and unknown items; then listeners, drop counts, the
//! `max_entries` limit, a panicking listener, and exits racing with readers.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    assert_consistent, assert_dup_consistent, duplicate, for_each_config, for_each_dup_config,
    scaled, sorted, unique, Rng, Tracker, Workers,
};
use regent::{Pid, Unique};

/// The batch sizes every test runs: empty, within the ring, and past the pin renewal.
const SIZES: [usize; 5] = [0, 1, 15, 100, 1_000];

/// A batch of `n` registrations over `n / 2` keys and `n / 4` pids, so that some keys
/// repeat within the batch and some pids hold several keys.
fn batch(rng: &mut Rng, n: usize) -> Vec<(Pid, u64, u64)> {
    let keys = (n as u64 / 2).max(1);
    let pids = (n as u64 / 4).max(1);
    (0..n as u64)
        .map(|i| (Pid::new(1 + rng.below(pids)), rng.below(keys), i))
        .collect()
}

#[test]
fn register_many_is_register_in_order() {
    for_each_config(|p| {
        let mut rng = Rng::new(7 + p as u64);
        for n in SIZES {
            let reg = unique::<u64, u64>(p);
            let model = unique::<u64, u64>(p);
            // Some keys are taken before the batch.
            for key in 0..(n as u64 / 8) {
                reg.register(Pid::new(10_000), key * 3, 0).unwrap();
                model.register(Pid::new(10_000), key * 3, 0).unwrap();
            }
            let items = batch(&mut rng, n);
            let refused = reg.register_many(items.clone());
            let expected: Vec<_> = items
                .into_iter()
                .filter_map(|(pid, key, value)| model.register(pid, key, value).err())
                .map(|e| (e.owner, e.key, e.value))
                .collect();
            let refused: Vec<_> = refused
                .into_iter()
                .map(|e| (e.owner, e.key, e.value))
                .collect();
            assert_eq!(refused, expected, "n = {n}");
            let all = |r: &Unique<u64, u64>| sorted(r.select(|k, p, v| Some((*k, p, *v))));
            assert_eq!(all(&reg), all(&model));
            assert_eq!(reg.monitors(), model.monitors());
            assert_consistent(&reg);
        }
    });
}

#[test]
fn process_down_many_is_process_down_in_order() {
    for_each_config(|p| {
        let mut rng = Rng::new(11 + p as u64);
        for n in SIZES {
            let reg = unique::<u64, u64>(p);
            let model = unique::<u64, u64>(p);
            let items = batch(&mut rng, 2 * n);
            reg.register_many(items.clone());
            for (pid, key, value) in items {
                let _ = model.register(pid, key, value);
            }
            // Half the pids go down, some twice, some never registered anything.
            let pids: Vec<Pid> = (0..n as u64)
                .map(|_| Pid::new(1 + rng.below(n as u64 + 2)))
                .collect();
            let total = reg.process_down_many(pids.iter().copied());
            let expected: usize = pids.iter().map(|&pid| model.process_down(pid)).sum();
            assert_eq!(total, expected, "n = {n}");
            let all = |r: &Unique<u64, u64>| sorted(r.select(|k, p, v| Some((*k, p, *v))));
            assert_eq!(all(&reg), all(&model));
            assert_eq!(reg.monitors(), model.monitors());
            assert_consistent(&reg);
            // Every name that went is free again at once.
            for pid in pids {
                assert!(reg.keys(pid).is_empty());
            }
            let free: Vec<u64> = (0..n as u64).filter(|k| reg.whereis(k).is_none()).collect();
            assert!(reg
                .register_many(free.iter().map(|&k| (Pid::new(1), k, 0)))
                .is_empty());
        }
    });
}

#[test]
fn a_pid_with_many_keys_goes_down_in_a_batch() {
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        // Pid 1 holds 300 keys (a list monitor), pid 2 one, pid 3 two (a pair).
        reg.register_many((0..300).map(|k| (Pid::new(1), k, k)));
        reg.register_many([(Pid::new(2), 1_000, 0), (Pid::new(3), 1_001, 0)]);
        reg.register(Pid::new(3), 1_002, 0).unwrap();
        let pids = [3, 9, 1, 2, 1].map(Pid::new);
        assert_eq!(reg.process_down_many(pids), 303);
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        assert_consistent(&reg);
    });
}

#[test]
fn batch_listeners_see_each_change_in_order() {
    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
    enum Logged {
        Registered(u64, Pid),
        Down(u64, Pid),
    }
    for_each_config(|p| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let reg = Unique::<u64, u64>::builder()
            .partitions(p)
            .listener({
                let log = Arc::clone(&log);
                move |event| {
                    let entry = match event {
                        regent::Event::Registered { key, pid, .. } => {
                            Logged::Registered(**key, *pid)
                        }
                        regent::Event::Down { key, pid } => Logged::Down(**key, *pid),
                        regent::Event::Unregistered { .. } => unreachable!("no unregister here"),
                    };
                    log.lock().unwrap().push(entry);
                }
            })
            .build();
        let items: Vec<_> = (0..40u64)
            .map(|i| (Pid::new(1 + i % 3), i % 30, i))
            .collect();
        let refused = reg.register_many(items.clone());
        assert_eq!(refused.len(), 10);
        let mut expected: Vec<Logged> = items[..30]
            .iter()
            .map(|&(pid, key, _)| Logged::Registered(key, pid))
            .collect();
        assert_eq!(*log.lock().unwrap(), expected);
        assert_eq!(reg.process_down_many([2, 1, 3].map(Pid::new)), 30);
        // Each exit's events come together, exits in batch order.
        let log = log.lock().unwrap();
        let mut at = 30;
        for pid in [2, 1, 3].map(Pid::new) {
            let mine: Vec<Logged> = (0..30)
                .filter(|k| Pid::new(1 + k % 3) == pid)
                .map(|k| Logged::Down(k, pid))
                .collect();
            assert_eq!(sorted(log[at..at + mine.len()].to_vec()), mine);
            at += mine.len();
            expected.extend(mine);
        }
        assert_eq!(log.len(), expected.len());
    });
}

#[test]
fn batches_drop_each_value_once() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        {
            let reg = Unique::<u64, common::Counted>::builder()
                .partitions(p)
                .build();
            let items: Vec<_> = (0..2_000u64)
                .map(|i| (Pid::new(1 + i % 500), i % 1_500, tracker.counted(i)))
                .collect();
            let refused = reg.register_many(items);
            assert_eq!(refused.len(), 500);
            // The refused values come back to the caller, alive until it drops them.
            tracker.assert_live(2_000);
            drop(refused);
            tracker.assert_live(1_500);
            assert_eq!(reg.process_down_many((1..=250).map(Pid::new)), 750);
            tracker.assert_live(750);
            // The rest go with the registry.
        }
        tracker.assert_live(0);
    });
}

#[test]
fn register_many_stops_at_the_limit() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = Unique::<u64, common::Counted>::builder()
            .partitions(p)
            .max_entries(50)
            .build();
        let items: Vec<_> = (0..80u64)
            .map(|i| (Pid::new(1 + i), i, tracker.counted(i)))
            .collect();
        let panic = catch_unwind(AssertUnwindSafe(|| reg.register_many(items)));
        assert!(panic.is_err(), "the 51st registration panics");
        // The 50 before it stay; the one that met the limit and the rest are dropped.
        assert_eq!((reg.count(), reg.monitors()), (50, 50));
        tracker.assert_live(50);
        // An exit batch gives the places back.
        assert_eq!(reg.process_down_many((1..=10).map(Pid::new)), 10);
        assert!(reg
            .register_many((100..110).map(|i| (Pid::new(i), i, tracker.counted(i))))
            .is_empty());
        assert_eq!(reg.count(), 50);
    });
}

#[test]
fn a_panicking_listener_stops_the_batch_and_leaves_the_registry_consistent() {
    for_each_config(|p| {
        let armed = Arc::new(AtomicBool::new(false));
        let reg = Unique::<u64, u64>::builder()
            .partitions(p)
            .listener({
                let armed = Arc::clone(&armed);
                move |event| {
                    if let regent::Event::Down { key: 37, .. } = event {
                        if armed.load(Ordering::SeqCst) {
                            panic!("listener fails on key 37");
                        }
                    }
                }
            })
            .build();
        reg.register_many((0..100u64).map(|k| (Pid::new(1 + k), k, k)));
        armed.store(true, Ordering::SeqCst);
        let result = catch_unwind(AssertUnwindSafe(|| {
            reg.process_down_many((1..=100).map(Pid::new))
        }));
        assert!(result.is_err());
        // Pids 1..=38 went down (38's listener panicked after its exit was complete).
        assert_eq!(reg.count(), 62);
        assert!(reg.whereis(&37).is_none() && reg.whereis(&38).is_some());
        assert_consistent(&reg);
        armed.store(false, Ordering::SeqCst);
        assert_eq!(reg.process_down_many((1..=100).map(Pid::new)), 62);
    });
}

/// Exits in batches race with readers and with registrations of the freed names: once a
/// batch returns, no read that starts afterwards sees any of its pids.
#[test]
fn no_read_after_a_batch_sees_its_pids() {
    for_each_config(|p| {
        let reg = Arc::new(unique::<u64, u64>(p));
        let rounds = scaled(200) as u64;
        const KEYS: u64 = 512;
        // `gone` is raised after each batch returns: pids below it are dead.
        let gone = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let workers = Arc::new(Workers::new(1));
        let reader = {
            let (reg, gone, workers) = (Arc::clone(&reg), Arc::clone(&gone), Arc::clone(&workers));
            std::thread::spawn(move || {
                let mut rng = Rng::new(3);
                while workers.running() {
                    let dead_below = gone.load(Ordering::SeqCst);
                    let key = rng.below(KEYS);
                    if let Some(pid) = reg.whereis(&key) {
                        assert!(pid.get() >= dead_below, "key {key} owned by dead {pid:?}");
                    }
                }
            })
        };
        workers.run(|| {
            for round in 0..rounds {
                // Round r's pids: r * KEYS + 1 ..; each takes the key it finds free.
                let base = round * KEYS + 1;
                let refused = reg.register_many((0..KEYS).map(|k| (Pid::new(base + k), k, round)));
                assert!(refused.is_empty(), "every name was freed by the last batch");
                assert_eq!(
                    reg.process_down_many((0..KEYS).map(|k| Pid::new(base + k))),
                    KEYS as usize
                );
                gone.store(base + KEYS, Ordering::SeqCst);
            }
        });
        reader.join().unwrap();
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
    });
}

#[test]
fn duplicate_process_down_many_is_process_down_in_order() {
    for_each_dup_config(|p, by| {
        let mut rng = Rng::new(5 + p as u64);
        for n in SIZES {
            let reg = duplicate::<u64, u64>(p, by);
            let model = duplicate::<u64, u64>(p, by);
            for (pid, key, value) in batch(&mut rng, 2 * n) {
                reg.register(pid, key % 7, value);
                model.register(pid, key % 7, value);
            }
            let pids: Vec<Pid> = (0..n as u64)
                .map(|_| Pid::new(1 + rng.below(n as u64 + 2)))
                .collect();
            let total = reg.process_down_many(pids.iter().copied());
            let expected: usize = pids.iter().map(|&pid| model.process_down(pid)).sum();
            assert_eq!(total, expected, "n = {n}");
            let all =
                |r: &regent::Duplicate<u64, u64>| sorted(r.select(|k, p, v| Some((*k, p, *v))));
            assert_eq!(all(&reg), all(&model));
            assert_eq!(reg.monitors(), model.monitors());
            assert_dup_consistent(&reg);
        }
    });
}

#[test]
fn duplicate_register_many_is_register_in_order() {
    for_each_dup_config(|p, by| {
        let mut rng = Rng::new(13 + p as u64);
        for n in SIZES {
            let log = Arc::new(Mutex::new(Vec::new()));
            let reg = regent::Duplicate::<u64, u64>::builder()
                .partitions(p)
                .partition_by(by)
                .listener({
                    let log = Arc::clone(&log);
                    move |event| {
                        if let regent::Event::Registered { key, pid, value } = event {
                            log.lock().unwrap().push((*pid, **key, **value));
                        }
                    }
                })
                .build();
            let model = duplicate::<u64, u64>(p, by);
            let items: Vec<_> = batch(&mut rng, n)
                .into_iter()
                .map(|(pid, key, value)| (pid, key % 5, value))
                .collect();
            reg.register_many(items.clone());
            for &(pid, key, value) in &items {
                model.register(pid, key, value);
            }
            // The same entries, registered in batch order.
            assert_eq!(*log.lock().unwrap(), items, "n = {n}");
            let all =
                |r: &regent::Duplicate<u64, u64>| sorted(r.select(|k, p, v| Some((*k, p, *v))));
            assert_eq!(all(&reg), all(&model));
            assert_eq!(reg.monitors(), model.monitors());
            assert_dup_consistent(&reg);
        }
    });
}
