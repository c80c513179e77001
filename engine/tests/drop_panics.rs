//! Keys and values whose `Drop` panics (the crate docs, "Panics in `Drop`"). regent drops
//! removed keys and values late, in whichever thread collects the epoch's garbage, and
//! drops the live ones when a registry is dropped. Each panic must be caught where it
//! happens and counted in `Stats::drop_panics`; every other key and value must still be
//! dropped exactly once, the counts must stay exact, and `retired_bytes` must drain to 0.
//!
//! Without the catch, the panic unwinds out of crossbeam-epoch's garbage bag in some later
//! call, the bag's other deferred drops never run, and `retired_bytes` never drains: the
//! `settle` below then times out.

mod common;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::{
    assert_consistent, assert_dup_consistent, for_each_config, for_each_dup_config, serial_quiet,
};
use regent::{Duplicate, PartitionBy, Pid, Unique};

/// `drop_panics` and `retired_bytes` are process-wide: the tests of this file run one at a
/// time.
fn serial() -> MutexGuard<'static, ()> {
    serial_quiet(BOMB)
}

const BOMB: &str = "bomb";

/// Which bombs are alive: each has a serial of its own, and a drop of a serial that is not
/// alive (a second drop) fails the test.
#[derive(Default)]
struct Ledger {
    live: Mutex<HashSet<u64>>,
    next: AtomicU64,
}

impl Ledger {
    fn live(&self) -> usize {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A value whose `Drop` panics if `armed`, after recording the drop. Compared by `tag`,
/// which clones keep; clones are unarmed.
#[derive(Debug)]
struct Bomb {
    tag: u64,
    serial: u64,
    armed: bool,
    ledger: Arc<Ledger>,
}

impl PartialEq for Bomb {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag
    }
}

impl Eq for Bomb {}

impl PartialOrd for Bomb {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bomb {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.tag.cmp(&other.tag)
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ledger")
    }
}

impl Bomb {
    fn new(ledger: &Arc<Ledger>, tag: u64, armed: bool) -> Bomb {
        let serial = ledger.next.fetch_add(1, Ordering::Relaxed);
        ledger
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(serial);
        Bomb {
            tag,
            serial,
            armed,
            ledger: Arc::clone(ledger),
        }
    }
}

impl Clone for Bomb {
    fn clone(&self) -> Bomb {
        Bomb::new(&self.ledger, self.tag, false)
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        let was_live = self
            .ledger
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.serial);
        // Not an assert: a panic here would be counted as a bomb. A second drop shows as a
        // ledger that never empties, or one that is short.
        if !was_live {
            eprintln!("bomb {} dropped twice", self.serial);
            std::process::abort();
        }
        if self.armed {
            std::panic::panic_any(BOMB);
        }
    }
}

/// A key: hashed and compared by `id`, carrying a bomb.
#[derive(Debug, Clone)]
struct BombKey {
    id: u64,
    #[allow(dead_code)] // carried for its drop
    bomb: Bomb,
}

impl PartialEq for BombKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for BombKey {}

impl PartialOrd for BombKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BombKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl Hash for BombKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// Reclaims until no removed byte is left waiting (`retired_bytes` 0), or fails after 20 s.
fn settle(retired: impl Fn() -> usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let outcome = catch_unwind(regent::reclaim);
        assert!(outcome.is_ok(), "a panic escaped regent::reclaim");
        if retired() == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "retired_bytes stuck at {}",
            retired()
        );
        std::thread::yield_now();
    }
}

fn settle_unique<K, V>(reg: &Unique<K, V>)
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    settle(|| reg.stats().retired_bytes);
}

/// The process-wide count, read through a registry of no interest.
fn drop_panics() -> usize {
    Unique::<u64, u64>::new().stats().drop_panics
}

