//! Limits instead of aborts, and ownership.
//!
//! * `builder().max_entries(n)`: at the limit `try_register` returns
//!   `TryRegisterError::Full { key, value }` (nothing registered, no monitor left, key and
//!   value handed back) and `register` panics with the documented message; freeing an
//!   entry lets the next one in.
//! * Ownership: no public call lets one pid remove, update, take over or give away another
//!   pid's entry. Only `process_down(owner)`, the runtime's call, removes entries it did
//!   not register.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_consistent, for_each_config, sorted, Counted, Tracker, Workers};
use regent::{Event, Pid, TryRegisterError, Unique};

const A: Pid = Pid::new(1);
const B: Pid = Pid::new(2);
const C: Pid = Pid::new(3);

/// A limited registry of counted keys and values.
fn limited(partitions: usize, max: usize) -> Unique<Counted, Counted> {
    Unique::builder()
        .partitions(partitions)
        .max_entries(max)
        .build()
}

/// `try_register` that must report Full and hand back exactly what it was given.
fn assert_full(reg: &Unique<Counted, Counted>, tracker: &Tracker, pid: Pid, key: u64) {
    let before = (reg.count(), reg.monitors(), reg.keys(pid).len());
    match reg.try_register(pid, tracker.counted(key), tracker.counted(key + 1000)) {
        Err(TryRegisterError::Full { key: k, value: v }) => {
            assert_eq!((k.id, v.id), (key, key + 1000), "key and value handed back");
        }
        other => panic!("expected Full for key {key}, got {other:?}"),
    }
    let after = (reg.count(), reg.monitors(), reg.keys(pid).len());
    assert_eq!(before, after, "a Full registration changes nothing");
    assert_eq!(reg.whereis(&tracker.counted(key)), None, "key {key}");
}

#[test]
fn try_register_at_the_limit_registers_nothing_and_hands_key_and_value_back() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        {
            let reg = limited(p, 5);
            for k in 0..5 {
                reg.try_register(Pid::new(k % 2), tracker.counted(k), tracker.counted(k))
                    .unwrap();
            }
            tracker.assert_live(10);
            // A pid that holds entries, and fresh pids: neither gets in, and the fresh ones
            // get no monitor.
            for (pid, key) in [(Pid::new(0), 10), (C, 11), (Pid::new(77), 12)] {
                assert_full(&reg, &tracker, pid, key);
            }
            assert!(reg.keys(C).is_empty());
            assert_eq!(reg.process_down(C), 0);
            // Everything handed back was dropped by us, once: only the 5 entries are live.
            tracker.assert_live(10);
            assert_consistent_counted(&reg, 5, 2);
            // An update at the limit needs no new entry.
            let updated = reg.update_value(Pid::new(0), &tracker.counted(0), |v| {
                tracker.counted(v.id + 500)
            });
            assert_eq!(updated.map(|(n, o)| (n.id, o.id)), Some((500, 0)));
        }
        tracker.assert_live(0);
    });
}

/// `count`, `monitors` and `select` agree, at the expected sizes.
fn assert_consistent_counted(reg: &Unique<Counted, Counted>, entries: usize, pids: usize) {
    assert_eq!((reg.count(), reg.monitors()), (entries, pids));
    let selected = reg.select(|k, p, _| Some((k.id, p)));
    assert_eq!(selected.len(), entries);
    let distinct: std::collections::BTreeSet<Pid> = selected.iter().map(|e| e.1).collect();
    assert_eq!(distinct.len(), pids);
    assert_eq!(reg.stats().entries, entries);
}

