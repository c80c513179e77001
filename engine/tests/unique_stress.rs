//! Stress: every core hammers one registry with mixed operations for a time budget, then
//! the invariants are checked.
//!
//! Each thread runs its own pids (a few slots, each a fresh pid after every exit) and keeps
//! exact books on them: only the owner changes its entries, so at any moment a thread
//! knows which keys its pids hold, with which values, while other threads race for the
//! same keys. During the run every answer about its own pids must match its books exactly
//! (`register` conflicts, `unregister`, `update_value`, `lookup`, `keys`, `process_down`,
//! `select`), and no read may return a pid whose `process_down` returned before the read
//! started (checked with a shared clock stamped after every exit). At the end: `count` and
//! `monitors` equal what the books add up to, every booked entry is found, every view
//! agrees, and after every pid exits and `regent::reclaim()` has drained
//! `stats().retired_bytes` to 0, every value has been dropped exactly once.
//!
//! The time-budgeted tests are `#[ignore]`d; run them with
//! `REGENT_STRESS_SECS=10 cargo test -p regent --release --test unique_stress -- --ignored`.
//! `small_mixed_run_for_valgrind` is the same workload at a fixed, small size
//! (`REGENT_STRESS_OPS` per thread), run by the normal suite and by `scripts/valgrind.sh`.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_consistent, env_count, random_seed, Counted, SplitMix, Tracker};
use regent::{Pid, TryRegisterError, Unique};

/// Pid slots per thread. Slot 0 holds many keys (its monitor keeps a key list that grows
/// and shrinks); the others hold a few.
const SLOTS: usize = 4;
/// Keys are drawn from `0..KEYS`, shared by all threads.
const KEYS: u64 = 512;
const STAMP_BITS: u32 = 40;
const STAMP: u64 = (1 << STAMP_BITS) - 1;

/// Thread `t`'s pid in slot `s`, in its `g`-th life.
fn pid_of(t: usize, s: usize, g: u64) -> Pid {
    Pid::new((t as u64) << 48 | (s as u64) << 40 | g)
}

fn parts(pid: Pid) -> (usize, usize, u64) {
    let id = pid.get();
    (
        (id >> 48) as usize,
        ((id >> 40) & 0xFF) as usize,
        id & STAMP,
    )
}

fn cap(slot: usize) -> usize {
    if slot == 0 {
        40
    } else {
        6
    }
}

#[derive(Clone, Copy, Debug)]
enum Budget {
    Time(Duration),
    /// Operations per thread.
    Ops(u64),
}

#[derive(Clone, Copy, Debug)]
struct Config {
    partitions: usize,
    threads: usize,
    budget: Budget,
    /// `max_entries`: registrations then use `try_register`.
    limit: Option<usize>,
}

struct Shared {
    reg: Unique<u64, Counted>,
    tracker: Tracker,
    clock: AtomicU64,
    /// Per thread and slot, the latest exit: `(generation + 1) << 40 | clock stamp` taken
    /// after its `process_down` returned (0: none yet).
    downs: Vec<[AtomicU64; SLOTS]>,
    seed: u64,
}

impl Shared {
    /// Fails if `pid` went down before `start` (a clock reading taken before the read that
    /// returned `pid` began).
    fn assert_not_stale(&self, pid: Pid, start: u64, what: &str) {
        let (t, s, g) = parts(pid);
        let down = self.downs[t][s].load(SeqCst);
        if down == 0 {
            return;
        }
        let (gone, at) = ((down >> STAMP_BITS) - 1, down & STAMP);
        assert!(
            !(gone >= g && at < start),
            "{what} returned {pid:?}, whose process_down returned at {at}, before the read \
             started at {start} (seed {})",
            self.seed
        );
    }
}

/// A thread's books: per slot, the current generation and the keys held with their value
/// ids.
struct Books {
    generation: [u64; SLOTS],
    held: [BTreeMap<u64, u64>; SLOTS],
    ops: u64,
    /// Registrations refused because another pid held the key, and for the limit.
    taken: u64,
    full: u64,
}

impl Books {
    fn holder(&self, key: u64) -> Option<usize> {
        (0..SLOTS).find(|&s| self.held[s].contains_key(&key))
    }