/// Every removal path of a unique registry's values (unregister, process_down, the old
/// value of update_value) and the registry's own drop, with a value in seven armed.
#[test]
fn unique_values_that_panic_on_drop_are_each_dropped_once_and_counted() {
    let _serial = serial();
    for_each_config(|partitions| {
        let ledger = Arc::new(Ledger::default());
        let reg: Unique<u64, Bomb> = common::unique(partitions);
        settle_unique(&reg);
        let base = drop_panics();
        let armed = |key: u64| key % 7 == 0;
        for pid in 1..=20u64 {
            for key in pid * 100..pid * 100 + 10 {
                reg.register(Pid::new(pid), key, Bomb::new(&ledger, key, armed(key)))
                    .unwrap();
            }
        }
        let mut removed_armed = 0;
        for pid in 1..=5u64 {
            for key in pid * 100..pid * 100 + 10 {
                assert!(reg.unregister(Pid::new(pid), &key));
                removed_armed += usize::from(armed(key));
            }
        }
        for pid in 6..=10u64 {
            assert_eq!(reg.process_down(Pid::new(pid)), 10);
            removed_armed += (pid * 100..pid * 100 + 10).filter(|&k| armed(k)).count();
        }
        for pid in 11..=15u64 {
            for key in pid * 100..pid * 100 + 10 {
                let (new, old) = reg
                    .update_value(Pid::new(pid), &key, |_| Bomb::new(&ledger, key, false))
                    .expect("the owner updates");
                // Clones, unarmed: the registry's own old value is the one that panics.
                assert!(!new.armed && !old.armed);
                removed_armed += usize::from(armed(key));
            }
        }
        assert!(removed_armed > 10, "the test must arm some removed values");
        settle_unique(&reg);
        assert_eq!(
            drop_panics() - base,
            removed_armed,
            "each armed value removed panics once, and is counted"
        );
        // Pids 11-20 hold their 100 values; nothing else is alive.
        assert_eq!(ledger.live(), 100, "a removed value was never dropped");
        assert_eq!(reg.count(), 100);
        assert_eq!(reg.monitors(), 10);
        assert_consistent(&reg);
        // The freed names register again.
        for key in 100..110u64 {
            reg.register(Pid::new(99), key, Bomb::new(&ledger, key, false))
                .unwrap();
        }
        let live_armed = (1600..2100u64)
            .filter(|k| k % 100 < 10 && armed(*k))
            .count();
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(reg)));
        assert!(dropped.is_ok(), "a panic escaped the registry's drop");
        settle(drop_panics_free_retired);
        assert_eq!(drop_panics() - base, removed_armed + live_armed);
        assert_eq!(ledger.live(), 0, "the registry's drop left values alive");
    });
}

/// `retired_bytes` without a registry at hand.
fn drop_panics_free_retired() -> usize {
    Unique::<u64, u64>::new().stats().retired_bytes
}

/// Keys that panic on drop: the entry's value is still dropped (while the key's panic
/// unwinds), once.
#[test]
fn unique_keys_that_panic_on_drop_still_drop_their_values() {
    let _serial = serial();
    for_each_config(|partitions| {
        let ledger = Arc::new(Ledger::default());
        let reg: Unique<BombKey, Bomb> = common::unique(partitions);
        settle_unique(&reg);
        let base = drop_panics();
        for id in 0..300u64 {
            let key = BombKey {
                id,
                bomb: Bomb::new(&ledger, id, id % 3 == 0),
            };
            reg.register(Pid::new(id % 30 + 1), key, Bomb::new(&ledger, id, false))
                .unwrap();
        }
        for id in 0..150u64 {
            let probe = BombKey {
                id,
                bomb: Bomb::new(&ledger, id, false),
            };
            assert!(reg.unregister(Pid::new(id % 30 + 1), &probe));
        }
        for pid in 1..=10u64 {
            reg.process_down(Pid::new(pid));
        }
        settle_unique(&reg);
        let left: Vec<u64> = {
            let mut ids = reg.select(|key, _, _| Some(key.id));
            ids.sort_unstable();
            ids
        };
        let expected: Vec<u64> = (150..300).filter(|id| id % 30 + 1 > 10).collect();
        assert_eq!(left, expected);
        assert_eq!(
            drop_panics() - base,
            (0..300).filter(|id| id % 3 == 0).count()
                - expected.iter().filter(|id| *id % 3 == 0).count()
        );
        assert_eq!(
            ledger.live(),
            2 * expected.len(),
            "keys and values still registered"
        );
        assert_consistent(&reg);
        drop(reg);
        settle(drop_panics_free_retired);
        assert_eq!(drop_panics() - base, 100);
        assert_eq!(ledger.live(), 0);
    });
}

