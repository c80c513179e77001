//! Every method of `Duplicate`, for partitions 1 and 8, partitioned by key and by pid.

mod common;

use std::sync::{Arc, Mutex};

use common::{assert_dup_consistent, duplicate, for_each_dup_config, sorted, Tracker};
use regent::{Duplicate, Event, PartitionBy, Pid};

fn pid(n: u64) -> Pid {
    Pid::new(n)
}

#[test]
fn register_never_conflicts_and_lookup_sees_every_entry() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<&str, u32> = duplicate(partitions, by);
        reg.register(pid(1), "news", 1);
        reg.register(pid(2), "news", 2);
        reg.register(pid(1), "news", 3);
        reg.register(pid(3), "sport", 4);
        assert_eq!(
            sorted(reg.lookup("news")),
            vec![(pid(1), 1), (pid(1), 3), (pid(2), 2)]
        );
        assert_eq!(reg.lookup("sport"), vec![(pid(3), 4)]);
        assert!(reg.lookup("weather").is_empty());
        assert_eq!(reg.count(), 4);
        assert_eq!(reg.monitors(), 3);
        assert_eq!(reg.partitions(), partitions);
        assert_eq!(reg.partition_by(), by);
        assert_dup_consistent(&reg);
    });
}

#[test]
fn dispatch_visits_each_entry_once() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        for i in 0..1000 {
            reg.register(pid(i % 97), 7, i);
        }
        let mut seen = Vec::new();
        assert_eq!(reg.dispatch(&7, |p, v| seen.push((p, *v))), 1000);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1000);
        assert!(seen.iter().all(|&(p, v)| p == pid(v % 97)));
        assert_eq!(reg.dispatch(&8, |_, _| panic!("no entries")), 0);
    });
}

#[test]
fn dispatch_parallel_agrees_with_dispatch() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        for i in 0..10_000 {
            reg.register(pid(i), 1, i);
        }
        // Holes: removed entries are skipped by every worker.
        for i in (0..10_000).step_by(3) {
            assert_eq!(reg.unregister(pid(i), &1), 1);
        }
        let expected = reg.dispatch(&1, |_, _| {});
        for workers in [1, 2, 3, 8] {
            let seen = Mutex::new(Vec::new());
            let n = reg.dispatch_parallel(&1, workers, |p, v| seen.lock().unwrap().push((p, *v)));
            let mut seen = seen.into_inner().unwrap();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!((n, seen.len()), (expected, expected), "{workers} workers");
            assert!(seen.iter().all(|&(p, v)| p == pid(v) && v % 3 != 0));
        }
        assert_eq!(reg.dispatch_parallel(&2, 4, |_, _| panic!("no entries")), 0);
    });
}

#[test]
fn unregister_removes_only_the_callers_entries_under_the_key() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<&str, u32> = duplicate(partitions, by);
        reg.register(pid(1), "a", 1);
        reg.register(pid(1), "a", 2);
        reg.register(pid(1), "b", 3);
        reg.register(pid(2), "a", 4);
        assert_eq!(reg.unregister(pid(3), "a"), 0, "not a holder");
        assert_eq!(reg.unregister(pid(1), "c"), 0, "not a key");
        assert_eq!(reg.unregister(pid(1), "a"), 2);
        assert_eq!(reg.lookup("a"), vec![(pid(2), 4)]);
        assert_eq!(reg.keys(pid(1)), vec!["b"]);
        assert_eq!(reg.unregister(pid(1), "a"), 0);
        assert_eq!(reg.unregister(pid(1), "b"), 1);
        assert_eq!(reg.monitors(), 1);
        assert_dup_consistent(&reg);
    });
}

#[test]
fn unregister_match_removes_the_accepted_values() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<&str, u32> = duplicate(partitions, by);
        for v in 0..10 {
            reg.register(pid(1), "k", v);
        }
        reg.register(pid(2), "k", 100);
        assert_eq!(reg.unregister_match(pid(1), "k", |v| v % 2 == 0), 5);
        assert_eq!(sorted(reg.values("k", pid(1))), vec![1, 3, 5, 7, 9]);
        assert_eq!(reg.unregister_match(pid(1), "k", |_| false), 0);
        assert_eq!(reg.unregister_match(pid(2), "k", |&v| v == 100), 1);
        assert_eq!(reg.monitors(), 1);
        assert_dup_consistent(&reg);
    });
}

