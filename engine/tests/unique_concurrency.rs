//! Threads racing on one `Unique`: conflicting registrations, ownership changing hands,
//! process exits observed by concurrent readers, and growth while others read.

mod common;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;

use common::{assert_consistent, for_each_config, scaled, unique, Rng, Workers};
use regent::{Event, Pid, Unique};

#[test]
fn racing_registrations_have_exactly_one_winner_per_key() {
    const THREADS: u64 = 4;
    let keys = scaled(80_000) as u64;
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        let barrier = Barrier::new(THREADS as usize);
        // Thread t registers every key as pid t with value t; each outcome is Ok or the owner.
        let outcomes: Vec<Vec<Result<(), Pid>>> = thread::scope(|s| {
            let racers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (reg, barrier) = (&reg, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..keys)
                            .map(|k| {
                                reg.register(Pid::new(t), k, t).map_err(|e| {
                                    assert_eq!((e.key, e.value), (k, t), "handed back");
                                    e.owner
                                })
                            })
                            .collect()
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });

        let mut wins = [0; THREADS as usize];
        for k in 0..keys as usize {
            let winners: Vec<Pid> = (0..THREADS)
                .filter(|&t| outcomes[t as usize][k].is_ok())
                .map(Pid::new)
                .collect();
            let [winner] = winners[..] else {
                panic!("key {k} has winners {winners:?}");
            };
            wins[winner.get() as usize] += 1;
            for outcome in &outcomes {
                if let Err(owner) = outcome[k] {
                    assert_eq!(owner, winner, "key {k}: a loser was told another owner");
                }
            }
            assert_eq!(reg.lookup(&(k as u64)), Some((winner, winner.get())));
        }
        for (t, &won) in wins.iter().enumerate() {
            assert_eq!(reg.keys(Pid::new(t as u64)).len(), won);
        }
        assert_eq!(reg.count() as u64, keys);
        assert_eq!(reg.monitors(), wins.iter().filter(|&&w| w > 0).count());
    });
}

