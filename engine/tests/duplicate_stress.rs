//! Stress for duplicate registries: every core hammers mixed operations on a few hot keys
//! for `REGENT_STRESS_SECS` seconds (default 10); then counts, monitors, drop counts and
//! the per-thread bookkeeping must agree. `#[ignore]`d: `.ci/run` runs it on a budget.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_dup_consistent, env_count, for_each_dup_config, Counted, SplitMix, Tracker};
use regent::{Duplicate, Pid};

#[test]
#[ignore = "stress: run explicitly with a time budget (REGENT_STRESS_SECS)"]
fn mixed_operations_on_hot_keys_from_every_core() {
    let secs = env_count("REGENT_STRESS_SECS", 10);
    let threads = thread::available_parallelism()
        .map_or(2, usize::from)
        .max(2);
    // The budget is shared by the four configurations.
    let budget = Duration::from_secs(secs) / 4;
    for_each_dup_config(|partitions, by| {
        let tracker = Tracker::new();
        let reg: Duplicate<u64, Counted> = common::duplicate(partitions, by);
        // The highest pid of each thread whose process_down returned; its entries must
        // never be dispatched afterwards.
        let downs: Vec<AtomicU64> = (0..threads).map(|_| AtomicU64::new(0)).collect();
        let ops = AtomicU64::new(0);
        let held: Vec<HashMap<(u64, u64), u64>> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let (reg, tracker, downs, ops) = (&reg, &tracker, &downs, &ops);
                    s.spawn(move || {
                        let mut rng = SplitMix::new(t + 1);
                        // (pid, key) -> entries; pids are t << 32 | generation.
                        let mut held: HashMap<(u64, u64), u64> = HashMap::new();
                        let mut generation = 1;
                        let start = Instant::now();
                        let mut n = 0u64;
                        while start.elapsed() < budget {
                            let pid = t << 32 | generation;
                            let key = rng.next_u64() % 8;
                            if rng.next_u64() % 1024 == 0 {
                                // Growth in this thread while the others write and dispatch.
                                reg.reserve((rng.next_u64() % 10_000) as usize);
                            }
                            match rng.next_u64() % 16 {
                                0..=7 => {
                                    reg.register(Pid::new(pid), key, tracker.counted(pid));
                                    *held.entry((pid, key)).or_default() += 1;
                                }
                                8..=10 => {
                                    let expected = held.remove(&(pid, key)).unwrap_or(0);
                                    assert_eq!(
                                        reg.unregister(Pid::new(pid), &key) as u64,
                                        expected
                                    );
                                }
                                11 => {
                                    let expected: u64 =
                                        held.iter().filter(|e| e.0 .0 == pid).map(|e| e.1).sum();
                                    held.retain(|k, _| k.0 != pid);
                                    assert_eq!(reg.process_down(Pid::new(pid)) as u64, expected);
                                    downs[t as usize].store(pid, Ordering::Release);
                                    generation += 1;
                                }
                                _ => {
                                    let before: Vec<u64> =
                                        downs.iter().map(|d| d.load(Ordering::Acquire)).collect();
                                    reg.dispatch(&key, |p, v| {
                                        let (owner, p) = ((p.get() >> 32) as usize, p.get());
                                        assert_eq!(v.id, p, "a value under another pid");
                                        assert!(
                                            p > before[owner],
                                            "pid {p:#x} dispatched after its process_down returned"
                                        );
                                    });
                                }
                            }
                            n += 1;
                        }
                        ops.fetch_add(n, Ordering::Relaxed);
                        held
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let expected: u64 = held.iter().flat_map(|h| h.values()).sum();
        assert_eq!(reg.count() as u64, expected);
        let pids = held
            .iter()
            .flat_map(|h| h.keys().map(|k| k.0))
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(reg.monitors(), pids.len());
        tracker.assert_live(expected as usize);
        eprintln!(
            "partitions {partitions}, {by:?}: {} operations on {threads} threads in {budget:?}",
            ops.load(Ordering::Relaxed)
        );
        let view = Duplicate::builder().partitions(1).build();
        reg.select(|k, p, v| Some((*k, p, v.id)))
            .into_iter()
            .for_each(|(k, p, v)| view.register(p, k, v));
        assert_dup_consistent::<u64, u64, Pid, _>(&view);
        drop(reg);
        tracker.assert_live(0);
    });
}