/// Bags: values that panic when a leave, an `unregister_match`, an exit or the registry's
/// drop drops them; keys that panic when their bag is freed, or when a registration under a
/// key that has a bag already drops the caller's copy.
#[test]
fn duplicate_keys_and_values_that_panic_on_drop_are_each_dropped_once() {
    let _serial = serial();
    for_each_dup_config(|partitions, by: PartitionBy| {
        let ledger = Arc::new(Ledger::default());
        let reg: Duplicate<BombKey, Bomb> = common::duplicate(partitions, by);
        settle(|| reg.stats().retired_bytes);
        let base = drop_panics();
        let mut armed_values = 0;
        let mut armed_keys = 0;
        // Topics 0..10, pids 1..=40, each pid joining 5 topics; every third value armed,
        // and every key copy but the first of each topic armed (those are dropped at once,
        // their bag existing), the first one armed for even topics.
        let mut seen_topic = HashSet::new();
        for pid in 1..=40u64 {
            for j in 0..5u64 {
                let topic = (pid + j) % 10;
                let first = seen_topic.insert(topic);
                let key_armed = if first { topic % 2 == 0 } else { true };
                let value_armed = (pid + j) % 3 == 0;
                armed_keys += usize::from(key_armed);
                armed_values += usize::from(value_armed);
                let key = BombKey {
                    id: topic,
                    bomb: Bomb::new(&ledger, topic, key_armed),
                };
                reg.register(Pid::new(pid), key, Bomb::new(&ledger, pid, value_armed));
            }
        }
        assert_eq!(reg.count(), 200);
        let probe = |id| BombKey {
            id,
            bomb: Bomb::new(&ledger, id, false),
        };
        // Leaves, matched leaves and exits remove half the entries.
        for pid in 1..=10u64 {
            assert_eq!(reg.unregister(Pid::new(pid), &probe((pid + 1) % 10)), 1);
            assert_eq!(
                reg.unregister_match(Pid::new(pid), &probe((pid + 2) % 10), |_| true),
                1
            );
        }
        for pid in 11..=24u64 {
            assert_eq!(reg.process_down(Pid::new(pid)), 5);
        }
        settle(|| reg.stats().retired_bytes);
        assert_eq!(reg.count(), 200 - 20 - 70);
        assert_dup_consistent(&reg);
        // The registry's drop drops every live value and frees every bag with its key.
        let dropped = catch_unwind(AssertUnwindSafe(move || drop(reg)));
        assert!(dropped.is_ok(), "a panic escaped the registry's drop");
        settle(drop_panics_free_retired);
        assert_eq!(ledger.live(), 0, "a key or value was never dropped");
        assert_eq!(
            drop_panics() - base,
            armed_keys + armed_values,
            "each armed key and value panicked once, and was counted"
        );
    });
}

/// Metadata replaced or deleted is dropped after the registry's metadata lock is released:
/// a `Drop` that reads the metadata does not deadlock.
#[test]
fn a_meta_value_whose_drop_reads_the_meta_does_not_deadlock() {
    struct ReadsMeta(Arc<Unique<u64, u64>>);
    impl Drop for ReadsMeta {
        fn drop(&mut self) {
            let _ = self.0.meta::<u32>("other");
        }
    }
    let reg = Arc::new(Unique::<u64, u64>::new());
    let (done, finished) = std::sync::mpsc::channel();
    let worker = {
        let reg = Arc::clone(&reg);
        std::thread::spawn(move || {
            reg.put_meta("x", ReadsMeta(Arc::clone(&reg)));
            reg.put_meta("x", ReadsMeta(Arc::clone(&reg)));
            assert!(reg.delete_meta("x"));
            done.send(()).unwrap();
        })
    };
    finished
        .recv_timeout(Duration::from_secs(20))
        .expect("put_meta or delete_meta deadlocked in the old value's drop");
    worker.join().unwrap();
}
