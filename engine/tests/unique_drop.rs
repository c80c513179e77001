//! Every key and value a `Unique` takes is dropped exactly once: by the registry when it
//! removes or replaces it (after epoch reclamation), or by the caller it was handed back to.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;

use common::{for_each_config, scaled, unique, Counted, Tracker};
use regent::{Pid, TryRegisterError, Unique};

const A: Pid = Pid::new(1);
const B: Pid = Pid::new(2);

#[test]
fn unregister_drops_the_value_once() {
    for_each_config(|p| {
        let values = Tracker::new();
        let reg = unique::<u64, Counted>(p);
        for k in 0..10 {
            reg.register(Pid::new(k), k, values.counted(k)).unwrap();
        }
        assert!(!reg.unregister(B, &1), "not the owner");
        values.assert_live(10);
        for k in 0..4 {
            assert!(reg.unregister(Pid::new(k), &k));
        }
        values.assert_live(6);
        drop(reg);
        values.assert_live(0);
    });
}

#[test]
fn process_down_drops_each_value_once() {
    for_each_config(|p| {
        let values = Tracker::new();
        let reg = unique::<u64, Counted>(p);
        for k in 0..15 {
            let pid = if k < 10 { A } else { B };
            reg.register(pid, k, values.counted(k)).unwrap();
        }
        assert_eq!(reg.process_down(A), 10);
        values.assert_live(5);
        assert_eq!(reg.process_down(B), 5);
        values.assert_live(0);
    });
}

#[test]
fn update_value_drops_each_replaced_value_once() {
    for_each_config(|p| {
        let values = Tracker::new();
        let reg = unique::<u64, Counted>(p);
        reg.register(A, 0, values.counted(0)).unwrap();
        for id in 1..=100 {
            let (new, old) = reg
                .update_value(A, &0, |old| values.counted(old.id + 1))
                .unwrap();
            assert_eq!((new.id, old.id), (id, id - 1));
        }
        assert!(reg.update_value(B, &0, |_| unreachable!()).is_none());
        values.assert_live(1);
        assert_eq!(reg.lookup(&0).unwrap().1.id, 100);
        drop(reg);
        values.assert_live(0);
    });
}

#[test]
fn a_rejected_key_and_value_are_handed_back_not_dropped() {
    for_each_config(|p| {
        let (keys, values) = (Tracker::new(), Tracker::new());
        let assert_live = |n| {
            keys.assert_live(n);
            values.assert_live(n);
        };
        let reg = Unique::<Counted, Counted>::builder()
            .partitions(p)
            .max_entries(2)
            .build();
        reg.register(A, keys.counted(0), values.counted(0)).unwrap();
        let taken = reg
            .register(B, keys.counted(0), values.counted(1))
            .unwrap_err();
        assert_eq!((taken.key.id, taken.value.id), (0, 1));
        assert_live(2);
        drop(taken);
        assert_live(1);

        reg.register(A, keys.counted(1), values.counted(1)).unwrap();
        let err = reg.try_register(B, keys.counted(2), values.counted(2));
        let Err(TryRegisterError::Full { key, value }) = err else {
            panic!("expected Full, got {err:?}");
        };
        assert_eq!((key.id, value.id), (2, 2));
        assert_live(3);
        drop((key, value));
        assert_live(2);
        drop(reg);
        assert_live(0);
    });
}

#[test]
fn keys_are_dropped_once() {
    for_each_config(|p| {
        let keys = Tracker::new();
        let reg = unique::<Counted, u64>(p);
        for id in 0..10 {
            reg.register(Pid::new(id % 2), keys.counted(id), id)
                .unwrap();
        }
        // Clones handed out by `keys` and probe keys are the caller's to drop.
        assert_eq!(reg.keys(Pid::new(0)).len(), 5);
        assert!(reg.contains_key(&keys.counted(3)));
        keys.assert_live(10);
        assert!(reg.unregister(Pid::new(0), &keys.counted(0)));
        keys.assert_live(9);
        assert_eq!(reg.process_down(Pid::new(1)), 5);
        keys.assert_live(4);
        // Replacing a value keeps the key.
        assert!(reg
            .update_value(Pid::new(0), &keys.counted(2), |v| v + 1)
            .is_some());
        keys.assert_live(4);
        drop(reg);
        keys.assert_live(0);
    });
}