    fn total(&self) -> usize {
        self.held.iter().map(BTreeMap::len).sum()
    }
}

/// One thread's run.
fn hammer(shared: &Shared, config: Config, t: usize, deadline: Option<Instant>) -> Books {
    let reg = &shared.reg;
    let mut rng = SplitMix::new(shared.seed ^ (t as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93));
    let mut books = Books {
        generation: [0; SLOTS],
        held: Default::default(),
        ops: 0,
        taken: 0,
        full: 0,
    };
    let mut next_value = (t as u64) << 40;
    let mut fresh = |tracker: &Tracker| {
        next_value += 1;
        tracker.counted(next_value)
    };
    loop {
        let done = match (config.budget, deadline) {
            (Budget::Ops(n), _) => books.ops >= n,
            (Budget::Time(_), Some(deadline)) => books.ops % 128 == 0 && Instant::now() >= deadline,
            (Budget::Time(_), None) => unreachable!(),
        };
        if done {
            return books;
        }
        books.ops += 1;
        let s = rng.below(SLOTS as u64) as usize;
        let pid = pid_of(t, s, books.generation[s]);
        let key = rng.below(KEYS);
        match rng.below(1000) {
            0..=399 => {
                if books.held[s].len() >= cap(s) {
                    continue;
                }
                let value = fresh(&shared.tracker);
                let id = value.id;
                let start = shared.clock.load(SeqCst);
                let result = match config.limit {
                    None => reg
                        .register(pid, key, value)
                        .map_err(TryRegisterError::Taken),
                    Some(_) => reg.try_register(pid, key, value),
                };
                match result {
                    Ok(()) => {
                        assert_eq!(books.holder(key), None, "registered a key we hold");
                        books.held[s].insert(key, id);
                    }
                    Err(TryRegisterError::Taken(e)) => {
                        books.taken += 1;
                        assert_eq!((e.key, e.value.id), (key, id), "handed back");
                        match books.holder(key) {
                            Some(h) => assert_eq!(e.owner, pid_of(t, h, books.generation[h])),
                            None => {
                                assert_ne!(parts(e.owner).0, t, "owner {:?}", e.owner);
                                shared.assert_not_stale(e.owner, start, "register's conflict");
                            }
                        }
                    }
                    Err(TryRegisterError::Full { key: k, value }) => {
                        books.full += 1;
                        assert!(config.limit.is_some());
                        assert_eq!((k, value.id), (key, id), "handed back");
                    }
                }
            }
            400..=499 => match books.held[s].keys().next().copied() {
                Some(mine) if rng.below(4) != 0 => {
                    assert!(reg.unregister(pid, &mine), "unregister {mine}");
                    books.held[s].remove(&mine);
                }
                _ => {
                    let owned = books.held[s].contains_key(&key);
                    assert_eq!(reg.unregister(pid, &key), owned, "unregister {key}");
                    books.held[s].remove(&key);
                }
            },
            500..=549 => {
                let target = books.held[s].keys().next().copied().unwrap_or(key);
                let new = fresh(&shared.tracker);
                let new_id = new.id;
                let mut new = Some(new);
                let updated = reg.update_value(pid, &target, |_| new.take().unwrap());
                match books.held[s].get_mut(&target) {
                    Some(id) => {
                        let (n, o) = updated.expect("the owner updates");
                        assert_eq!((n.id, o.id), (new_id, *id));
                        *id = new_id;
                    }
                    None => {
                        assert!(updated.is_none());
                        assert!(new.is_some(), "f ran for a non-owner");
                    }
                }
            }
            550..=799 => {
                let start = shared.clock.load(SeqCst);
                let found = reg.lookup(&key);
                match books.holder(key) {
                    Some(h) => {
                        let expected = (pid_of(t, h, books.generation[h]), books.held[h][&key]);
                        assert_eq!(found.map(|(p, v)| (p, v.id)), Some(expected), "key {key}");
                    }
                    None => {
                        if let Some((owner, _)) = found {
                            assert_ne!(parts(owner).0, t, "{owner:?} holds {key}");
                            shared.assert_not_stale(owner, start, "lookup");
                        }
                    }
                }
            }
            800..=849 => {
                let start = shared.clock.load(SeqCst);
                let found = reg.whereis(&key);
                match books.holder(key) {
                    Some(h) => assert_eq!(found, Some(pid_of(t, h, books.generation[h]))),
                    None => {
                        if let Some(owner) = found {
                            assert_ne!(parts(owner).0, t, "{owner:?} holds {key}");
                            shared.assert_not_stale(owner, start, "whereis");
                        }
                    }
                }
            }
            850..=899 => {
                let mut keys = reg.keys(pid);
                keys.sort_unstable();
                assert!(keys.iter().eq(books.held[s].keys()), "keys({pid:?})");
            }
            900..=929 => {
                assert_eq!(reg.process_down(pid), books.held[s].len(), "{pid:?}");
                let stamp = shared.clock.fetch_add(1, SeqCst);
                let generation = books.generation[s];
                shared.downs[t][s].store((generation + 1) << STAMP_BITS | stamp, SeqCst);
                books.generation[s] += 1;
                books.held[s].clear();
            }
            930 if rng.below(20) == 0 => {
                // A whole-registry walk: ours exactly, nobody else's stale.
                let start = shared.clock.load(SeqCst);
                let mut ours = Vec::new();
                reg.select(|&k, p, v| {
                    if parts(p).0 == t {
                        ours.push((parts(p).1, k, v.id));
                    } else {
                        shared.assert_not_stale(p, start, "select");
                    }
                    None::<()>
                });
                ours.sort_unstable();
                let mut booked: Vec<(usize, u64, u64)> = (0..SLOTS)
                    .flat_map(|s| books.held[s].iter().map(move |(&k, &id)| (s, k, id)))
                    .collect();
                booked.sort_unstable();
                assert_eq!(ours, booked, "select, thread {t}");
                let n = reg.count_select(|_, p, _| parts(p).0 == t);
                assert_eq!(n, books.total(), "count_select, thread {t}");
            }
            931 if rng.below(10) == 0 => {
                // Growth in this thread while the others write: nothing may move out of
                // sight (the books are checked on every later call).
                reg.reserve(rng.below(20_000) as usize);
            }
            _ => {
                if books.holder(key).is_some() {
                    assert!(reg.contains_key(&key), "key {key}");
                }
            }
        }
    }
}