#[test]
fn unregister_match_predicate_panic_removes_nothing() {
    let reg: Duplicate<&str, u32> = Duplicate::new();
    reg.register(pid(1), "k", 1);
    reg.register(pid(1), "k", 2);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reg.unregister_match(pid(1), "k", |&v| if v == 2 { panic!("boom") } else { true })
    }));
    assert!(caught.is_err());
    assert_eq!(reg.count(), 2);
    assert_eq!(
        reg.unregister(pid(1), "k"),
        2,
        "the pid's lock was released"
    );
    assert_dup_consistent(&reg);
}

#[test]
fn matching_and_count_match_filter_by_pid_and_value() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u8, u32> = duplicate(partitions, by);
        for p in 1..=4 {
            for v in 0..3 {
                reg.register(pid(p), 0, v);
            }
        }
        let odd_pids = sorted(reg.matching(&0, |p, _| p.get() % 2 == 1));
        assert_eq!(odd_pids.len(), 6);
        assert!(odd_pids.iter().all(|(p, _)| p.get() % 2 == 1));
        assert_eq!(reg.count_match(&0, |_, &v| v == 2), 4);
        assert_eq!(reg.count_match(&1, |_, _| true), 0);
        assert!(reg.matching(&1, |_, _| true).is_empty());
    });
}

#[test]
fn keys_and_values_repeat_per_entry() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<&str, u32> = duplicate(partitions, by);
        reg.register(pid(1), "a", 1);
        reg.register(pid(1), "a", 1);
        reg.register(pid(1), "b", 2);
        assert_eq!(sorted(reg.keys(pid(1))), vec!["a", "a", "b"]);
        assert_eq!(reg.values("a", pid(1)), vec![1, 1]);
        assert!(reg.values("a", pid(2)).is_empty());
        assert!(reg.keys(pid(2)).is_empty());
    });
}

#[test]
fn select_and_count_select_see_every_entry() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        for i in 0..500 {
            reg.register(pid(i % 10), i % 7, i);
        }
        let all = reg.select(|k, p, v| Some((*k, p, *v)));
        assert_eq!(all.len(), 500);
        assert!(all.iter().all(|&(k, p, v)| k == v % 7 && p == pid(v % 10)));
        assert_eq!(reg.count_select(|k, _, _| *k == 0), 72);
        assert_dup_consistent(&reg);
    });
}

#[test]
fn process_down_removes_every_entry_of_the_pid() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        for k in 0..50 {
            reg.register(pid(1), k, k);
            reg.register(pid(1), k, k + 100);
            reg.register(pid(2), k, k);
        }
        assert_eq!(reg.process_down(pid(1)), 100);
        assert_eq!(reg.process_down(pid(1)), 0);
        assert_eq!(reg.count(), 50);
        assert_eq!(reg.monitors(), 1);
        for k in 0..50 {
            assert_eq!(reg.lookup(&k), vec![(pid(2), k)]);
        }
        assert_dup_consistent(&reg);
        assert_eq!(reg.process_down(pid(2)), 50);
        assert!(reg.is_empty());
        assert_eq!(reg.monitors(), 0);
        assert_eq!(
            reg.stats().entry_bytes,
            0,
            "every bag and list was released"
        );
    });
}

#[test]
fn a_key_that_empties_can_be_joined_again() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        for round in 0..100 {
            reg.register(pid(round), 1, round);
            assert_eq!(reg.lookup(&1), vec![(pid(round), round)]);
            assert_eq!(reg.unregister(pid(round), &1), 1);
            assert!(reg.lookup(&1).is_empty());
        }
        assert_dup_consistent(&reg);
    });
}

#[test]
fn a_hot_key_grows_and_reuses_its_slots() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        for i in 0..20_000 {
            reg.register(pid(i), 0, i);
        }
        reg.register(pid(u64::MAX), 0, 0); // keeps the bag open through the churn
        let grown = reg.stats().entry_bytes;
        for round in 0..5 {
            for i in 0..20_000 {
                assert_eq!(reg.process_down(pid(i)), 1);
            }
            regent::reclaim();
            for i in 0..20_000 {
                reg.register(pid(i), 0, i + round);
            }
        }
        assert_eq!(reg.count(), 20_001);
        // Freed slots are reused once the epoch passes: the bag stays near its high-water
        // mark instead of growing by 20,000 slots per round.
        assert!(
            reg.stats().entry_bytes < grown * 4,
            "{} bytes after churn vs {grown} before",
            reg.stats().entry_bytes
        );
        assert_dup_consistent(&reg);
    });
}

