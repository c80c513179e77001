//! Every method of `Unique`, single-threaded, for each partition count.

mod common;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use common::{assert_consistent, for_each_config, sorted, unique, Counted, Tracker};
use regent::{AlreadyRegistered, Event, Pid, ProcessId, TryRegisterError, Unique};

const A: Pid = Pid::new(1);
const B: Pid = Pid::new(2);
const C: Pid = Pid::new(3);

#[test]
fn register_then_lookup_and_whereis() {
    for_each_config(|p| {
        let reg = unique::<&str, u32>(p);
        assert_eq!(reg.register(A, "a", 10), Ok(()));
        assert_eq!(reg.register(B, "b", 20), Ok(()));
        assert_eq!(reg.lookup("a"), Some((A, 10)));
        assert_eq!(reg.lookup("b"), Some((B, 20)));
        assert_eq!(reg.whereis("a"), Some(A));
        assert!(reg.contains_key("b"));
        assert_eq!(reg.lookup("c"), None);
        assert_eq!(reg.whereis("c"), None);
        assert!(!reg.contains_key("c"));
    });
}

#[test]
fn a_pinned_view_answers_as_the_registry_does_now() {
    for_each_config(|p| {
        let reg = unique::<String, String>(p);
        reg.register(A, "a".into(), "one".into()).unwrap();
        let pinned = reg.pin();
        assert_eq!(pinned.whereis("a"), Some(A));
        let (owner, value) = pinned.get("a").unwrap();
        assert_eq!((owner, value.as_str()), (A, "one"));
        assert_eq!(pinned.whereis("b"), None);
        // Changes after the pin are seen at once, in both directions.
        reg.register(B, "b".into(), "two".into()).unwrap();
        assert_eq!(pinned.whereis("b"), Some(B));
        assert_eq!(reg.process_down(A), 1);
        assert_eq!(pinned.whereis("a"), None);
        assert_eq!(pinned.get("a"), None);
        // A value lent before its entry left is still readable, and still the old one.
        assert_eq!(value, "one");
        // Many keys, past several growths, all found through one pin.
        for k in 0..5_000 {
            reg.register(Pid::new(10 + k), k.to_string(), k.to_string())
                .unwrap();
        }
        for k in 0..5_000 {
            let (pid, v) = pinned.get(&k.to_string()).unwrap();
            assert_eq!(
                (pid, v.as_str()),
                (Pid::new(10 + k), k.to_string().as_str())
            );
        }
        assert!(format!("{pinned:?}").contains("Pinned"));
    });
}

#[test]
fn a_value_lent_by_a_pinned_view_outlives_its_entry_until_the_view_drops() {
    let values = common::Tracker::new();
    let reg = unique::<u64, common::Counted>(2);
    reg.register(A, 1, values.counted(1)).unwrap();
    let pinned = reg.pin();
    let (_, lent) = pinned.get(&1).unwrap();
    assert!(reg.unregister(A, &1));
    regent::reclaim();
    assert_eq!(lent.id, 1);
    assert_eq!(values.live(), 1, "not freed while the view lives");
    drop(pinned);
    values.assert_live(0);
}

