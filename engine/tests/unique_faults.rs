//! Faults in caller code: a listener, an `update_value` closure, a `select` /
//! `count_select` closure or a `lock` body that panics, and listeners that call back into
//! the registry.
//!
//! In every case the panic reaches the caller; the registry stays consistent (counts,
//! monitors, lookups, keys agree); values are neither leaked nor dropped twice (they count
//! their live instances); and later calls on the same pid and key neither block nor fail.
//! Each test runs under a watchdog, so a lock left held fails the run instead of hanging
//! it. `update_value` leaves the old value in place when its closure panics; a listener
//! runs after its change is complete, so the change stands.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Weak};
use std::time::Duration;

use common::{assert_consistent, for_each_config, Counted, Tracker, Watchdog};
use regent::{Event, Pid, Unique};

const A: Pid = Pid::new(1);
const B: Pid = Pid::new(2);

/// Long enough for a slow CI machine, short enough that a deadlock fails the run quickly.
const LIMIT: Duration = Duration::from_secs(60);

/// Which listener events panic.
#[derive(Clone, Copy, PartialEq)]
enum Fail {
    Registered,
    Unregistered,
    Down,
}

/// A registry of `Counted` values whose listener panics on `fail` events for key 13.
fn failing_registry(partitions: usize, fail: Fail) -> Unique<u64, Counted> {
    Unique::builder()
        .partitions(partitions)
        .listener(move |event: &Event<'_, u64, Counted, Pid>| {
            let (kind, key) = match *event {
                Event::Registered { key, .. } => (Fail::Registered, key),
                Event::Unregistered { key, .. } => (Fail::Unregistered, key),
                Event::Down { key, .. } => (Fail::Down, key),
            };
            if kind == fail && *key == 13 {
                panic!("listener failed");
            }
        })
        .build()
}

/// Runs `f`, which must panic with `message`.
fn expect_panic<T>(message: &str, f: impl FnOnce() -> T) {
    let payload = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic: {message}"),
        Err(payload) => payload,
    };
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<not a string>");
    assert_eq!(text, message, "the caller's own panic propagates");
}

/// Registers keys 0..10, key k for pid k % 3 (so `A` holds 1, 4 and 7).
fn populate(reg: &Unique<u64, Counted>, tracker: &Tracker) {
    for k in 0..10 {
        reg.register(Pid::new(k % 3), k, tracker.counted(k))
            .unwrap();
    }
}

/// After a fault: the same pid and key still work, in every operation, without blocking.
fn exercise_after_fault(reg: &Unique<u64, Counted>, tracker: &Tracker, pid: Pid) {
    let _ = reg.unregister(pid, &13);
    reg.register(pid, 13, tracker.counted(1300)).unwrap();
    assert_eq!(reg.whereis(&13), Some(pid));
    let (new, old) = reg
        .update_value(pid, &13, |v| tracker.counted(v.id + 1))
        .expect("the owner updates");
    assert_eq!((new.id, old.id), (1301, 1300));
    assert!(reg.keys(pid).contains(&13));
    assert!(reg.unregister(pid, &13));
    reg.register(pid, 13, tracker.counted(1400)).unwrap();
    assert!(reg.process_down(pid) >= 1);
    assert_eq!(reg.whereis(&13), None);
    assert_consistent(reg);
}

#[test]
fn a_panicking_registered_listener_keeps_the_entry() {
    let _watchdog = Watchdog::new("registered listener", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        {
            let reg = failing_registry(p, Fail::Registered);
            populate(&reg, &tracker);
            expect_panic("listener failed", || {
                reg.register(A, 13, tracker.counted(13))
            });
            // The change stands: the listener ran after it was complete.
            assert_eq!(reg.whereis(&13), Some(A));
            assert_eq!(reg.lookup(&13).map(|(_, v)| v.id), Some(13));
            assert_eq!((reg.count(), reg.monitors()), (11, 3));
            assert_eq!(common::sorted(reg.keys(A)), vec![1, 4, 7, 13]);
            assert_consistent(&reg);
            tracker.assert_live(11);
            // The same pid and key keep working (registering key 13 panics every time,
            // and every time the registration stands).
            assert!(reg.unregister(A, &13));
            tracker.assert_live(10);
            expect_panic("listener failed", || {
                reg.register(A, 13, tracker.counted(14))
            });
            assert_eq!(reg.lookup(&13).map(|(p, v)| (p, v.id)), Some((A, 14)));
            assert_eq!(reg.process_down(A), 4);
            assert_consistent(&reg);
            tracker.assert_live(7);
        }
        tracker.assert_live(0);
    });
}

