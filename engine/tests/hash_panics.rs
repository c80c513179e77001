//! Keys and pids whose `Hash` or `Eq` panics. The registries' docs say they must not, and
//! say what happens if they do:
//!
//! * a panic while a call hashes or compares the caller's own key or pid reaches that
//!   caller, and the registry is as if the call had not been made (no entry, no monitor,
//!   no count changed);
//! * a panic while a table migration rehashes a stored key or pid would leave the group
//!   being copied frozen for ever, and every later writer of it waiting: regent aborts the
//!   process with a message instead. An abort can only be watched from outside, so those
//!   tests run this test binary again as a child process and check how it ended.

mod common;

use std::cmp::Ordering as CmpOrdering;
use std::hash::{BuildHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use common::{
    assert_consistent, assert_dup_consistent, for_each_dup_config, serial_quiet, Counted, Tracker,
};
use regent::{Duplicate, Pid, Unique};

const TRAP: &str = "trap";

/// The traps are process-wide: the tests of this file run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    let serial = serial_quiet(TRAP);
    disarm();
    serial
}

/// The id whose `Hash` panics (`u64::MAX`: none).
static HASH_TRAP: AtomicU64 = AtomicU64::new(u64::MAX);
/// How many more `Eq` calls succeed before one panics (negative: none panics).
static EQ_FUSE: AtomicI64 = AtomicI64::new(-1);

fn disarm() {
    HASH_TRAP.store(u64::MAX, Ordering::SeqCst);
    EQ_FUSE.store(-1, Ordering::SeqCst);
}

/// A key (or, being `Copy`, a pid) whose `Hash` and `Eq` panic when the traps say so.
#[derive(Clone, Copy, Debug)]
struct Trap(u64);

impl Hash for Trap {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if HASH_TRAP.load(Ordering::SeqCst) == self.0 {
            std::panic::panic_any(TRAP);
        }
        self.0.hash(state);
    }
}

impl PartialEq for Trap {
    fn eq(&self, other: &Self) -> bool {
        let fuse = EQ_FUSE.load(Ordering::SeqCst);
        if fuse >= 0 {
            EQ_FUSE.store(fuse - 1, Ordering::SeqCst);
            if fuse == 0 {
                std::panic::panic_any(TRAP);
            }
        }
        self.0 == other.0
    }
}

impl Eq for Trap {}

impl PartialOrd for Trap {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Trap {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.0.cmp(&other.0)
    }
}

/// A key that is a [`Trap`] and counts its constructions and drops, so that a key left in
/// a leaked bag or entry fails the test.
#[derive(Clone, Debug)]
struct TrapKey {
    trap: Trap,
    /// Counted as it is made and dropped; never read.
    _count: Counted,
}

impl TrapKey {
    fn new(tracker: &Tracker, id: u64) -> Self {
        TrapKey {
            trap: Trap(id),
            _count: tracker.counted(id),
        }
    }
}

impl Hash for TrapKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.trap.hash(state);
    }
}

impl PartialEq for TrapKey {
    fn eq(&self, other: &Self) -> bool {
        self.trap == other.trap
    }
}

impl Eq for TrapKey {}

impl PartialOrd for TrapKey {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for TrapKey {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.trap.cmp(&other.trap)
    }
}

/// Every key and pid hashes to 0, so every stored key's tag matches and a probe compares
/// the caller's key with each of them: an `Eq` panic can be placed at any comparison.
#[derive(Clone, Copy, Debug, Default)]
struct Collide;

struct ZeroHasher;

impl Hasher for ZeroHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, _: &[u8]) {}
}

impl BuildHasher for Collide {
    type Hasher = ZeroHasher;
    fn build_hasher(&self) -> ZeroHasher {
        ZeroHasher
    }
}

/// Runs `call` with the `Eq` fuse set to go off at the `n`th comparison from now; true if
/// it went off (the call panicked with the trap), false if the call made fewer than `n + 1`
/// comparisons and finished. Any other panic fails the test.
fn with_fuse(n: i64, call: impl FnOnce()) -> bool {
    EQ_FUSE.store(n, Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(call));
    disarm();
    match outcome {
        Ok(()) => false,
        Err(payload) => {
            assert_eq!(payload.downcast_ref::<&str>(), Some(&TRAP), "another panic");
            true
        }
    }
}