#[test]
fn conflicting_register_changes_nothing_and_hands_key_and_value_back() {
    for_each_config(|p| {
        let reg = unique::<&str, u32>(p);
        reg.register(A, "a", 1).unwrap();
        let err = reg.register(B, "a", 2).unwrap_err();
        assert_eq!(
            err,
            AlreadyRegistered {
                owner: A,
                key: "a",
                value: 2
            }
        );
        // As in Elixir, the owner registering its own key again is a conflict too.
        assert_eq!(reg.register(A, "a", 3).unwrap_err().owner, A);
        assert_eq!(reg.lookup("a"), Some((A, 1)));
        assert!(reg.keys(B).is_empty());
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}

#[test]
fn already_registered_is_an_error_naming_key_and_owner() {
    let reg = Unique::<String>::new();
    reg.register(Pid::new(4242), "room:7".to_owned(), ())
        .unwrap();
    let err: Box<dyn std::error::Error> =
        Box::new(reg.register(A, "room:7".to_owned(), ()).unwrap_err());
    let text = err.to_string();
    assert!(text.contains("room:7") && text.contains("4242"), "{text}");
}

#[test]
fn borrowed_forms_of_the_key_work_everywhere() {
    for_each_config(|p| {
        let reg = unique::<String, u32>(p);
        reg.register(A, "a".to_owned(), 1).unwrap();
        assert_eq!(reg.lookup("a"), Some((A, 1)));
        assert_eq!(reg.whereis("a"), Some(A));
        assert!(reg.contains_key("a"));
        assert_eq!(reg.update_value(A, "a", |v| v + 1), Some((2, 1)));
        assert!(reg.unregister(A, "a"));
        assert!(reg.is_empty());
    });
}

#[test]
fn only_the_owner_unregisters() {
    for_each_config(|p| {
        let reg = unique::<&str, u32>(p);
        reg.register(A, "a", 1).unwrap();
        assert!(!reg.unregister(B, "a"));
        assert_eq!(reg.lookup("a"), Some((A, 1)));
        assert!(!reg.unregister(A, "missing"));
        assert!(reg.unregister(A, "a"));
        assert!(!reg.unregister(A, "a"));
        assert_eq!(reg.lookup("a"), None);
        assert!(reg.keys(A).is_empty());
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        reg.register(B, "a", 2).unwrap();
        assert_eq!(reg.lookup("a"), Some((B, 2)));
    });
}

#[test]
fn only_the_owner_updates_and_f_runs_only_for_the_owner() {
    for_each_config(|p| {
        let reg = unique::<&str, u32>(p);
        reg.register(A, "a", 1).unwrap();
        let called = Cell::new(false);
        let f = |_: &u32| {
            called.set(true);
            99
        };
        assert_eq!(reg.update_value(B, "a", f), None);
        assert_eq!(reg.update_value(A, "missing", f), None);
        assert!(!called.get(), "update_value called f for a non-owner");
        assert_eq!(reg.update_value(A, "a", |old| old + 10), Some((11, 1)));
        assert_eq!(reg.update_value(A, "a", |old| old * 2), Some((22, 11)));
        assert_eq!(reg.lookup("a"), Some((A, 22)));
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}

#[test]
fn update_closure_may_read_the_registry() {
    for_each_config(|p| {
        let reg = unique::<&str, u32>(p);
        reg.register(A, "a", 1).unwrap();
        reg.register(B, "b", 2).unwrap();
        let updated = reg.update_value(A, "a", |&old| {
            assert_eq!(
                reg.lookup("a"),
                Some((A, old)),
                "the old value until f returns"
            );
            old + reg.lookup("b").unwrap().1
        });
        assert_eq!(updated, Some((3, 1)));
    });
}

#[test]
fn keys_lists_exactly_the_keys_of_a_pid() {
    for_each_config(|p| {
        let reg = unique::<&str, ()>(p);
        for key in ["a", "b", "c"] {
            reg.register(A, key, ()).unwrap();
        }
        reg.register(B, "d", ()).unwrap();
        assert_eq!(sorted(reg.keys(A)), ["a", "b", "c"]);
        assert_eq!(reg.keys(B), ["d"]);
        assert!(reg.keys(C).is_empty());
        assert!(reg.unregister(A, "b"));
        assert_eq!(sorted(reg.keys(A)), ["a", "c"]);
        assert_eq!(reg.process_down(A), 2);
        assert!(reg.keys(A).is_empty());
        assert_eq!(reg.keys(B), ["d"]);
    });
}

#[test]
fn count_and_is_empty_track_live_entries() {
    for_each_config(|p| {
        let reg = unique::<u64, ()>(p);
        assert!(reg.is_empty());
        assert_eq!(reg.count(), 0);
        for k in 0..10 {
            reg.register(Pid::new(k % 3), k, ()).unwrap();
        }
        assert!(!reg.is_empty());
        assert_eq!(reg.count(), 10);
        assert!(reg.register(A, 0, ()).is_err());
        assert_eq!(reg.count(), 10);
        assert!(reg.unregister(Pid::new(0), &0));
        assert_eq!(reg.count(), 9);
        assert_eq!(reg.process_down(Pid::new(1)), 3);
        assert_eq!(reg.count(), 6);
        assert_consistent(&reg);
    });
}

#[test]
fn select_and_count_select_filter_by_key_pid_and_value() {
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        let pid_of = |k: u64| Pid::new(k % 5);
        for k in 0..100 {
            reg.register(pid_of(k), k, k * 10).unwrap();
        }
        let all = reg.select(|&k, pid, &v| Some((k, pid, v)));
        let expected: Vec<_> = (0..100).map(|k| (k, pid_of(k), k * 10)).collect();
        assert_eq!(sorted(all), expected);
        let of_pid_2 = reg.select(|&k, pid, _| (pid == Pid::new(2)).then_some(k));
        assert_eq!(sorted(of_pid_2), (2..100).step_by(5).collect::<Vec<_>>());
        let large = reg.select(|&k, _, &v| (v >= 900).then_some(k));
        assert_eq!(sorted(large), (90..100).collect::<Vec<_>>());
        assert!(reg.select(|_, _, _| None::<()>).is_empty());
        assert_eq!(reg.count_select(|_, pid, _| pid == Pid::new(2)), 20);
        assert_eq!(reg.count_select(|_, _, &v| v % 20 == 0), 50);
        assert_eq!(reg.count_select(|&k, _, _| k >= 100), 0);
    });
}

#[test]
fn process_down_removes_every_entry_of_the_pid_at_once() {
    for_each_config(|p| {
        let reg = unique::<u64, ()>(p);
        for k in 0..10 {
            reg.register(A, k, ()).unwrap();
        }
        for k in 10..15 {
            reg.register(B, k, ()).unwrap();
        }
        assert_eq!(reg.monitors(), 2);
        assert_eq!(reg.process_down(A), 10);
        assert_eq!((reg.count(), reg.monitors()), (5, 1));
        for k in 0..10 {
            assert_eq!(reg.whereis(&k), None);
            reg.register(C, k, ()).unwrap();
        }
        assert_eq!(reg.process_down(A), 0);
        assert_eq!(reg.process_down(Pid::new(99)), 0);
        assert_eq!((reg.count(), reg.monitors()), (15, 2));
        assert_consistent(&reg);
    });
}

#[test]
fn monitors_counts_pids_holding_at_least_one_entry() {
    for_each_config(|p| {
        let reg = unique::<&str, u32>(p);
        assert_eq!(reg.monitors(), 0);
        reg.register(A, "a", 0).unwrap();
        reg.register(A, "b", 0).unwrap();
        assert_eq!(reg.monitors(), 1);
        reg.register(B, "c", 0).unwrap();
        assert_eq!(reg.monitors(), 2);
        assert!(reg.register(C, "a", 0).is_err());
        assert_eq!(reg.monitors(), 2, "a failed registration left a monitor");
        assert_eq!(reg.process_down(C), 0);
        reg.update_value(A, "a", |v| v + 1).unwrap();
        assert_eq!(reg.monitors(), 2);
        assert!(reg.unregister(A, "a"));
        assert_eq!(reg.monitors(), 2);
        assert!(reg.unregister(A, "b"));
        assert_eq!(reg.monitors(), 1);
        assert_eq!(reg.process_down(B), 1);
        assert_eq!(reg.monitors(), 0);
    });
}

#[test]
fn partitions_default_to_cores_and_round_up_to_a_power_of_two() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(Unique::<u32>::new().partitions(), cores.next_power_of_two());
    for (asked, got) in [(1, 1), (2, 2), (3, 4), (8, 8), (9, 16)] {
        let reg = Unique::<u32>::builder().partitions(asked).build();
        assert_eq!(reg.partitions(), got, "partitions({asked})");
    }
}

#[test]
#[should_panic]
fn zero_partitions_panics() {
    let _ = Unique::<u32>::builder().partitions(0);
}

#[test]
fn stats_agree_with_count_and_monitors() {
    for_each_config(|p| {
        let reg = unique::<u64, ()>(p);
        let check = |reg: &Unique<u64>| {
            let stats = reg.stats();
            assert_eq!(stats.entries, reg.count());
            assert_eq!(stats.monitors, reg.monitors());
            assert!(stats.capacity >= stats.entries);
            let bytes = stats.table_bytes + stats.entry_bytes + stats.retired_bytes;
            assert_eq!(stats.total_bytes(), bytes);
        };
        check(&reg);
        for k in 0..100 {
            reg.register(Pid::new(k % 7), k, ()).unwrap();
        }
        check(&reg);
        assert_eq!(reg.stats().entries, 100);
        for k in (0..100).step_by(2) {
            assert!(reg.unregister(Pid::new(k % 7), &k));
        }
        check(&reg);
        reg.process_down(Pid::new(3));
        check(&reg);
        assert_eq!(reg.stats().monitors, 6);
    });
}

#[test]
fn churn_does_not_grow_the_tables() {
    for_each_config(|p| {
        let reg = unique::<u64, ()>(p);
        for k in 0..100 {
            reg.register(Pid::new(k), k, ()).unwrap();
        }
        let before = reg.stats();
        // Every cycle leaves a removed entry, a removed monitor and a failed registration.
        for k in 100..50_100 {
            reg.register(Pid::new(k), k, ()).unwrap();
            assert!(reg.register(Pid::new(k + 1), k, ()).is_err());
            if k % 2 == 0 {
                assert!(reg.unregister(Pid::new(k), &k));
            } else {
                assert_eq!(reg.process_down(Pid::new(k)), 1);
            }
        }
        let after = reg.stats();
        assert_eq!((after.entries, after.monitors), (100, 100));
        assert!(
            after.capacity <= 4 * before.capacity,
            "{before:?} -> {after:?}"
        );
    });
}

#[test]
fn capacity_presizes_the_tables() {
    for_each_config(|p| {
        let reg = Unique::<u64>::builder()
            .partitions(p)
            .capacity(10_000)
            .build();
        assert!(reg.stats().capacity >= 10_000, "{:?}", reg.stats());
        assert!(reg.is_empty());
    });
}

#[test]
fn reserve_grows_once_so_that_loading_does_not() {
    for_each_config(|p| {
        let tracker = Tracker::new();
        let reg = Unique::<u64, Counted>::builder().partitions(p).build();
        for k in 0..1_000 {
            reg.register(Pid::new(k % 97), k, tracker.counted(k))
                .unwrap();
        }
        let before = reg.stats();
        reg.reserve(20_000);
        let reserved = reg.stats();
        assert_eq!(reserved.migrations, 0, "{reserved:?}");
        assert!(
            reserved.capacity > before.capacity,
            "{before:?} -> {reserved:?}"
        );
        // Every entry moved, none copied twice or dropped on the way.
        assert_eq!((reg.count(), reg.monitors()), (1_000, 97));
        for k in 0..1_000 {
            assert_eq!(
                reg.lookup(&k).map(|(pid, v)| (pid, v.id)),
                Some((Pid::new(k % 97), k))
            );
        }
        for k in 1_000..21_000 {
            reg.register(Pid::new(k), k, tracker.counted(k)).unwrap();
        }
        let loaded = reg.stats();
        assert_eq!(
            (loaded.capacity, loaded.migrations),
            (reserved.capacity, 0),
            "the tables grew while loading what was reserved: {reserved:?} -> {loaded:?}"
        );
        assert_eq!(reg.count(), 21_000);
        // Room that is already there is not reserved again.
        reg.reserve(1_000);
        assert_eq!(reg.stats().capacity, loaded.capacity);
        drop(reg);
        tracker.assert_live(0);
    });
}

#[test]
fn reserve_finishes_a_growth_that_writes_left_under_way() {
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        let mut k = 0;
        // Register until a write starts a growth and leaves it for later writes to copy.
        while reg.stats().migrations == 0 {
            reg.register(Pid::new(k), k, k * 10).unwrap();
            k += 1;
        }
        reg.reserve(0);
        let settled = reg.stats();
        assert_eq!(settled.migrations, 0, "{settled:?}");
        assert_eq!(reg.count(), k as usize);
        for key in 0..k {
            assert_eq!(reg.lookup(&key), Some((Pid::new(key), key * 10)));
        }
        assert_consistent(&reg);
        // A settled table with room to spare is left as it is.
        reg.reserve(0);
        assert_eq!(reg.stats().capacity, settled.capacity);
    });
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn reserve_beyond_memory_panics() {
    unique::<u64, u64>(2).reserve(usize::MAX);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn capacity_beyond_memory_panics() {
    let _ = Unique::<u64>::builder().capacity(usize::MAX).build();
}

#[test]
fn try_register_at_max_entries_hands_everything_back() {
    for_each_config(|p| {
        let reg = Unique::<u64, String>::builder()
            .partitions(p)
            .max_entries(3)
            .build();
        let try_register = |pid, key| reg.try_register(pid, key, format!("v{key}"));
        let full = |key| TryRegisterError::Full {
            key,
            value: format!("v{key}"),
        };
        for k in 0..3 {
            try_register(Pid::new(k), k).unwrap();
        }
        let err = try_register(C, 3).unwrap_err();
        assert!(err.to_string().contains("full"), "{err}");
        assert_eq!(err, full(3));
        assert_eq!(reg.whereis(&3), None);
        assert_eq!((reg.count(), reg.monitors()), (3, 3));
        assert!(reg.keys(C).is_empty());
        // Removing an entry, either way, makes room again.
        assert!(reg.unregister(Pid::new(0), &0));
        try_register(C, 3).unwrap();
        assert_eq!(try_register(C, 4), Err(full(4)));
        assert_eq!(reg.process_down(Pid::new(1)), 1);
        try_register(C, 4).unwrap();
        assert_consistent(&reg);
    });
}

#[test]
fn register_at_max_entries_panics_and_registers_nothing() {
    for_each_config(|p| {
        let reg = Unique::<u64>::builder()
            .partitions(p)
            .max_entries(1)
            .build();
        reg.register(A, 0, ()).unwrap();
        assert!(catch_unwind(AssertUnwindSafe(|| reg.register(B, 1, ()))).is_err());
        assert_eq!(reg.whereis(&1), None);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
        assert_eq!(reg.process_down(A), 1);
        reg.register(B, 1, ()).unwrap();
    });
}

#[test]
fn try_register_reports_a_taken_key() {
    for_each_config(|p| {
        let reg = unique::<u64, u32>(p);
        reg.try_register(A, 1, 10).unwrap();
        let err = reg.try_register(B, 1, 20).unwrap_err();
        let taken = AlreadyRegistered {
            owner: A,
            key: 1,
            value: 20,
        };
        assert_eq!(err, TryRegisterError::Taken(taken));
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}

/// An owned copy of an [`Event`], for logging.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Logged {
    Registered(&'static str, Pid, u32),
    Unregistered(&'static str, Pid),
    Down(&'static str, Pid),
}

impl From<&Event<'_, &'static str, u32, Pid>> for Logged {
    fn from(event: &Event<'_, &'static str, u32, Pid>) -> Self {
        match *event {
            Event::Registered { key, pid, value } => Logged::Registered(key, pid, *value),
            Event::Unregistered { key, pid } => Logged::Unregistered(key, pid),
            Event::Down { key, pid } => Logged::Down(key, pid),
        }
    }
}

#[test]
fn listener_reports_each_change_in_order() {
    use Logged::{Down, Registered, Unregistered};
    for_each_config(|p| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let reg = Unique::<&str, u32>::builder()
            .partitions(p)
            .listener({
                let log = Arc::clone(&log);
                move |event| log.lock().unwrap().push(Logged::from(event))
            })
            .build();
        reg.register(A, "a", 1).unwrap();
        reg.register(A, "b", 2).unwrap();
        reg.register(B, "c", 3).unwrap();
        reg.register(A, "d", 4).unwrap();
        // Failed calls change nothing and report nothing.
        reg.register(B, "a", 5).unwrap_err();
        assert!(!reg.unregister(B, "a"));
        assert_eq!(reg.process_down(C), 0);
        assert!(reg.unregister(A, "a"));
        assert_eq!(reg.process_down(A), 2);
        assert_eq!(reg.process_down(B), 1);

        let log = log.lock().unwrap();
        let expected = [
            Registered("a", A, 1),
            Registered("b", A, 2),
            Registered("c", B, 3),
            Registered("d", A, 4),
            Unregistered("a", A),
        ];
        assert_eq!(log[..5], expected);
        assert_eq!(sorted(log[5..7].to_vec()), [Down("b", A), Down("d", A)]);
        assert_eq!(log[7..], [Down("c", B)]);
    });
}

#[test]
fn listener_sees_the_change_and_may_call_back_into_the_registry() {
    type Reg = Unique<String, u32>;
    for_each_config(|p| {
        let this: Arc<OnceLock<Weak<Reg>>> = Arc::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = {
            let (this, seen) = (Arc::clone(&this), Arc::clone(&seen));
            move |event: &Event<'_, String, u32, Pid>| {
                let reg = this.get().and_then(Weak::upgrade).unwrap();
                let (key, observed) = match *event {
                    Event::Registered { key, pid, value } => {
                        // A write from inside the listener: mirror each name once.
                        if !key.starts_with("mirror:") {
                            reg.register(pid, format!("mirror:{key}"), *value).unwrap();
                        }
                        (key, reg.lookup(key) == Some((pid, *value)))
                    }
                    Event::Unregistered { key, pid } | Event::Down { key, pid } => (
                        key,
                        reg.whereis(key).is_none() && !reg.keys(pid).contains(key),
                    ),
                };
                seen.lock().unwrap().push((key.clone(), observed));
            }
        };
        let reg = Arc::new(Reg::builder().partitions(p).listener(listener).build());
        this.set(Arc::downgrade(&reg)).unwrap();

        reg.register(A, "a".to_owned(), 1).unwrap();
        assert_eq!(reg.whereis("mirror:a"), Some(A));
        assert!(reg.unregister(A, "a"));
        assert_eq!(reg.process_down(A), 1);
        assert!(reg.is_empty());
        let seen = sorted(seen.lock().unwrap().clone());
        let expected = [
            ("a", true),
            ("a", true),
            ("mirror:a", true),
            ("mirror:a", true),
        ];
        assert_eq!(seen, expected.map(|(k, ok)| (k.to_owned(), ok)));
    });
}

/// Runs the same scenario with pid types of different sizes.
fn exercise_pid_type<P: ProcessId + Debug>([a, b]: [P; 2]) {
    for_each_config(|p| {
        let reg = Unique::<String, u32, P>::builder().partitions(p).build();
        reg.register(a, "x".to_owned(), 1).unwrap();
        reg.register(a, "y".to_owned(), 2).unwrap();
        assert_eq!(reg.register(b, "x".to_owned(), 3).unwrap_err().owner, a);
        reg.register(b, "z".to_owned(), 4).unwrap();
        assert_eq!(reg.lookup("x"), Some((a, 1)));
        assert_eq!(reg.whereis("z"), Some(b));
        assert_eq!(sorted(reg.keys(a)), ["x", "y"]);
        assert_eq!(reg.update_value(b, "x", |v| v + 1), None);
        assert!(!reg.unregister(b, "y"));
        assert_eq!(reg.monitors(), 2);
        assert_eq!(reg.process_down(a), 2);
        assert_eq!(reg.process_down(b), 1);
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
    });
}

#[test]
fn custom_process_id_types() {
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    struct TaskId(u32);
    #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
    struct NodePid {
        node: u64,
        local: u64,
    }
    exercise_pid_type([TaskId(1), TaskId(2)]);
    let on = |node, local| NodePid { node, local };
    exercise_pid_type([on(1, u64::MAX), on(2, u64::MAX)]);
    exercise_pid_type([0u8, u8::MAX]);
}

/// Counts the hashers it builds, to show the registry uses it.
#[derive(Clone, Default)]
struct CountingHasher<S> {
    inner: S,
    built: Arc<AtomicUsize>,
}

impl<S: BuildHasher> BuildHasher for CountingHasher<S> {
    type Hasher = S::Hasher;
    fn build_hasher(&self) -> S::Hasher {
        self.built.fetch_add(1, Ordering::Relaxed);
        self.inner.build_hasher()
    }
}

/// Hashes every key to 0: every key collides with every other.
#[derive(Default)]
struct ZeroHasher;

impl Hasher for ZeroHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, _: &[u8]) {}
}

#[test]
fn custom_hasher_is_used() {
    for_each_config(|p| {
        let hasher = CountingHasher::<RandomState>::default();
        let built = Arc::clone(&hasher.built);
        let reg = Unique::<u64, u64>::builder()
            .partitions(p)
            .hasher(hasher)
            .build();
        for k in 0..1000 {
            reg.register(Pid::new(k % 10), k, k).unwrap();
        }
        assert!(built.load(Ordering::Relaxed) >= 1000);
        assert_consistent(&reg);
    });
}

#[test]
fn keys_that_all_collide_are_still_told_apart() {
    for_each_config(|p| {
        let reg = Unique::<u64, u64>::builder()
            .partitions(p)
            .hasher(BuildHasherDefault::<ZeroHasher>::default())
            .build();
        for k in 0..500 {
            reg.register(Pid::new(k % 5), k, k).unwrap();
        }
        assert!(reg.register(A, 7, 0).is_err());
        for k in (0..500).step_by(2) {
            assert!(reg.unregister(Pid::new(k % 5), &k));
        }
        assert_eq!(reg.process_down(Pid::new(1)), 50);
        for k in 0..500 {
            let live = k % 2 == 1 && k % 5 != 1;
            assert_eq!(
                reg.lookup(&k),
                live.then(|| (Pid::new(k % 5), k)),
                "key {k}"
            );
        }
        assert_consistent(&reg);
    });
}

#[test]
fn growth_to_200k_keys_and_back_to_empty() {
    const PIDS: u64 = 1000;
    let n = 200_000;
    let pid_of = |k: u64| Pid::new(k % PIDS);
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        for k in 0..n {
            reg.register(pid_of(k), k, k * 2).unwrap();
        }
        assert_eq!((reg.count(), reg.monitors()), (n as usize, PIDS as usize));
        assert_eq!(reg.count_select(|_, _, _| true), n as usize);
        for k in 0..n {
            assert_eq!(reg.lookup(&k), Some((pid_of(k), k * 2)), "key {k}");
        }
        assert_eq!(reg.keys(pid_of(7)).len() as u64, n / PIDS);
        for k in (0..n).step_by(2) {
            assert!(reg.unregister(pid_of(k), &k), "key {k}");
        }
        assert_eq!(reg.count() as u64, n / 2);
        let removed: usize = (0..PIDS).map(|pid| reg.process_down(Pid::new(pid))).sum();
        assert_eq!(removed as u64, n / 2);
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        assert!((0..n).all(|k| reg.whereis(&k).is_none()));
    });
}