#[test]
fn a_panicking_unregistered_listener_leaves_the_entry_removed_and_the_registry_usable() {
    let _watchdog = Watchdog::new("unregistered listener", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = failing_registry(p, Fail::Unregistered);
        populate(&reg, &tracker);
        reg.register(A, 13, tracker.counted(13)).unwrap();
        expect_panic("listener failed", || reg.unregister(A, &13));
        // The change stands: the entry is gone, and A's monitor holds its other keys only.
        assert_eq!(reg.whereis(&13), None);
        assert_eq!((reg.count(), reg.monitors()), (10, 3));
        assert_eq!(common::sorted(reg.keys(A)), vec![1, 4, 7]);
        assert_consistent(&reg);
        // Nothing was left locked: A, and key 13, work as before.
        reg.register(A, 13, tracker.counted(130)).unwrap();
        assert_eq!(
            reg.update_value(A, &13, |v| tracker.counted(v.id + 1))
                .map(|(n, o)| (n.id, o.id)),
            Some((131, 130))
        );
        assert_eq!(reg.process_down(A), 4);
        reg.register(B, 13, tracker.counted(132)).unwrap();
        assert_consistent(&reg);
    });
}

#[test]
fn a_panicking_down_listener_leaves_every_entry_removed_and_the_registry_usable() {
    let _watchdog = Watchdog::new("down listener", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = failing_registry(p, Fail::Down);
        populate(&reg, &tracker);
        reg.register(A, 13, tracker.counted(13)).unwrap();
        expect_panic("listener failed", || reg.process_down(A));
        // The exit is complete even though the listener saw only part of it.
        for k in [1, 4, 7, 13] {
            assert_eq!(reg.whereis(&k), None, "key {k}");
        }
        assert!(reg.keys(A).is_empty());
        assert_eq!((reg.count(), reg.monitors()), (7, 2));
        assert_consistent(&reg);
        // No monitor was left behind for A.
        assert_eq!(reg.process_down(A), 0);
        // Key 13 is free again, for a fresh pid.
        let fresh = Pid::new(100);
        reg.register(fresh, 13, tracker.counted(200)).unwrap();
        assert_eq!(reg.lookup(&13).map(|(p, v)| (p, v.id)), Some((fresh, 200)));
        assert!(reg.unregister(fresh, &13));
        assert_consistent(&reg);
    });
}

/// A removal whose listener panics must still drop the removed key and value once.
fn assert_removed_entries_are_dropped(fail: Fail) {
    let _watchdog = Watchdog::new("listener leak", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        {
            let reg = failing_registry(p, fail);
            populate(&reg, &tracker);
            reg.register(A, 13, tracker.counted(13)).unwrap();
            tracker.assert_live(11);
            if fail == Fail::Down {
                expect_panic("listener failed", || reg.process_down(A));
                // Keys 1, 4, 7 and 13 are gone.
                tracker.assert_live(7);
            } else {
                expect_panic("listener failed", || reg.unregister(A, &13));
                tracker.assert_live(10);
            }
        }
        tracker.assert_live(0);
    });
}

#[test]
fn a_panicking_unregistered_listener_does_not_leak_the_removed_entry() {
    assert_removed_entries_are_dropped(Fail::Unregistered);
}

#[test]
fn a_panicking_down_listener_does_not_leak_the_removed_entries() {
    assert_removed_entries_are_dropped(Fail::Down);
}

#[test]
fn a_panicking_update_closure_leaves_the_old_value_and_releases_the_pid() {
    let _watchdog = Watchdog::new("update closure", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        {
            let reg: Unique<u64, Counted> = Unique::builder().partitions(p).build();
            populate(&reg, &tracker);
            reg.register(A, 13, tracker.counted(13)).unwrap();
            tracker.assert_live(11);
            expect_panic("update failed", || {
                reg.update_value(A, &13, |old| {
                    // A value made before the panic is dropped by the unwind, once.
                    let _half_built = tracker.counted(old.id + 1);
                    panic!("update failed")
                })
            });
            // The old value stays, whole; nothing leaked or dropped twice.
            assert_eq!(reg.lookup(&13).map(|(p, v)| (p, v.id)), Some((A, 13)));
            tracker.assert_live(11);
            assert_consistent(&reg);
            // A's lock was released by the unwind: every operation on A and key 13 works.
            exercise_after_fault(&reg, &tracker, A);
            tracker.assert_live(7);
            // Many panicking updates in a row, across a table migration, change nothing.
            for k in 100..400 {
                reg.register(B, k, tracker.counted(k)).unwrap();
                expect_panic("again", || {
                    reg.update_value(B, &k, |_| -> Counted { panic!("again") })
                });
            }
            assert_eq!(reg.keys(B).len(), 303);
            assert!((100..400).all(|k| reg.lookup(&k).map(|(_, v)| v.id) == Some(k)));
            assert_consistent(&reg);
            tracker.assert_live(307);
        }
        tracker.assert_live(0);
    });
}