/// Runs `case(n)` for n = 0, 1, ... (a fuse at the n-th comparison; `case` returns whether
/// it went off) until a run makes it through, and fails unless the fuse went off at least
/// `min` times: the calls must make that many comparisons, or the test misses its point.
fn fuse_at_each(what: &str, min: usize, mut case: impl FnMut(i64) -> bool) {
    let mut went_off = 0;
    for n in 0.. {
        if !case(n) {
            break;
        }
        went_off += 1;
    }
    assert!(
        went_off >= min,
        "{what}: only {went_off} comparisons could panic"
    );
}

#[test]
fn a_unique_registration_whose_eq_panics_leaves_nothing_behind() {
    let _serial = serial();
    let tracker = Tracker::new();
    for partitions in [1, 8] {
        // The lock-free refusal check compares with three keys, the insertion again.
        fuse_at_each("unique", 6, |n| {
            // At a limit of four entries: the fourth place must not stay taken by a
            // registration that panicked.
            let reg: Unique<TrapKey, Counted, Pid, Collide> = Unique::builder()
                .partitions(partitions)
                .hasher(Collide)
                .max_entries(4)
                .build();
            let (holder, caller) = (Pid::new(1), Pid::new(2));
            for k in 0..3 {
                reg.register(holder, TrapKey::new(&tracker, k), tracker.counted(k))
                    .unwrap();
            }
            let key = TrapKey::new(&tracker, 10);
            let panicked = with_fuse(n, || {
                let _ = reg.register(caller, key.clone(), tracker.counted(10));
            });
            assert_consistent(&reg);
            if panicked {
                assert_eq!(reg.whereis(&key), None, "fuse {n}");
                assert!(reg.keys(caller).is_empty(), "fuse {n}");
                assert_eq!((reg.count(), reg.monitors()), (3, 1), "fuse {n}");
                let other = TrapKey::new(&tracker, 11);
                let again = reg.try_register(caller, other, tracker.counted(11));
                assert!(again.is_ok(), "fuse {n}: the limit's last place was kept");
            } else {
                assert_eq!(reg.whereis(&key), Some(caller));
            }
            // Every monitor the registry holds is one it counts: taking both pids down
            // leaves zero of everything.
            let removed = reg.process_down(caller) + reg.process_down(holder);
            assert_eq!(removed, 4, "fuse {n}");
            assert_eq!((reg.count(), reg.monitors()), (0, 0), "fuse {n}");
            let stats = reg.stats();
            assert_eq!((stats.entries, stats.monitors), (0, 0), "fuse {n}");
            drop((reg, key));
            tracker.assert_live(0);
            panicked
        });
    }
}

#[test]
fn a_give_away_whose_eq_panics_changes_nothing() {
    let _serial = serial();
    let reg: Unique<Trap, u64, Pid, Collide> =
        Unique::builder().partitions(1).hasher(Collide).build();
    let (from, to) = (Pid::new(1), Pid::new(2));
    for k in 0..3 {
        reg.register(from, Trap(k), k).unwrap();
    }
    fuse_at_each("give_away", 4, |n| {
        let panicked = with_fuse(n, || assert!(reg.give_away(from, &Trap(2), to)));
        assert_consistent(&reg);
        if panicked {
            assert_eq!(reg.whereis(&Trap(2)), Some(from), "fuse {n}");
            assert_eq!(reg.monitors(), 1, "fuse {n}");
            assert!(reg.keys(to).is_empty(), "fuse {n}");
        } else {
            assert_eq!(reg.whereis(&Trap(2)), Some(to));
        }
        panicked
    });
    assert_eq!(reg.process_down(to) + reg.process_down(from), 3);
    assert_eq!((reg.count(), reg.monitors()), (0, 0));
}