#[test]
fn dropping_the_registry_drops_live_and_removed_entries() {
    for_each_config(|p| {
        let (keys, values) = (Tracker::new(), Tracker::new());
        let reg = unique::<Counted, Counted>(p);
        for id in 0..1000 {
            let pid = Pid::new(id % 10);
            reg.register(pid, keys.counted(id), values.counted(id))
                .unwrap();
        }
        for id in (0..1000).step_by(3) {
            assert!(reg.unregister(Pid::new(id % 10), &keys.counted(id)));
        }
        assert_eq!(reg.process_down(Pid::new(4)), 67);
        drop(reg);
        keys.assert_live(0);
        values.assert_live(0);
    });
}

#[test]
fn growth_neither_drops_nor_duplicates_entries() {
    let n = scaled(400_000) as u64;
    let values = Tracker::new();
    let reg = unique::<u64, Counted>(1);
    for k in 0..n {
        reg.register(Pid::new(k % 100), k, values.counted(k))
            .unwrap();
    }
    values.assert_live(n as usize);
    assert!((0..n).all(|k| reg.lookup(&k).is_some_and(|(_, v)| v.id == k)));
    drop(reg);
    values.assert_live(0);
}

#[test]
fn concurrent_removals_drop_each_value_once() {
    const THREADS: u64 = 4;
    let per_thread = scaled(20_000) as u64;
    for_each_config(|p| {
        let values = Tracker::new();
        let reg = unique::<u64, Counted>(p);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (reg, values) = (&reg, &values);
                s.spawn(move || {
                    // Thread t owns pids t*10..t*10+10 and keys t*per_thread.. (disjoint).
                    let pid_of = |k: u64| Pid::new(t * 10 + k % 10);
                    let keys = t * per_thread..(t + 1) * per_thread;
                    for k in keys.clone() {
                        reg.register(pid_of(k), k, values.counted(k)).unwrap();
                    }
                    for k in keys.step_by(2) {
                        assert!(reg.unregister(pid_of(k), &k));
                    }
                    let downed: usize = (0..10).map(|i| reg.process_down(pid_of(i))).sum();
                    assert_eq!(downed as u64, per_thread / 2);
                });
            }
        });
        assert!(reg.is_empty());
        values.assert_live(0);
    });
}

/// `Small` values made (including clones) and dropped.
static SMALL_MADE: AtomicUsize = AtomicUsize::new(0);
static SMALL_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A value too small to hold a box pointer: it stays inline although it has drop glue.
#[derive(Debug, PartialEq)]
struct Small(u16);

impl Small {
    fn new(v: u16) -> Self {
        SMALL_MADE.fetch_add(1, SeqCst);
        Small(v)
    }
}

impl Clone for Small {
    fn clone(&self) -> Self {
        Small::new(self.0)
    }
}

impl Drop for Small {
    fn drop(&mut self) {
        SMALL_DROPS.fetch_add(1, SeqCst);
    }
}

#[test]
fn values_of_every_layout_are_dropped_once() {
    // Boxed (`Counted` has drop glue and room for a pointer) and inline (`Small`), through
    // growth, replacement, removal, a refusal and the registry's drop.
    let values = Tracker::new();
    let boxed = unique::<u64, Counted>(1);
    let small = unique::<u64, Small>(1);
    let n = scaled(20_000) as u64;
    for k in 0..n {
        boxed.register(Pid::new(k), k, values.counted(k)).unwrap();
        small
            .register(Pid::new(k), k, Small::new(k as u16))
            .unwrap();
    }
    let refused = boxed.register(B, 0, values.counted(u64::MAX)).unwrap_err();
    assert_eq!(refused.value.id, u64::MAX, "handed back whole");
    drop(refused);
    let refused = small.register(B, 0, Small::new(7)).unwrap_err();
    assert_eq!(refused.value.0, 7, "handed back whole");
    drop(refused);
    for k in 0..n / 2 {
        let (new, old) = boxed
            .update_value(Pid::new(k), &k, |v| values.counted(v.id + n))
            .unwrap();
        assert_eq!((new.id, old.id), (k + n, k));
        let (new, old) = small
            .update_value(Pid::new(k), &k, |v| Small::new(v.0 + 1))
            .unwrap();
        assert_eq!((new.0, old.0), (k as u16 + 1, k as u16));
        assert!(boxed.unregister(Pid::new(k), &k));
        assert!(small.unregister(Pid::new(k), &k));
    }
    values.assert_live((n - n / 2) as usize);
    drop(boxed);
    values.assert_live(0);
    drop(small);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while SMALL_DROPS.load(SeqCst) < SMALL_MADE.load(SeqCst) && std::time::Instant::now() < deadline
    {
        regent::reclaim();
        thread::yield_now();
    }
    assert_eq!(
        SMALL_DROPS.load(SeqCst),
        SMALL_MADE.load(SeqCst),
        "every Small dropped once"
    );
}