#[test]
fn a_panicking_select_or_count_select_closure_leaks_nothing_and_blocks_nothing() {
    let _watchdog = Watchdog::new("select closure", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        {
            let reg: Unique<u64, Counted> = Unique::builder().partitions(p).build();
            for k in 0..200 {
                reg.register(Pid::new(k % 4), k, tracker.counted(k))
                    .unwrap();
            }
            tracker.assert_live(200);
            let mut visited = 0;
            expect_panic("select failed", || {
                reg.select(|&k, _, v| {
                    visited += 1;
                    if visited == 100 {
                        panic!("select failed");
                    }
                    // Clones collected so far are dropped by the unwind.
                    Some((k, v.clone()))
                })
            });
            tracker.assert_live(200);
            let mut visited = 0;
            expect_panic("count failed", || {
                reg.count_select(|_, _, _| {
                    visited += 1;
                    assert!(visited < 150, "count failed");
                    true
                })
            });
            assert_consistent(&reg);
            // Writers are not blocked: the same keys change hands, grow the table and
            // are read back.
            for k in 0..200 {
                assert!(reg.unregister(Pid::new(k % 4), &k));
                reg.register(Pid::new(k % 3 + 10), k, tracker.counted(k + 1000))
                    .unwrap();
            }
            for k in 200..1000 {
                reg.register(Pid::new(k % 3 + 10), k, tracker.counted(k + 1000))
                    .unwrap();
            }
            assert_eq!(reg.count_select(|_, _, v| v.id >= 1000), 1000);
            assert_consistent(&reg);
            tracker.assert_live(1000);
        }
        tracker.assert_live(0);
    });
}