#[test]
fn a_pid_whose_eq_panics_changes_nothing() {
    let _serial = serial();
    let reg: Unique<u64, u64, Trap, Collide> =
        Unique::builder().partitions(1).hasher(Collide).build();
    for p in 0..3 {
        reg.register(Trap(p), p, p).unwrap();
    }
    fuse_at_each("pid", 3, |n| {
        let key = 100 + n as u64;
        let panicked = with_fuse(n, || {
            let _ = reg.register(Trap(50), key, 0);
        });
        if panicked {
            assert_eq!(reg.whereis(&key), None);
            assert_eq!((reg.count(), reg.monitors()), (3, 3));
        } else {
            assert_eq!(reg.whereis(&key), Some(Trap(50)));
        }
        panicked
    });
    assert_consistent(&reg);
    for p in [0, 1, 2, 50] {
        assert_eq!(reg.process_down(Trap(p)), 1);
    }
    assert_eq!((reg.count(), reg.monitors()), (0, 0));
}

#[test]
fn a_duplicate_registration_whose_key_eq_panics_leaves_nothing_behind() {
    let _serial = serial();
    let tracker = Tracker::new();
    for_each_dup_config(|partitions, by| {
        fuse_at_each(&format!("{by:?}"), 6, |n| {
            let reg: Duplicate<TrapKey, Counted, Pid, Collide> = Duplicate::builder()
                .partitions(partitions)
                .partition_by(by)
                .hasher(Collide)
                .build();
            let (holder, caller) = (Pid::new(1), Pid::new(2));
            for k in 0..3 {
                reg.register(holder, TrapKey::new(&tracker, k), tracker.counted(k));
            }
            let key = TrapKey::new(&tracker, 10);
            let panicked = with_fuse(n, || {
                reg.register(caller, key.clone(), tracker.counted(10));
            });
            assert_dup_consistent(&reg);
            if panicked {
                assert!(reg.lookup(&key).is_empty(), "{by:?} fuse {n}");
                assert_eq!((reg.count(), reg.monitors()), (3, 1), "{by:?} fuse {n}");
            } else {
                assert_eq!(reg.count_match(&key, |_, _| true), 1);
            }
            let removed = reg.process_down(caller) + reg.process_down(holder);
            assert_eq!(removed, if panicked { 3 } else { 4 }, "{by:?} fuse {n}");
            assert_eq!((reg.count(), reg.monitors()), (0, 0), "{by:?} fuse {n}");
            assert_eq!(
                reg.stats().entry_bytes,
                0,
                "{by:?} fuse {n}: a bag left behind"
            );
            drop((reg, key));
            tracker.assert_live(0);
            panicked
        });
    });
}

#[test]
fn a_duplicate_registration_whose_pid_eq_panics_gives_its_place_back() {
    let _serial = serial();
    let tracker = Tracker::new();
    for_each_dup_config(|partitions, by| {
        let reg: Duplicate<u64, Counted, Trap, Collide> = Duplicate::builder()
            .partitions(partitions)
            .partition_by(by)
            .hasher(Collide)
            .build();
        for p in 0..3 {
            reg.register(Trap(p), 0, tracker.counted(p));
        }
        fuse_at_each(&format!("{by:?}"), 3, |n| {
            // The entry is written into its bag before the pid's monitor is locked.
            let panicked = with_fuse(n, || reg.register(Trap(50), 7, tracker.counted(50)));
            assert_dup_consistent(&reg);
            if panicked {
                assert!(reg.lookup(&7).is_empty(), "{by:?} fuse {n}");
                assert_eq!((reg.count(), reg.monitors()), (3, 3), "{by:?} fuse {n}");
                tracker.assert_live(3);
            } else {
                assert_eq!(reg.count_match(&7, |_, _| true), 1);
            }
            panicked
        });
        for p in [0, 1, 2, 50] {
            assert_eq!(reg.process_down(Trap(p)), 1);
        }
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        // Every bag closed when its last entry left, and left its table with its bytes: a
        // place held by an abandoned entry would have kept key 7's bag open for good.
        let stats = reg.stats();
        assert_eq!((stats.entries, stats.entry_bytes), (0, 0), "{by:?}");
        drop(reg);
        tracker.assert_live(0);
    });
}