#[test]
fn freeing_an_entry_lets_the_next_one_in() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = limited(p, 3);
        let key = |k| tracker.counted(k);
        reg.try_register(A, key(1), key(1)).unwrap();
        reg.try_register(A, key(2), key(2)).unwrap();
        reg.try_register(B, key(3), key(3)).unwrap();
        assert_full(&reg, &tracker, C, 4);
        // unregister frees one place.
        assert!(reg.unregister(A, &key(1)));
        reg.try_register(C, key(4), key(4)).unwrap();
        assert_full(&reg, &tracker, C, 5);
        // process_down frees all of a pid's places.
        assert_eq!(reg.process_down(A), 1);
        assert_eq!(reg.process_down(C), 1);
        reg.try_register(B, key(6), key(6)).unwrap();
        reg.try_register(Pid::new(9), key(7), key(7)).unwrap();
        assert_full(&reg, &tracker, Pid::new(9), 8);
        // A rejected (taken) registration does not hold a place either.
        assert!(reg.unregister(B, &key(3)));
        assert!(matches!(
            reg.try_register(A, key(6), key(0)),
            Err(TryRegisterError::Taken(e)) if e.owner == B
        ));
        reg.try_register(Pid::new(10), key(9), key(9)).unwrap();
        assert_consistent_counted(&reg, 3, 3);
        let mut held = reg.select(|k, _, _| Some(k.id));
        held.sort_unstable();
        assert_eq!(held, vec![6, 7, 9]);
    });
}

#[test]
fn a_taken_key_at_the_limit_changes_nothing() {
    // At the limit the registration of a taken key is refused too; which reason is given
    // (Full: the limit is checked first) matters less than that nothing changes.
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = limited(p, 1);
        reg.try_register(A, tracker.counted(1), tracker.counted(1))
            .unwrap();
        match reg.try_register(B, tracker.counted(1), tracker.counted(2)) {
            Err(TryRegisterError::Full { key, value }) => assert_eq!((key.id, value.id), (1, 2)),
            Err(TryRegisterError::Taken(e)) => {
                assert_eq!((e.owner, e.key.id, e.value.id), (A, 1, 2));
            }
            Ok(()) => panic!("registered past the limit"),
        }
        assert_consistent_counted(&reg, 1, 1);
        assert!(reg.keys(B).is_empty());
    });
}

#[test]
fn register_panics_at_the_limit_with_the_documented_message() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        let events = Arc::new(AtomicUsize::new(0));
        let reg: Unique<Counted, Counted> = Unique::builder()
            .partitions(p)
            .max_entries(2)
            .listener({
                let events = Arc::clone(&events);
                move |_: &Event<'_, Counted, Counted, Pid>| {
                    events.fetch_add(1, SeqCst);
                }
            })
            .build();
        reg.register(A, tracker.counted(1), tracker.counted(1))
            .unwrap();
        reg.register(B, tracker.counted(2), tracker.counted(2))
            .unwrap();
        let panic = catch_unwind(AssertUnwindSafe(|| {
            reg.register(C, tracker.counted(3), tracker.counted(3))
        }))
        .expect_err("register panics at the limit");
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap();
        assert_eq!(
            message,
            "registry is full: max_entries reached (use try_register to handle it)"
        );
        // Nothing registered, no monitor for C, no event; the key and value were dropped.
        assert_eq!(events.load(SeqCst), 2);
        assert_consistent_counted(&reg, 2, 2);
        assert!(reg.keys(C).is_empty());
        tracker.assert_live(4);
        // A registration that loses to a taken key still returns its error, not a panic.
        assert!(reg.unregister(B, &tracker.counted(2)));
        let taken = reg
            .register(C, tracker.counted(1), tracker.counted(5))
            .unwrap_err();
        assert_eq!((taken.owner, taken.key.id, taken.value.id), (A, 1, 5));
        reg.register(C, tracker.counted(3), tracker.counted(3))
            .unwrap();
    });
}

#[test]
fn max_entries_zero_admits_nothing() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = limited(p, 0);
        for k in 0..10 {
            assert_full(&reg, &tracker, Pid::new(k % 3), k);
        }
        assert_consistent_counted(&reg, 0, 0);
        tracker.assert_live(0);
    });
}