#[test]
fn listener_sees_every_change_and_may_reenter() {
    for_each_dup_config(|partitions, by| {
        type Log = Arc<Mutex<Vec<String>>>;
        let log: Log = Arc::default();
        let reg: Arc<Duplicate<u64, u64>> =
            Arc::new_cyclic(|weak: &std::sync::Weak<Duplicate<u64, u64>>| {
                let log = log.clone();
                let weak = weak.clone();
                Duplicate::builder()
                    .partitions(partitions)
                    .partition_by(by)
                    .listener(move |e: &Event<'_, u64, u64, Pid>| {
                        // Re-entering the registry from a listener must not deadlock.
                        let count = weak.upgrade().map_or(0, |r| r.count());
                        let line = match e {
                            Event::Registered { key, pid, value } => {
                                format!("reg {key} {} {value} ({count})", pid.get())
                            }
                            Event::Unregistered { key, pid } => {
                                format!("unreg {key} {} ({count})", pid.get())
                            }
                            Event::Down { key, pid } => {
                                format!("down {key} {} ({count})", pid.get())
                            }
                        };
                        log.lock().unwrap().push(line);
                    })
                    .build()
            });
        reg.register(pid(1), 5, 50);
        reg.register(pid(1), 5, 51);
        reg.register(pid(1), 6, 60);
        assert_eq!(reg.unregister(pid(1), &5), 2);
        assert_eq!(reg.process_down(pid(1)), 1);
        let log = std::mem::take(&mut *log.lock().unwrap());
        assert_eq!(
            log,
            vec![
                "reg 5 1 50 (1)",
                "reg 5 1 51 (2)",
                "reg 6 1 60 (3)",
                "unreg 5 1 (1)",
                "unreg 5 1 (1)",
                "down 6 1 (0)",
            ]
        );
    });
}

#[test]
fn values_are_dropped_exactly_once() {
    for_each_dup_config(|partitions, by| {
        let tracker = Tracker::new();
        {
            let reg: Duplicate<u64, common::Counted> = duplicate(partitions, by);
            for i in 0..300 {
                reg.register(pid(i % 30), i % 11, tracker.counted(i));
            }
            assert_eq!(reg.unregister(pid(0), &0), 1);
            assert_eq!(reg.unregister_match(pid(1), &1, |_| true), 1);
            for p in 2..10 {
                assert_eq!(reg.process_down(pid(p)), 10);
            }
            tracker.assert_live(300 - 82);
            // The rest go with the registry, including ones still waiting for the epoch.
            assert_eq!(reg.process_down(pid(10)), 10);
        }
        tracker.assert_live(0);
    });
}

#[test]
fn keys_are_dropped_exactly_once() {
    let tracker = Tracker::new();
    {
        let reg: Duplicate<common::Counted, u64> = Duplicate::builder().partitions(2).build();
        for i in 0..100 {
            // Registrations of an existing key drop the key passed in.
            reg.register(pid(i), tracker.counted(i % 10), i);
        }
        tracker.assert_live(10);
        for i in 0..50 {
            reg.process_down(pid(i));
        }
        tracker.assert_live(10);
        for i in 50..100 {
            if i % 10 < 5 {
                reg.process_down(pid(i));
            }
        }
        tracker.assert_live(5);
    }
    tracker.assert_live(0);
}

#[test]
fn pid_partitioning_spreads_a_key_over_partitions() {
    let reg: Duplicate<u64, u64> = Duplicate::builder()
        .partitions(8)
        .partition_by(PartitionBy::Pid)
        .build();
    for i in 0..1000 {
        reg.register(pid(i), 0, i);
    }
    // One bag per partition that some pid hashed to: more bag bytes than a single bag of
    // the same entries under key partitioning.
    let by_key: Duplicate<u64, u64> = Duplicate::builder().partitions(8).build();
    for i in 0..1000 {
        by_key.register(pid(i), 0, i);
    }
    assert_eq!(reg.dispatch(&0, |_, _| {}), 1000);
    assert_eq!(by_key.dispatch(&0, |_, _| {}), 1000);
    assert!(reg.stats().entry_bytes > by_key.stats().entry_bytes);
}