#[test]
fn a_duplicate_unregister_whose_eq_panics_removes_a_consistent_part() {
    let _serial = serial();
    let tracker = Tracker::new();
    for_each_dup_config(|partitions, by| {
        fuse_at_each(&format!("{by:?}"), 4, |n| {
            let reg: Duplicate<TrapKey, Counted, Pid, Collide> = Duplicate::builder()
                .partitions(partitions)
                .partition_by(by)
                .hasher(Collide)
                .build();
            let pid = Pid::new(1);
            // The pid's monitor holds marks of several keys, so `unregister` compares the
            // key of each of its entries: a pair list (two entries), then a longer one.
            let keys: Vec<TrapKey> = (0..3).map(|k| TrapKey::new(&tracker, k)).collect();
            for (i, key) in keys.iter().enumerate() {
                for copy in 0..=i as u64 {
                    reg.register(pid, key.clone(), tracker.counted(10 * i as u64 + copy));
                }
            }
            let total = reg.count();
            let panicked = with_fuse(n, || {
                assert_eq!(reg.unregister(pid, &keys[1]), 2);
            });
            // Whatever was removed is gone from the monitor too: the views agree, and the
            // pid's exit removes exactly what is left (a mark naming a removed slot would
            // be removed twice, or read after its slot was reused).
            assert_dup_consistent(&reg);
            let left = reg.count();
            if panicked {
                assert!(
                    (total - 2..=total).contains(&left),
                    "{by:?} fuse {n}: {left}"
                );
            } else {
                assert_eq!(left, total - 2);
            }
            assert_eq!(reg.process_down(pid), left, "{by:?} fuse {n}");
            assert_eq!((reg.count(), reg.monitors()), (0, 0), "{by:?} fuse {n}");
            assert_eq!(reg.stats().entry_bytes, 0, "{by:?} fuse {n}");
            drop((reg, keys));
            tracker.assert_live(0);
            panicked
        });
    });
}

#[test]
fn a_unique_exit_whose_eq_panics_removes_a_consistent_part() {
    let _serial = serial();
    let tracker = Tracker::new();
    for partitions in [1, 8] {
        fuse_at_each("process_down", 4, |n| {
            let reg: Unique<u64, Counted, Trap, Collide> = Unique::builder()
                .partitions(partitions)
                .hasher(Collide)
                .max_entries(6)
                .build();
            let (other, exiting) = (Trap(1), Trap(2));
            reg.register(other, 100, tracker.counted(100)).unwrap();
            for k in 0..4 {
                reg.register(exiting, k, tracker.counted(k)).unwrap();
            }
            let panicked = with_fuse(n, || {
                assert_eq!(reg.process_down(exiting), 4);
            });
            assert_consistent(&reg);
            let left = reg.keys(exiting).len();
            if panicked {
                assert_eq!(reg.count(), 1 + left, "fuse {n}");
                assert_eq!(reg.monitors(), 1 + usize::from(left > 0), "fuse {n}");
                // The places of the removed entries are free again.
                for k in 0..4 - left as u64 {
                    let key = 1000 + k;
                    assert!(reg.try_register(other, key, tracker.counted(key)).is_ok());
                }
                assert_eq!(reg.process_down(exiting), left, "fuse {n}");
            } else {
                assert_eq!(left, 0);
            }
            assert_eq!(reg.keys(exiting), Vec::<u64>::new());
            reg.process_down(other);
            assert_eq!((reg.count(), reg.monitors()), (0, 0), "fuse {n}");
            drop(reg);
            tracker.assert_live(0);
            panicked
        });
    }
}