#[test]
fn the_limit_holds_while_threads_churn_at_it() {
    const THREADS: u64 = 4;
    const MAX: usize = 8;
    for_each_config(|p| {
        let reg: Unique<u64, u64> = Unique::builder().partitions(p).max_entries(MAX).build();
        let workers = Workers::new(THREADS as usize);
        let full = AtomicUsize::new(0);
        thread::scope(|s| {
            for t in 0..THREADS {
                let (reg, workers, full) = (&reg, &workers, &full);
                s.spawn(move || {
                    workers.run(|| {
                        let mut rng = common::Rng::new(t + 1);
                        let me = Pid::new(t);
                        let mut mine = Vec::new();
                        for _ in 0..common::scaled(20_000) {
                            let key = rng.below(64);
                            match reg.try_register(me, key, t) {
                                Ok(()) => mine.push(key),
                                Err(TryRegisterError::Full { key: k, value }) => {
                                    assert_eq!((k, value), (key, t));
                                    full.fetch_add(1, SeqCst);
                                }
                                Err(TryRegisterError::Taken(e)) => {
                                    assert_eq!(e.owner == me, mine.contains(&key));
                                }
                            }
                            // No cap of our own: one thread can fill the registry, so the
                            // limit is met even when the scheduler runs the threads one at
                            // a time.
                            if rng.below(4) == 0 && !mine.is_empty() {
                                let key = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                                assert!(reg.unregister(me, &key));
                            }
                        }
                        assert_eq!(reg.process_down(me), mine.len());
                    });
                });
            }
            // `count` sums per-thread shards at slightly different times, so a reader racing
            // with churn may see it off by a few: the exact check is the refill below.
            while workers.running() {
                thread::yield_now();
            }
        });
        assert!(full.load(SeqCst) > 0, "the limit was never reached");
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        // Every reservation was released: the registry fills to the limit again.
        for k in 0..MAX as u64 {
            reg.try_register(A, k, 0).unwrap();
        }
        assert!(matches!(
            reg.try_register(A, 99, 0),
            Err(TryRegisterError::Full { .. })
        ));
    });
}

// ---------- ownership ----------

#[test]
fn no_call_of_another_pid_removes_updates_or_takes_over_an_entry() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        let events = Arc::new(AtomicUsize::new(0));
        let reg: Unique<u64, Counted> = Unique::builder()
            .partitions(p)
            .listener({
                let events = Arc::clone(&events);
                move |_: &Event<'_, u64, Counted, Pid>| {
                    events.fetch_add(1, SeqCst);
                }
            })
            .build();
        for k in 0..6 {
            reg.register(A, k, tracker.counted(k)).unwrap();
        }
        reg.register(B, 100, tracker.counted(100)).unwrap();
        let before = events.load(SeqCst);
        for k in 0..6 {
            for other in [B, C] {
                assert!(!reg.unregister(other, &k), "{other:?} unregistered key {k}");
                let f = |_: &Counted| -> Counted { panic!("f runs only for the owner") };
                assert!(reg.update_value(other, &k, f).is_none());
                let taken = reg.register(other, k, tracker.counted(k + 50)).unwrap_err();
                assert_eq!((taken.owner, taken.key, taken.value.id), (A, k, k + 50));
                let taken = reg
                    .try_register(other, k, tracker.counted(k + 60))
                    .unwrap_err();
                assert!(matches!(taken, TryRegisterError::Taken(ref e) if e.owner == A));
                // Nor can it hand A's entry to itself or to anyone else.
                assert!(!reg.give_away(other, &k, other), "{other:?} took key {k}");
                assert!(!reg.give_away(other, &k, C));
            }
        }
        // C's exit, and B's, touch only their own entries.
        assert_eq!(reg.process_down(C), 0);
        assert!(reg.keys(C).is_empty());
        assert_eq!(reg.process_down(B), 1);
        assert_eq!(
            events.load(SeqCst),
            before + 1,
            "only B's exit was an event"
        );
        assert_eq!(sorted(reg.keys(A)), (0..6).collect::<Vec<_>>());
        for k in 0..6 {
            assert_eq!(reg.lookup(&k).map(|(p, v)| (p, v.id)), Some((A, k)));
        }
        tracker.assert_live(6);
        // The owner itself can hand an entry over, and then no longer touches it.
        let d = Pid::new(4);
        assert!(reg.give_away(A, &5, d));
        assert!(!reg.unregister(A, &5));
        assert!(reg.update_value(A, &5, |v| tracker.counted(v.id)).is_none());
        assert!(!reg.give_away(A, &5, A));
        assert_eq!(reg.lookup(&5).map(|(p, v)| (p, v.id)), Some((d, 5)));
        assert!(
            reg.give_away(d, &5, A),
            "and the new owner can hand it back"
        );
        // Once A is down, a dead pid's leftovers cannot touch the key's next owner.
        assert_eq!(reg.process_down(A), 6);
        reg.register(C, 0, tracker.counted(300)).unwrap();
        assert!(!reg.unregister(A, &0));
        assert!(reg.update_value(A, &0, |v| tracker.counted(v.id)).is_none());
        assert_eq!(reg.process_down(A), 0);
        assert_eq!(reg.whereis(&0), Some(C));
        assert_consistent(&reg);
        tracker.assert_live(1);
    });
}