#[test]
fn a_panicking_listener_leaves_the_registry_usable() {
    for_each_config(|p| {
        let reg = Unique::<u64, u64>::builder()
            .partitions(p)
            .listener(|event| {
                if matches!(event, Event::Registered { key: 13, .. }) {
                    panic!("listener failed");
                }
            })
            .build();
        for k in 0..10 {
            reg.register(Pid::new(k % 3), k, k).unwrap();
        }
        let result = catch_unwind(AssertUnwindSafe(|| reg.register(A, 13, 13)));
        assert!(result.is_err());
        // The panic does not undo the change: it happened before the listener ran.
        assert_eq!(reg.lookup(&13), Some((A, 13)));
        assert_consistent(&reg);
        reg.register(C, 14, 14).unwrap();
        assert!(reg.unregister(A, &13));
        assert_eq!(reg.process_down(Pid::new(2)), 3);
        assert_consistent(&reg);
    });
}

#[test]
fn a_panicking_update_closure_leaves_the_value_unchanged() {
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        reg.register(A, 1, 10).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            reg.update_value(A, &1, |_| panic!("update failed"))
        }));
        assert!(result.is_err());
        assert_eq!(reg.lookup(&1), Some((A, 10)));
        assert_eq!(reg.update_value(A, &1, |v| v + 1), Some((11, 10)));
        assert!(reg.unregister(A, &1));
        assert_consistent(&reg);
    });
}