#[test]
fn a_key_whose_hash_panics_is_refused_to_its_caller() {
    let _serial = serial();
    let reg: Unique<Trap, u64> = Unique::builder().partitions(8).build();
    reg.register(Pid::new(1), Trap(1), 1).unwrap();
    HASH_TRAP.store(7, Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _ = reg.register(Pid::new(2), Trap(7), 7);
    }));
    disarm();
    assert!(outcome.is_err());
    assert_eq!((reg.count(), reg.monitors()), (1, 1));
    assert_consistent(&reg);

    let dup: Duplicate<Trap, u64> = Duplicate::builder().partitions(8).build();
    dup.register(Pid::new(1), Trap(1), 1);
    HASH_TRAP.store(7, Ordering::SeqCst);
    let outcome = catch_unwind(AssertUnwindSafe(|| dup.register(Pid::new(2), Trap(7), 7)));
    disarm();
    assert!(outcome.is_err());
    assert_eq!((dup.count(), dup.monitors()), (1, 1));
    assert_dup_consistent(&dup);
}

// ---- a `Hash` that panics inside a migration: the process aborts ------------------------

const CHILD: &str = "REGENT_HASH_PANIC_CHILD";

/// The child's part: fill a registry, plant a trap in one stored key (or pid), then grow
/// the table with `reserve`, which rehashes every stored key. If the panic came back to
/// the caller instead of aborting, the child goes on writing, and a writer of the frozen
/// group would wait for ever: the parent's timeout then reports the hang.
#[test]
fn migration_child() {
    let Ok(which) = std::env::var(CHILD) else {
        return; // Run as a child only.
    };
    let keys = 2_000;
    let grow = |reserve: &dyn Fn(), register: &dyn Fn(u64)| {
        HASH_TRAP.store(keys / 2, Ordering::SeqCst);
        let outcome = catch_unwind(AssertUnwindSafe(reserve));
        HASH_TRAP.store(u64::MAX, Ordering::SeqCst);
        eprintln!("reserve returned: panicked = {}", outcome.is_err());
        for k in keys..2 * keys {
            register(k);
        }
        eprintln!("the registry was still writable");
    };
    match which.as_str() {
        "unique-key" => {
            let reg: Unique<Trap, u64> = Unique::builder().partitions(1).build();
            for k in 0..keys {
                reg.register(Pid::new(k), Trap(k), k).unwrap();
            }
            grow(&|| reg.reserve(100_000), &|k| {
                reg.register(Pid::new(k), Trap(k), k).unwrap();
            });
        }
        "unique-pid" => {
            let reg: Unique<u64, u64, Trap> = Unique::builder().partitions(1).build();
            for k in 0..keys {
                reg.register(Trap(k), k, k).unwrap();
            }
            grow(&|| reg.reserve(100_000), &|k| {
                reg.register(Trap(k), k, k).unwrap();
            });
        }
        "duplicate-pid" => {
            let reg: Duplicate<u64, u64, Trap> = Duplicate::builder().partitions(1).build();
            // Thousands of pids under one key: the pid index is what a migration rehashes.
            for k in 0..keys {
                reg.register(Trap(k), 0, k);
            }
            grow(&|| reg.reserve(100_000), &|k| reg.register(Trap(k), 0, k));
        }
        other => panic!("unknown child {other}"),
    }
    std::process::exit(0);
}

/// Runs `migration_child` as `which` and returns its stderr; fails unless it aborted.
fn run_child(which: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "migration_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, which)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            let _ = child.wait();
            panic!("{which}: the child hung after a `Hash` panicked in a migration");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{which}: the child finished: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        const SIGABRT: i32 = 6;
        assert_eq!(
            status.signal(),
            Some(SIGABRT),
            "{which}: {status}; {stderr}"
        );
    }
    assert!(
        stderr.contains("regent: a key's or pid's `Hash` panicked while a table migration"),
        "{which}: {stderr}"
    );
    assert!(!stderr.contains("reserve returned"), "{which}: {stderr}");
    stderr
}

#[test]
fn a_key_whose_hash_panics_in_a_migration_aborts() {
    run_child("unique-key");
}

#[test]
fn a_pid_whose_hash_panics_in_a_migration_aborts() {
    run_child("unique-pid");
}

#[test]
fn a_duplicate_pid_whose_hash_panics_in_a_migration_aborts() {
    run_child("duplicate-pid");
}