/// What a run did, for the report.
#[derive(Debug)]
struct Summary {
    ops: u64,
    taken: u64,
    full: u64,
    elapsed: Duration,
    entries_at_end: usize,
    most_retired_bytes: usize,
}

/// Only one run at a time: `retired_bytes` is process-wide, so the final drain must not see
/// another run's garbage.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(config: Config) -> Summary {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let limit = match config.budget {
        Budget::Time(d) => d + Duration::from_secs(300),
        Budget::Ops(_) => Duration::from_secs(600),
    };
    let _watchdog = common::Watchdog::new("stress run", limit);
    let seed = env_count("REGENT_STRESS_SEED", random_seed());
    let mut builder = Unique::builder().partitions(config.partitions);
    if let Some(max) = config.limit {
        builder = builder.max_entries(max);
    }
    let shared = Shared {
        reg: builder.build(),
        tracker: Tracker::new(),
        clock: AtomicU64::new(1),
        downs: (0..config.threads).map(|_| Default::default()).collect(),
        seed,
    };
    let started = Instant::now();
    let deadline = match config.budget {
        Budget::Time(d) => Some(started + d),
        Budget::Ops(_) => None,
    };
    let books: Vec<Books> = thread::scope(|s| {
        let workers: Vec<_> = (0..config.threads)
            .map(|t| {
                let shared = &shared;
                s.spawn(move || hammer(shared, config, t, deadline))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let reg = &shared.reg;
    let most_retired_bytes = reg.stats().retired_bytes;

    // The books add up.
    let expected: usize = books.iter().map(Books::total).sum();
    let holders = books
        .iter()
        .map(|b| b.held.iter().filter(|h| !h.is_empty()).count())
        .sum::<usize>();
    assert_eq!(reg.count(), expected, "count (seed {seed})");
    assert_eq!(reg.monitors(), holders, "monitors (seed {seed})");
    if let Some(max) = config.limit {
        assert!(expected <= max);
    }
    for (t, b) in books.iter().enumerate() {
        for s in 0..SLOTS {
            let pid = pid_of(t, s, b.generation[s]);
            for (&key, &id) in &b.held[s] {
                assert_eq!(reg.lookup(&key).map(|(p, v)| (p, v.id)), Some((pid, id)));
            }
        }
    }
    assert_consistent(reg);

    // Everyone exits; the registry is empty and every value is dropped exactly once.
    for (t, b) in books.iter().enumerate() {
        for s in 0..SLOTS {
            let pid = pid_of(t, s, b.generation[s]);
            assert_eq!(reg.process_down(pid), b.held[s].len());
        }
    }
    assert_eq!((reg.count(), reg.monitors()), (0, 0));
    assert!(reg.select(|_, _, _| Some(())).is_empty());
    if let Some(max) = config.limit {
        // No reservation leaked: the registry fills to its limit again, and no further.
        for k in 0..max as u64 {
            reg.try_register(Pid::new(u64::MAX), k, shared.tracker.counted(k))
                .unwrap();
        }
        let full = reg.try_register(Pid::new(u64::MAX), KEYS, shared.tracker.counted(0));
        assert!(matches!(full, Err(TryRegisterError::Full { .. })));
        assert_eq!(reg.process_down(Pid::new(u64::MAX)), max);
    }
    let drain_deadline = Instant::now() + Duration::from_secs(30);
    while reg.stats().retired_bytes > 0 {
        assert!(
            Instant::now() < drain_deadline,
            "retired bytes did not drain: {}",
            reg.stats().retired_bytes
        );
        regent::reclaim();
        thread::yield_now();
    }
    assert_eq!(shared.tracker.live(), 0, "values alive after the drain");
    let ops = books.iter().map(|b| b.ops).sum();
    let taken = books.iter().map(|b| b.taken).sum();
    let full = books.iter().map(|b| b.full).sum();
    drop(shared);
    Summary {
        ops,
        taken,
        full,
        elapsed,
        entries_at_end: expected,
        most_retired_bytes,
    }
}

fn report(name: &str, config: Config, summary: &Summary) {
    let secs = summary.elapsed.as_secs_f64();
    eprintln!(
        "stress {name}: partitions {}, {} threads, limit {:?}: {} operations in {secs:.1} s \
         ({:.2} M/s; {} registrations Taken, {} Full), {} entries at the end, {} bytes \
         awaiting reclamation after the run",
        config.partitions,
        config.threads,
        config.limit,
        summary.ops,
        summary.ops as f64 / secs / 1e6,
        summary.taken,
        summary.full,
        summary.entries_at_end,
        summary.most_retired_bytes
    );
}

fn cores() -> usize {
    thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(2)
}

/// Half of `REGENT_STRESS_SECS` (default 10) for each partition count.
fn half_budget() -> Budget {
    let secs = env_count("REGENT_STRESS_SECS", 10);
    Budget::Time(Duration::from_millis(secs * 500))
}

#[test]
#[ignore = "stress: runs for REGENT_STRESS_SECS (default 10)"]
fn stress_mixed_operations_on_every_core() {
    for partitions in common::PARTITIONS {
        let config = Config {
            partitions,
            threads: cores(),
            budget: half_budget(),
            limit: None,
        };
        report("mixed", config, &run(config));
    }
}

#[test]
#[ignore = "stress: runs for REGENT_STRESS_SECS (default 10)"]
fn stress_at_an_entry_limit_on_every_core() {
    for partitions in common::PARTITIONS {
        let config = Config {
            partitions,
            threads: cores(),
            budget: half_budget(),
            // Below what the threads would hold: try_register meets Full all the time.
            limit: Some(24 * cores()),
        };
        report("limit", config, &run(config));
    }
}

#[test]
fn small_mixed_run_for_valgrind() {
    let ops = env_count("REGENT_STRESS_OPS", 3_000);
    for (partitions, limit) in [(1, None), (8, None), (8, Some(30))] {
        let config = Config {
            partitions,
            threads: 2,
            budget: Budget::Ops(ops),
            limit,
        };
        report("small", config, &run(config));
    }
}
