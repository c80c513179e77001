//! Faults in user code called by a duplicate registry: a panicking dispatch callback,
//! listener, select closure, `unregister_match` predicate or `lock` body propagates to the
//! caller and leaves the registry consistent, leak-free and usable.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{assert_dup_consistent, Counted, Tracker, Watchdog};
use regent::{Duplicate, Event, PartitionBy, Pid};

fn pid(n: u64) -> Pid {
    Pid::new(n)
}

fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

#[test]
fn a_panicking_dispatch_callback_changes_nothing() {
    let _watchdog = Watchdog::new("dispatch panic", Duration::from_secs(60));
    let tracker = Tracker::new();
    let reg: Duplicate<u64, Counted> = Duplicate::new();
    for i in 0..100 {
        reg.register(pid(i), 1, tracker.counted(i));
    }
    assert!(panics(|| {
        reg.dispatch(&1, |_, v| assert!(v.id != 50, "boom"));
    }));
    assert!(panics(|| {
        reg.dispatch_parallel(&1, 2, |_, v| assert!(v.id != 70, "boom"));
    }));
    assert_eq!(reg.dispatch(&1, |_, _| {}), 100);
    // Writers are not blocked by the unwound walk.
    reg.register(pid(500), 1, tracker.counted(500));
    assert_eq!(reg.process_down(pid(500)), 1);
    drop(reg);
    tracker.assert_live(0);
}

#[test]
fn a_panicking_listener_leaves_each_change_complete() {
    let _watchdog = Watchdog::new("listener panic", Duration::from_secs(60));
    let tracker = Tracker::new();
    let armed = Arc::new(AtomicBool::new(true));
    let trigger = armed.clone();
    let reg: Duplicate<u64, Counted> = Duplicate::builder()
        .partitions(4)
        .listener(move |_: &Event<'_, u64, Counted, Pid>| {
            assert!(!trigger.load(Ordering::Relaxed), "listener boom");
        })
        .build();
    assert!(panics(|| reg.register(pid(1), 1, tracker.counted(1))));
    assert_eq!(reg.lookup(&1).len(), 1, "the registration stands");
    assert!(panics(|| reg.register(pid(1), 1, tracker.counted(2))));
    assert!(panics(|| {
        reg.unregister(pid(1), &1);
    }));
    assert_eq!(reg.count(), 0, "the unregistration stands");
    armed.store(false, Ordering::Relaxed);
    reg.register(pid(2), 2, tracker.counted(3));
    reg.register(pid(2), 3, tracker.counted(4));
    armed.store(true, Ordering::Relaxed);
    assert!(panics(|| {
        reg.process_down(pid(2));
    }));
    assert_eq!((reg.count(), reg.monitors()), (0, 0), "the exit stands");
    tracker.assert_live(0);
    armed.store(false, Ordering::Relaxed);
    reg.register(pid(2), 2, tracker.counted(5));
    assert_eq!(reg.unregister(pid(2), &2), 1, "nothing left locked");
}

#[test]
fn a_panicking_select_or_predicate_changes_nothing() {
    let _watchdog = Watchdog::new("select panic", Duration::from_secs(60));
    let reg: Duplicate<u64, u64> = Duplicate::builder().partition_by(PartitionBy::Pid).build();
    for i in 0..50 {
        reg.register(pid(i % 5), i % 3, i);
    }
    assert!(panics(|| {
        reg.select(|_, _, &v| if v == 25 { panic!("boom") } else { Some(v) });
    }));
    assert!(panics(|| {
        reg.count_select(|_, _, &v| v == 1 / (v - 30).min(1));
    }));
    assert!(panics(|| {
        reg.matching(&0, |_, &v| if v == 9 { panic!("boom") } else { true });
    }));
    assert!(panics(|| {
        reg.unregister_match(pid(0), &0, |&v| if v == 15 { panic!("boom") } else { true });
    }));
    assert_eq!(reg.count(), 50, "a panicking predicate removes nothing");
    assert!(panics(|| reg.lock(9, || panic!("boom"))));
    assert_eq!(reg.lock(9, || 1), 1, "the lock was released");
    assert_dup_consistent(&reg);
}