#[test]
fn owners_keep_their_entries_while_other_threads_try_to_take_them() {
    const OWNERS: u64 = 2;
    const THIEVES: u64 = 2;
    const KEYS: u64 = 32;
    for_each_config(|p| {
        let reg: Unique<u64, u64> = common::unique(p);
        let stop = AtomicBool::new(false);
        let stolen = AtomicUsize::new(0);
        // Owner o holds keys k with k % OWNERS == o from the start (registered here, before
        // any thief runs), and keeps changing their values.
        for k in 0..KEYS {
            reg.register(Pid::new(k % OWNERS), k, 0).unwrap();
        }
        let deadline = Instant::now() + Duration::from_millis(300);
        thread::scope(|s| {
            let owners: Vec<_> = (0..OWNERS)
                .map(|o| {
                    let reg = &reg;
                    s.spawn(move || {
                        let me = Pid::new(o);
                        let mine: Vec<u64> = (0..KEYS).filter(|k| k % OWNERS == o).collect();
                        let mut round = 0;
                        while Instant::now() < deadline {
                            round += 1;
                            for &k in &mine {
                                assert_eq!(
                                    reg.update_value(me, &k, |_| round),
                                    Some((round, round - 1)),
                                    "owner {o}, key {k}"
                                );
                            }
                        }
                        assert_eq!(sorted(reg.keys(me)), mine);
                        assert_eq!(reg.process_down(me), mine.len());
                    })
                })
                .collect();
            for t in 0..THIEVES {
                let (reg, stop, stolen) = (&reg, &stop, &stolen);
                s.spawn(move || {
                    let mut rng = common::Rng::new(t + 7);
                    // Each thief poses as pids of its own.
                    while !stop.load(SeqCst) {
                        let thief = Pid::new(100 + 10 * t + rng.below(4));
                        let k = rng.below(KEYS);
                        if reg.unregister(thief, &k)
                            || reg.update_value(thief, &k, |v| v + 1000).is_some()
                        {
                            stolen.fetch_add(1, SeqCst);
                        }
                        if reg.register(thief, k, 1 << 40).is_ok() {
                            // Possible only after the owner exited; give it back at once.
                            assert!(reg.unregister(thief, &k));
                        }
                    }
                    for n in 0..4 {
                        assert_eq!(reg.process_down(Pid::new(100 + 10 * t + n)), 0);
                    }
                });
            }
            // Stop the thieves however the owners end, so that a failure is reported.
            struct Stop<'a>(&'a AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, SeqCst);
                }
            }
            let _stop = Stop(&stop);
            for owner in owners {
                owner.join().unwrap();
            }
        });
        assert_eq!(stolen.load(SeqCst), 0);
    });
}

/// A key whose first `hash` call, if it carries a gate, waits until the gate opens: it holds
/// a registration in flight at a known point (after `try_register` took its place under the
/// limit, before it found the key taken).
#[derive(Debug, Clone)]
struct GatedKey {
    id: u64,
    gate: Option<Arc<Gate>>,
}

#[derive(Debug, Default)]
struct Gate {
    entered: AtomicBool,
    open: AtomicBool,
}

impl std::hash::Hash for GatedKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if let Some(gate) = &self.gate {
            if !gate.entered.swap(true, SeqCst) {
                while !gate.open.load(SeqCst) {
                    thread::yield_now();
                }
            }
        }
        self.id.hash(state);
    }
}