#[test]
fn a_panicking_select_closure_leaves_the_registry_usable() {
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        for k in 0..100 {
            reg.register(Pid::new(k % 4), k, k).unwrap();
        }
        let select = catch_unwind(AssertUnwindSafe(|| {
            reg.select(|&k, _, _| {
                if k == 50 {
                    panic!("select failed")
                } else {
                    Some(k)
                }
            })
        }));
        assert!(select.is_err());
        let count = catch_unwind(AssertUnwindSafe(|| {
            reg.count_select(|&k, _, _| {
                if k == 50 {
                    panic!("count failed")
                } else {
                    true
                }
            })
        }));
        assert!(count.is_err());
        // Writers are not blocked by anything the aborted reads left behind.
        for k in 0..100 {
            assert!(reg.unregister(Pid::new(k % 4), &k));
            reg.register(Pid::new(k % 3), k, k + 1).unwrap();
        }
        assert_eq!(reg.count_select(|_, _, _| true), 100);
        assert_consistent(&reg);
    });
}

/// A pid's keys move from the monitor word to a pair, to a headed list that grows, and
/// back; `keys` stays exact and `Stats::entry_bytes` (the lists' bytes) follows each step.
#[test]
fn a_pids_key_list_goes_from_one_key_to_a_pair_to_a_list_and_back() {
    for partitions in [1, 8] {
        let reg: Unique<u64, u64> = Unique::builder().partitions(partitions).build();
        let p = Pid::new(1);
        let keys = |reg: &Unique<u64, u64>| {
            let mut keys = reg.keys(p);
            keys.sort_unstable();
            keys
        };
        let bytes = |reg: &Unique<u64, u64>| reg.stats().entry_bytes;
        reg.register(p, 1, 0).unwrap();
        assert_eq!((keys(&reg), bytes(&reg)), (vec![1], 0), "one key: no list");
        reg.register(p, 2, 0).unwrap();
        assert_eq!(
            (keys(&reg), bytes(&reg)),
            (vec![1, 2], 16),
            "a pair: two words"
        );
        assert!(reg.unregister(p, &1));
        assert_eq!((keys(&reg), bytes(&reg)), (vec![2], 0), "back to one key");
        reg.register(p, 1, 0).unwrap();
        reg.register(p, 3, 0).unwrap();
        assert_eq!(
            (keys(&reg), bytes(&reg)),
            (vec![1, 2, 3], 40),
            "header and 4 marks"
        );
        assert!(reg.unregister(p, &2));
        assert_eq!(keys(&reg), [1, 3]);
        for k in 4..=6 {
            reg.register(p, k, 0).unwrap();
        }
        assert_eq!(
            (keys(&reg), bytes(&reg)),
            (vec![1, 3, 4, 5, 6], 72),
            "regrown to 8"
        );
        assert_eq!(reg.process_down(p), 5);
        assert_eq!((keys(&reg), bytes(&reg), reg.monitors()), (vec![], 0, 0));
        // A pair taken apart by an exit.
        reg.register(p, 7, 0).unwrap();
        reg.register(p, 8, 0).unwrap();
        assert_eq!(reg.process_down(p), 2);
        assert_eq!((reg.count(), bytes(&reg)), (0, 0));
    }
}