/// `Stats::monitor_bytes` is the monitor index's share: its tables, plus the lists of pids
/// that hold several entries (also in `entry_bytes`). A duplicate monitor is one word, the
/// pid being read from its slots: for as many pids in tables of the same size it takes
/// about half a unique monitor's bytes (a pid and a word).
#[test]
fn stats_count_the_monitor_index_apart() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        let names: regent::Unique<u64, u64> =
            regent::Unique::builder().partitions(partitions).build();
        for i in 0..10_000 {
            reg.register(pid(i), i % 100, i);
            names.register(pid(i), i, i).unwrap();
        }
        let (d, u) = (reg.stats(), names.stats());
        assert!(
            d.monitor_bytes > 0 && d.monitor_bytes < d.table_bytes,
            "{d:?}"
        );
        assert_eq!(d.monitors, u.monitors);
        assert!(
            d.monitor_bytes * 3 < u.monitor_bytes * 2,
            "duplicate {d:?}, unique {u:?}"
        );
        // A second entry gives a pid a list of two slots: counted in both figures.
        let before = reg.stats();
        reg.register(pid(0), 1_000, 0);
        let after = reg.stats();
        let list = after.monitor_bytes - before.monitor_bytes;
        assert!(list >= 16, "{before:?} -> {after:?}");
        assert!(after.entry_bytes - before.entry_bytes >= list);
        assert_eq!(reg.process_down(pid(0)), 2);
        regent::reclaim();
        assert!(reg.stats().monitor_bytes <= before.monitor_bytes);
    });
}

#[test]
fn reserve_grows_once_so_that_loading_does_not() {
    for_each_dup_config(|partitions, by| {
        let tracker = Tracker::new();
        let reg = Duplicate::<u64, common::Counted>::builder()
            .partitions(partitions)
            .partition_by(by)
            .build();
        for k in 0..500 {
            // Two entries per key, from two pids.
            reg.register(pid(k), k, tracker.counted(k));
            reg.register(pid(k + 1), k, tracker.counted(k));
        }
        let before = reg.stats();
        reg.reserve(10_000);
        let reserved = reg.stats();
        assert_eq!(reserved.migrations, 0, "{reserved:?}");
        assert!(
            reserved.capacity > before.capacity,
            "{before:?} -> {reserved:?}"
        );
        assert_eq!((reg.count(), reg.monitors()), (1_000, 501));
        for k in 0..500 {
            let mut held: Vec<_> = reg.lookup(&k).into_iter().map(|(p, v)| (p, v.id)).collect();
            held.sort_unstable();
            assert_eq!(held, [(pid(k), k), (pid(k + 1), k)], "key {k}");
        }
        // New keys, each from a new pid: what the reservation made room for.
        for k in 1_000..11_000 {
            reg.register(pid(k), k, tracker.counted(k));
        }
        let loaded = reg.stats();
        assert_eq!(
            (loaded.capacity, loaded.migrations),
            (reserved.capacity, 0),
            "the tables grew while loading what was reserved: {reserved:?} -> {loaded:?}"
        );
        assert_eq!(reg.count(), 11_000);
        drop(reg);
        tracker.assert_live(0);
    });
}

#[test]
fn reserve_finishes_a_growth_that_writes_left_under_way() {
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, u64> = duplicate(partitions, by);
        let mut k = 0;
        while reg.stats().migrations == 0 {
            reg.register(pid(k), k, k);
            k += 1;
        }
        reg.reserve(0);
        assert_eq!(reg.stats().migrations, 0, "{:?}", reg.stats());
        assert_eq!(reg.count(), k as usize);
        for key in 0..k {
            assert_eq!(reg.lookup(&key), vec![(pid(key), key)]);
        }
        assert_dup_consistent(&reg);
    });
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn reserve_beyond_memory_panics() {
    duplicate::<u64, u64>(2, PartitionBy::Key).reserve(usize::MAX);
}