impl PartialEq for GatedKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for GatedKey {}

fn key(id: u64) -> GatedKey {
    GatedKey { id, gate: None }
}

#[test]
fn a_registration_that_loses_does_not_make_another_one_full() {
    let _watchdog = common::Watchdog::new("gated registration", Duration::from_secs(60));
    for_each_config(|p| {
        let reg: Unique<GatedKey, u64> = Unique::builder().partitions(p).max_entries(2).build();
        reg.try_register(A, key(1), 1).unwrap();
        let gate = Arc::new(Gate::default());
        thread::scope(|s| {
            // B tries to take key 1, which A holds: it will lose with Taken.
            let loser = s.spawn(|| {
                let gated = GatedKey {
                    id: 1,
                    gate: Some(Arc::clone(&gate)),
                };
                matches!(
                    reg.try_register(B, gated, 2),
                    Err(TryRegisterError::Taken(e)) if e.owner == A
                )
            });
            while !gate.entered.load(SeqCst) {
                thread::yield_now();
            }
            // B stays in flight for a while; the registry may make C wait for it, but not
            // refuse C: one entry is live and B can only lose.
            s.spawn(|| {
                thread::sleep(Duration::from_millis(100));
                gate.open.store(true, SeqCst);
            });
            let result = reg.try_register(C, key(2), 3);
            assert!(loser.join().unwrap(), "B loses to A");
            assert!(
                result.is_ok(),
                "C was refused with 1 of 2 entries live (Full: {:?})",
                result.map_err(|e| matches!(e, TryRegisterError::Full { .. }))
            );
        });
        assert_eq!(reg.count(), 2);
    });
}

// ---------- allocation failure ----------

/// Runs the ignored test `name` in a child under `ulimit -v` 256 MiB and returns how it
/// ended.
fn child_with_little_memory(name: &str) -> std::process::ExitStatus {
    common::child_test(name, Duration::from_secs(120), Some(256 << 10))
        .expect("the child ends by itself")
}

/// A registration whose table growth cannot be allocated aborts the process, as the docs
/// say (`handle_alloc_error`, like `Vec`): it does not crash on a null pointer, hang or
/// unwind with the registry half-changed. The child runs under `ulimit -v` 256 MiB.
#[test]
fn a_failed_allocation_aborts_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let status = child_with_little_memory("allocation_failure_child");
    // SIGABRT (6): `handle_alloc_error` aborts; a null dereference would be SIGSEGV (11), a
    // panic exit code 101.
    assert_eq!(status.signal(), Some(6), "{status:?}");
}

/// Registers until memory runs out; run in a child by `a_failed_allocation_aborts_the_process`.
#[test]
#[ignore = "runs in a child process of a_failed_allocation_aborts_the_process"]
fn allocation_failure_child() {
    if !common::in_child("allocation_failure_child") {
        return;
    }
    let reg: Unique<u64, u64> = Unique::builder().partitions(1).build();
    for k in 0.. {
        reg.register(Pid::new(k), k, k).unwrap();
    }
}

/// At the same memory limit, a registry bounded by `max_entries` answers `Full` and never
/// reaches the allocator's limit.
#[test]
fn a_bounded_registry_answers_full_before_memory_runs_out() {
    let status = child_with_little_memory("bounded_registry_child");
    assert!(status.success(), "{status:?}");
}

/// Run in a child by `a_bounded_registry_answers_full_before_memory_runs_out`.
#[test]
#[ignore = "runs in a child process of a_bounded_registry_answers_full_before_memory_runs_out"]
fn bounded_registry_child() {
    if !common::in_child("bounded_registry_child") {
        return;
    }
    const MAX: u64 = 100_000;
    let reg: Unique<u64, u64> = Unique::builder()
        .partitions(1)
        .max_entries(MAX as usize)
        .build();
    let mut full = 0;
    for k in 0..10 * MAX {
        match reg.try_register(Pid::new(k), k, k) {
            Ok(()) => {}
            Err(TryRegisterError::Full { .. }) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((reg.count(), full), (MAX as usize, 9 * MAX));
}