#[test]
fn owner_only_operations_hold_while_keys_change_hands() {
    const THREADS: u64 = 4;
    const KEYS: u64 = 4;
    let rounds = scaled(40_000) as u64;
    for_each_config(|p| {
        let events = Arc::new([
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        ]);
        let reg = Unique::<u64, u64>::builder()
            .partitions(p)
            .listener({
                let events = Arc::clone(&events);
                move |event| {
                    let i = match event {
                        Event::Registered { .. } => 0,
                        Event::Unregistered { .. } => 1,
                        Event::Down { .. } => 2,
                    };
                    events[i].fetch_add(1, SeqCst);
                }
            })
            .build();
        let wins: usize = thread::scope(|s| {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let reg = &reg;
                    s.spawn(move || {
                        // Thread t's pids are t, t + THREADS, ...: a new one after each exit.
                        let mut me = Pid::new(t);
                        let mut wins = 0;
                        for i in 0..rounds {
                            let k = i % KEYS;
                            match reg.register(me, k, t) {
                                Ok(()) => {
                                    // Nobody else can change or remove the entry we hold.
                                    let updated = reg.update_value(me, &k, |&v| v + 1);
                                    assert_eq!(updated, Some((t + 1, t)));
                                    assert_eq!(reg.lookup(&k), Some((me, t + 1)));
                                    if i % 2 == 0 {
                                        assert!(reg.unregister(me, &k));
                                    } else {
                                        assert_eq!(reg.process_down(me), 1);
                                        me = Pid::new(me.get() + THREADS);
                                    }
                                    wins += 1;
                                }
                                Err(e) => {
                                    // Never ourselves, not even a pid of ours that exited.
                                    assert_ne!(e.owner.get() % THREADS, t, "{:?}", e.owner);
                                    let f = |_: &u64| unreachable!("f called for a non-owner");
                                    assert_eq!(reg.update_value(me, &k, f), None);
                                    assert!(!reg.unregister(me, &k));
                                }
                            }
                        }
                        wins
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert!(reg.is_empty());
        assert_eq!(reg.monitors(), 0);
        let [registered, unregistered, down] = events.each_ref().map(|e| e.load(SeqCst));
        assert_eq!(registered, wins);
        assert_eq!(unregistered + down, wins);
    });
}

#[test]
fn readers_see_updates_whole_and_in_order() {
    const KEYS: u64 = 8;
    const READERS: u64 = 3;
    let updates = scaled(100_000) as u64;
    // The value is a number and its text: a torn read would make them disagree.
    let value = |n: u64| (n, n.to_string());
    for_each_config(|p| {
        let reg = unique::<u64, (u64, String)>(p);
        for k in 0..KEYS {
            reg.register(Pid::new(k), k, value(0)).unwrap();
        }
        let writer = Workers::new(1);
        thread::scope(|s| {
            let (reg, writer) = (&reg, &writer);
            s.spawn(move || {
                writer.run(|| {
                    for n in 1..=updates {
                        let k = n % KEYS;
                        let (new, old) = reg
                            .update_value(Pid::new(k), &k, |old| value(old.0 + 1))
                            .unwrap();
                        assert_eq!(new.0, old.0 + 1);
                    }
                })
            });
            for r in 0..READERS {
                s.spawn(move || {
                    let mut rng = Rng::new(r);
                    let mut last = [0; KEYS as usize];
                    while writer.running() {
                        let k = rng.below(KEYS);
                        let (pid, (n, text)) = reg.lookup(&k).unwrap();
                        assert_eq!((pid, text), (Pid::new(k), n.to_string()));
                        assert!(
                            n >= last[k as usize],
                            "key {k} went back from {} to {n}",
                            last[k as usize]
                        );
                        last[k as usize] = n;
                    }
                });
            }
        });
        for k in 0..KEYS {
            assert_eq!(reg.lookup(&k), Some((Pid::new(k), value(updates / KEYS))));
        }
    });
}

#[test]
fn max_entries_holds_exactly_under_contention() {
    const THREADS: u64 = 4;
    const MAX: usize = 1500;
    let per_thread = 1000;
    for_each_config(|p| {
        let reg = Unique::<u64>::builder()
            .partitions(p)
            .max_entries(MAX)
            .build();
        let registered: usize = thread::scope(|s| {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let reg = &reg;
                    s.spawn(move || {
                        let keys = t * per_thread..(t + 1) * per_thread;
                        keys.filter(|&k| reg.try_register(Pid::new(k), k, ()).is_ok())
                            .count()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert_eq!(registered, MAX);
        assert_eq!((reg.count(), reg.monitors()), (MAX, MAX));
        assert_consistent(&reg);
    });
}

/// Writers cycle through generations of pids, each registering the writer's own keys and
/// then exiting. Before each lookup a reader reads how many generations of the key's writer
/// have exited (their `process_down` returned): the lookup must not return any of them.
#[test]
fn no_read_returns_a_pid_after_its_process_down_returned() {
    const WRITERS: u64 = 2;
    const READERS: u64 = 2;
    const KEYS_PER_WRITER: u64 = 64;
    const KEYS: u64 = WRITERS * KEYS_PER_WRITER;
    let generations = scaled(2_000) as u64;
    let pid = |writer: u64, generation: u64| Pid::new(generation * WRITERS + writer);
    let generation_of = |pid: Pid| pid.get() / WRITERS;
    for_each_config(|p| {
        let reg = unique::<u64, u64>(p);
        let exited: Vec<AtomicU64> = (0..WRITERS).map(|_| AtomicU64::new(0)).collect();
        let writers = Workers::new(WRITERS as usize);
        thread::scope(|s| {
            let (reg, exited, writers) = (&reg, &exited, &writers);
            for w in 0..WRITERS {
                s.spawn(move || {
                    writers.run(|| {
                        let keys = w * KEYS_PER_WRITER..(w + 1) * KEYS_PER_WRITER;
                        for generation in 0..generations {
                            let me = pid(w, generation);
                            // The previous generation's names are free once its exit returned.
                            for k in keys.clone() {
                                reg.register(me, k, generation).unwrap();
                            }
                            for k in keys.clone().step_by(3) {
                                assert!(reg.unregister(me, &k));
                                reg.register(me, k, generation).unwrap();
                            }
                            if generation + 1 < generations {
                                assert_eq!(reg.process_down(me), KEYS_PER_WRITER as usize);
                                exited[w as usize].store(generation + 1, SeqCst);
                            }
                        }
                    })
                });
            }
            for r in 0..READERS {
                s.spawn(move || {
                    let mut rng = Rng::new(r);
                    let check = |k: u64, found: Pid, floor: u64| {
                        assert_eq!(found.get() % WRITERS, k / KEYS_PER_WRITER, "key {k}");
                        assert!(
                            generation_of(found) >= floor,
                            "key {k}: {found:?} returned after its process_down returned"
                        );
                    };
                    while writers.running() {
                        let k = rng.below(KEYS);
                        let w = (k / KEYS_PER_WRITER) as usize;
                        let floor = exited[w].load(SeqCst);
                        if let Some((found, generation)) = reg.lookup(&k) {
                            check(k, found, floor);
                            assert_eq!(generation, generation_of(found));
                        }
                        if let Some(found) = reg.whereis(&k) {
                            check(k, found, floor);
                        }
                        if floor > 0 {
                            let gone = pid(w as u64, floor - 1);
                            assert!(reg.keys(gone).is_empty(), "{gone:?} holds keys");
                        }
                        if rng.below(32) == 0 {
                            let floors: Vec<u64> = exited.iter().map(|e| e.load(SeqCst)).collect();
                            for (k, found) in reg.select(|&k, pid, _| Some((k, pid))) {
                                check(k, found, floors[(k / KEYS_PER_WRITER) as usize]);
                            }
                        }
                    }
                });
            }
        });
        // Each writer's last generation is still alive and holds all its keys.
        assert_eq!(reg.count() as u64, KEYS);
        assert_eq!(reg.monitors() as u64, WRITERS);
        for k in 0..KEYS {
            let last = pid(k / KEYS_PER_WRITER, generations - 1);
            assert_eq!(reg.lookup(&k), Some((last, generations - 1)));
        }
        assert_consistent(&reg);
    });
}

#[test]
fn concurrent_growth_from_one_partition_loses_nothing() {
    const THREADS: u64 = 4;
    const PIDS_PER_THREAD: u64 = 1000;
    let per_thread = scaled(400_000) as u64;
    let pid_of = |k: u64| Pid::new(k / per_thread * PIDS_PER_THREAD + k % PIDS_PER_THREAD);
    let reg = unique::<u64, u64>(1);
    // registered[t]: how many of thread t's keys are registered (their `register` returned).
    let registered: Vec<AtomicU64> = (0..THREADS).map(|_| AtomicU64::new(0)).collect();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (reg, registered) = (&reg, &registered);
            s.spawn(move || {
                let mut rng = Rng::new(t);
                for i in 0..per_thread {
                    let k = t * per_thread + i;
                    reg.register(pid_of(k), k, k).unwrap();
                    registered[t as usize].store(i + 1, SeqCst);
                    // Every registered key stays visible while the table migrates.
                    let other = rng.below(THREADS);
                    let done = registered[other as usize].load(SeqCst);
                    if done > 0 {
                        let k = other * per_thread + rng.below(done);
                        assert_eq!(reg.lookup(&k), Some((pid_of(k), k)));
                    }
                }
            });
        }
    });
    assert_eq!(reg.count() as u64, THREADS * per_thread);
    assert_eq!(
        reg.count_select(|_, _, _| true) as u64,
        THREADS * per_thread
    );
    assert_eq!(reg.monitors() as u64, THREADS * PIDS_PER_THREAD);
    for k in 0..THREADS * per_thread {
        assert_eq!(reg.lookup(&k), Some((pid_of(k), k)), "key {k}");
    }
}

/// `select` is weakly consistent, but an entry present for the whole call is visited
/// exactly once, even while another thread grows the table and churns other keys.
#[test]
fn select_visits_each_entry_present_throughout_exactly_once() {
    const INITIAL: u64 = 1000;
    let end = INITIAL + scaled(100_000) as u64;
    let reg = unique::<u64, u64>(1);
    for k in 0..INITIAL {
        reg.register(Pid::new(0), k, k).unwrap();
    }
    // Keys 0..registered are registered and are never removed.
    let registered = AtomicU64::new(INITIAL);
    let grower = Workers::new(1);
    thread::scope(|s| {
        s.spawn(|| {
            grower.run(|| {
                for k in INITIAL..end {
                    reg.register(Pid::new(1), k, k).unwrap();
                    registered.store(k + 1, SeqCst);
                    // Churn: a key that comes and goes, leaving tombstones behind.
                    reg.register(Pid::new(2), u64::MAX - k, 0).unwrap();
                    assert!(reg.unregister(Pid::new(2), &(u64::MAX - k)));
                }
            })
        });
        s.spawn(|| {
            while grower.running() {
                let present = registered.load(SeqCst);
                let mut seen = reg.select(|&k, _, _| (k < present).then_some(k));
                seen.sort_unstable();
                let missed = (0..present)
                    .filter(|k| seen.binary_search(k).is_err())
                    .count();
                assert_eq!(missed, 0, "entries missed, of {present}");
                assert_eq!(seen.len() as u64, present, "entries visited twice");
                let initial = reg.count_select(|&k, _, _| k < INITIAL);
                assert_eq!(initial as u64, INITIAL);
            }
        });
    });
}

/// A mailbox that keeps its messages inline: a send reallocates the vector now and then,
/// so a send into a stale copy of the value (one a table growth left behind) would lose the
/// message, or free memory the current copy still points to.
struct Inline(std::sync::Mutex<Vec<u64>>);

impl regent::Mailbox<u64> for Inline {
    fn send(&self, msg: u64) -> Result<(), u64> {
        self.0.lock().unwrap().push(msg);
        Ok(())
    }
}

#[test]
fn sends_into_values_that_change_survive_growth() {
    const SENDERS: u64 = 2;
    const NAMES: u64 = 16;
    let sends = scaled(20_000) as u64;
    let growth = scaled(200_000) as u64;
    for_each_config(|p| {
        let reg = unique::<u64, Inline>(p);
        for k in 0..NAMES {
            reg.register(Pid::new(k), k, Inline(std::sync::Mutex::new(Vec::new())))
                .unwrap();
        }
        let workers = Workers::new(SENDERS as usize);
        thread::scope(|s| {
            for t in 0..SENDERS {
                let (reg, workers) = (&reg, &workers);
                s.spawn(move || {
                    workers.run(|| {
                        for i in 0..sends {
                            let msg = t * sends + i;
                            assert_eq!(
                                reg.send(&(msg % NAMES), msg).ok(),
                                Some(Pid::new(msg % NAMES))
                            );
                        }
                    });
                });
            }
            // Grows every partition's table through several migrations while the sends run.
            let mut k = NAMES;
            while workers.running() || k < NAMES + growth {
                reg.register(Pid::new(k), k, Inline(std::sync::Mutex::new(Vec::new())))
                    .unwrap();
                k += 1;
            }
        });
        // Every message is in its name's value, once.
        let mut seen = Vec::new();
        for (k, msgs) in
            reg.select(|&k, _, v: &Inline| (k < NAMES).then(|| (k, v.0.lock().unwrap().clone())))
        {
            assert!(
                msgs.iter().all(|m| m % NAMES == k),
                "a message in the wrong value"
            );
            seen.extend(msgs);
        }
        seen.sort_unstable();
        let want: Vec<u64> = (0..SENDERS * sends).collect();
        assert_eq!(seen.len(), want.len(), "messages lost or doubled");
        assert_eq!(seen, want);
    });
}

/// `whereis_many` holds each key's array for up to `AHEAD` keys before probing it, so a
/// batch runs across migrations: a writer grows the table from empty while readers batch
/// over keys it registered before their batch began (each must be found, with its owner)
/// and keys nobody registers (each must be missing).
#[test]
fn batch_lookups_find_what_was_there_while_the_table_grows() {
    for_each_config(|partitions| {
        let names: Unique<u64, u64> = unique(partitions);
        let total = scaled(200_000) as u64;
        // Keys registered so far: `0..published`.
        let published = AtomicU64::new(0);
        let workers = Workers::new(1);
        thread::scope(|s| {
            s.spawn(|| {
                workers.run(|| {
                    for k in 0..total {
                        names.register(Pid::new(k % 1000), k, k).unwrap();
                        published.store(k + 1, SeqCst);
                    }
                });
            });
            for reader in 0..2u64 {
                let (names, published, workers) = (&names, &published, &workers);
                s.spawn(move || {
                    let mut rng = Rng::new(reader + 1);
                    let mut batches = 0u64;
                    while workers.running() || batches < 10 {
                        let before = published.load(SeqCst);
                        let size = 1 + rng.below(40) as usize;
                        // Even slots: registered before the batch; odd: never registered.
                        let keys: Vec<u64> = (0..size as u64)
                            .map(|i| {
                                if i % 2 == 0 && before > 0 {
                                    rng.below(before)
                                } else {
                                    total + rng.below(1 << 40)
                                }
                            })
                            .collect();
                        let found = names.whereis_many(keys.iter());
                        assert_eq!(found.len(), keys.len());
                        for (key, pid) in keys.iter().zip(found) {
                            let want = (*key < total).then(|| Pid::new(key % 1000));
                            assert_eq!(pid, want, "key {key}, {before} published");
                        }
                        batches += 1;
                    }
                });
            }
        });
        assert_eq!(names.count(), total as usize);
        assert_consistent(&names);
    });
}

/// `reserve` copies whole tables in the calling thread while writers register, unregister
/// and start growths of their own, and readers look up keys that must stay visible.
#[test]
fn reserve_while_others_write_and_read_loses_nothing() {
    for_each_config(|partitions| {
        let reg: Unique<u64, u64> = unique(partitions);
        let per_writer = scaled(100_000) as u64;
        // Keys registered by writer t so far: `t * per_writer ..` that plus published[t].
        let published: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
        let workers = Workers::new(2);
        let reserves = AtomicU64::new(0);
        thread::scope(|s| {
            for t in 0..2u64 {
                let (reg, published, workers) = (&reg, &published, &workers);
                s.spawn(move || {
                    workers.run(|| {
                        for i in 0..per_writer {
                            let k = t * per_writer + i;
                            reg.register(Pid::new(k % 500), k, k).unwrap();
                            // Every fourth key comes and goes again: tombstones to drop.
                            let gone = (1 << 40) + k;
                            if i % 4 == 0 {
                                reg.register(Pid::new(k % 500), gone, k).unwrap();
                                assert!(reg.unregister(Pid::new(k % 500), &gone));
                            }
                            published[t as usize].store(i + 1, SeqCst);
                        }
                    });
                });
            }
            s.spawn(|| {
                // Reservations of every size, from finishing a growth to doubling the table.
                let mut rng = Rng::new(7);
                while workers.running() {
                    reg.reserve(rng.below(4 * per_writer) as usize);
                    reserves.fetch_add(1, SeqCst);
                }
            });
            s.spawn(|| {
                let mut rng = Rng::new(11);
                while workers.running() {
                    let t = rng.below(2);
                    let done = published[t as usize].load(SeqCst);
                    if done > 0 {
                        let k = t * per_writer + rng.below(done);
                        assert_eq!(reg.lookup(&k), Some((Pid::new(k % 500), k)), "key {k}");
                    }
                }
            });
        });
        assert!(reserves.load(SeqCst) > 0);
        assert_eq!(reg.count() as u64, 2 * per_writer);
        for k in 0..2 * per_writer {
            assert_eq!(reg.lookup(&k), Some((Pid::new(k % 500), k)), "key {k}");
        }
        assert_consistent(&reg);
        reg.reserve(0);
        assert_eq!(reg.stats().migrations, 0);
    });
}