#[test]
fn a_listener_that_panics_on_every_event_never_corrupts_the_counts() {
    let _watchdog = Watchdog::new("listener always panics", LIMIT);
    for_each_config(|p| {
        let reg: Unique<u64, u64> = Unique::builder()
            .partitions(p)
            .listener(|_: &Event<'_, u64, u64, Pid>| panic!("always"))
            .build();
        let mut live = std::collections::BTreeMap::new();
        // Pid slot s runs pid s + 100 * g in its g-th life: a pid that went down is never
        // reused.
        let mut lives = [0u64; 7];
        for round in 0..400u64 {
            let slot = (round % 7) as usize;
            let (pid, key) = (Pid::new(slot as u64 + 100 * lives[slot]), round % 50);
            let registered = catch_unwind(AssertUnwindSafe(|| reg.register(pid, key, round)));
            match registered {
                // A registration that won panics in its listener.
                Err(_) => assert!(live.insert(key, pid).is_none(), "key {key}"),
                Ok(Err(e)) => assert_eq!(Some(&e.owner), live.get(&key)),
                Ok(Ok(())) => panic!("the listener did not run"),
            }
            if round % 5 == 0 {
                let owner = live.get(&key).copied().unwrap();
                assert!(catch_unwind(AssertUnwindSafe(|| reg.unregister(owner, &key))).is_err());
                live.remove(&key);
            }
            if round % 37 == 0 {
                let held = live.values().filter(|&&p| p == pid).count();
                let down = catch_unwind(AssertUnwindSafe(|| reg.process_down(pid)));
                assert_eq!(down.is_err(), held > 0);
                live.retain(|_, p| *p != pid);
                lives[slot] += 1;
            }
            assert_eq!(reg.count(), live.len());
        }
        let pids: std::collections::BTreeSet<_> = live.values().collect();
        assert_eq!(reg.monitors(), pids.len());
        assert_consistent(&reg);
    });
}

/// A registry whose listener, on every event about key 1, calls `react` with the registry.
fn reentrant_registry(
    react: impl Fn(&Unique<u64, u64>, &Event<'_, u64, u64, Pid>) + Send + Sync + 'static,
) -> Arc<Unique<u64, u64>> {
    Arc::new_cyclic(|weak: &Weak<Unique<u64, u64>>| {
        let weak = weak.clone();
        Unique::builder()
            .partitions(1)
            .listener(move |event: &Event<'_, u64, u64, Pid>| {
                let key = match *event {
                    Event::Registered { key, .. }
                    | Event::Unregistered { key, .. }
                    | Event::Down { key, .. } => *key,
                };
                if let (1, Some(reg)) = (key, weak.upgrade()) {
                    react(&reg, event);
                }
            })
            .build()
    })
}

#[test]
fn a_listener_may_call_back_into_the_registry_after_each_change() {
    let _watchdog = Watchdog::new("re-entrant listener", LIMIT);
    // On each event about key 1, the listener registers or removes key 2 for pid B.
    let reg = reentrant_registry(|reg, event| match event {
        Event::Registered { .. } => {
            reg.register(B, 2, 20).unwrap();
            assert_eq!(reg.update_value(B, &2, |v| v + 1), Some((21, 20)));
        }
        Event::Unregistered { .. } => assert!(reg.unregister(B, &2)),
        Event::Down { .. } => assert_eq!(reg.process_down(B), 1),
    });
    reg.register(A, 1, 10).unwrap();
    assert_eq!(reg.lookup(&2), Some((B, 21)));
    assert!(reg.unregister(A, &1));
    assert_eq!(reg.whereis(&2), None);
    reg.register(A, 1, 10).unwrap();
    assert_eq!(reg.process_down(A), 1);
    assert!(reg.is_empty());
    assert_consistent(&*reg);
}

#[test]
fn a_listener_may_call_give_away() {
    // In a child process: if it deadlocks (it did, when give_away called the listener under
    // its hand-off mutex), the blocked thread keeps its epoch pinned, which would stop
    // reclamation for every other test of this binary.
    let status = common::child_test("give_away_from_a_listener", Duration::from_secs(20), None);
    assert!(
        status.is_some_and(|s| s.success()),
        "give_away from a listener: {status:?} (None: it did not return)"
    );
}

/// Only does anything in the child process that the test above starts.
#[test]
#[ignore = "run in a child process by a_listener_may_call_give_away"]
fn give_away_from_a_listener() {
    if !common::in_child("give_away_from_a_listener") {
        return;
    }
    // On the hand-off of key 1 to B, the listener hands key 2 over as well.
    let reg = reentrant_registry(|reg, event| {
        if let Event::Registered { pid, .. } = *event {
            if pid == B {
                assert!(reg.give_away(A, &2, B));
            }
        }
    });
    reg.register(A, 1, 10).unwrap();
    reg.register(A, 2, 20).unwrap();
    assert!(reg.give_away(A, &1, B));
    assert_eq!(common::sorted(reg.keys(B)), vec![1, 2]);
}

#[test]
fn a_panicking_listener_during_give_away_leaves_the_hand_off_complete() {
    let _watchdog = Watchdog::new("give_away listener", LIMIT);
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = failing_registry(p, Fail::Unregistered);
        populate(&reg, &tracker);
        reg.register(A, 13, tracker.counted(13)).unwrap();
        // give_away reports Unregistered for A, then Registered for B: the first panics.
        expect_panic("listener failed", || reg.give_away(A, &13, B));
        assert_eq!(reg.lookup(&13).map(|(p, v)| (p, v.id)), Some((B, 13)));
        assert!(!reg.keys(A).contains(&13));
        assert!(reg.keys(B).contains(&13));
        assert_consistent(&reg);
        // Nothing stays locked or poisoned: the next hand-offs work, both ways.
        assert!(reg.give_away(B, &2, A));
        assert!(reg.give_away(A, &2, B));
        assert!(!reg.give_away(A, &13, B), "A no longer owns 13");
        assert_eq!(
            reg.update_value(B, &13, |v| tracker.counted(v.id + 1))
                .map(|(n, _)| n.id),
            Some(14)
        );
        assert_eq!(reg.process_down(B), 4);
        assert_consistent(&reg);
        drop(reg);
        tracker.assert_live(0);
    });
}

#[test]
fn a_panicking_lock_body_releases_the_lock_and_poisons_nothing() {
    let _watchdog = Watchdog::new("lock body", LIMIT);
    for_each_config(|p| {
        let reg: Unique<u64, u64> = Unique::builder().partitions(p).build();
        expect_panic("lock body failed", || {
            reg.lock(7, || -> () { panic!("lock body failed") })
        });
        // The same key locks again at once, and the registry is untouched.
        assert_eq!(reg.lock(7, || 42), 42);
        reg.register(A, 7, 1).unwrap();
        // A waiter queued behind a panicking holder gets its turn.
        let entered = AtomicBool::new(false);
        let served = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                expect_panic("holder failed", || {
                    reg.lock(7, || {
                        entered.store(true, SeqCst);
                        // Give the waiter time to queue up behind us.
                        std::thread::sleep(Duration::from_millis(50));
                        panic!("holder failed")
                    })
                });
            });
            while !entered.load(SeqCst) {
                std::thread::yield_now();
            }
            reg.lock(7, || served.fetch_add(1, SeqCst));
        });
        assert_eq!(served.load(SeqCst), 1);
        assert_eq!(reg.lock(7, || reg.whereis(&7)), Some(A));
    });
}
