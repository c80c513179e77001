//! Scaffolding shared by regent's loom models (`tests/`): the model runner, the registry
//! every model builds, and a value type that audits its own lifecycle.
//!
//! Everything here exists only under `--cfg loom`; README.md says how to run the models.
#![cfg(loom)]

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use regent::{Duplicate, PartitionBy, Pid, Unique};

/// The registry type of every model: `u64` keys, so keys are cheap to name and to sort.
pub type Registry<V> = Unique<u64, V, Pid, FixedHasher>;

/// Loom replays executions by rerunning the model, so everything but the schedule must be
/// deterministic; the default hasher is seeded at random per registry, this one is not.
pub type FixedHasher = BuildHasherDefault<DefaultHasher>;

/// Preemption bound used when `LOOM_MAX_PREEMPTIONS` is unset: an unbounded search of a
/// lock-free table with epoch reclamation does not finish.
const DEFAULT_PREEMPTIONS: usize = 2;

/// Branch bound used when `LOOM_MAX_BRANCHES` is unset: loom's default (1,000) is too few
/// for a model that retires whole arrays, because tearing down crossbeam-epoch's
/// per-execution collector pops every queued bag with an atomic operation of its own.
const DEFAULT_BRANCHES: usize = 20_000;

/// Checks `f` under every interleaving loom explores.
///
/// Bounds come from the environment as with `loom::model` (`LOOM_MAX_PREEMPTIONS`,
/// `LOOM_MAX_BRANCHES`, `LOOM_CHECKPOINT_FILE`, ...), except that an unset
/// `LOOM_MAX_PREEMPTIONS` means [`DEFAULT_PREEMPTIONS`] rather than no bound, and an unset
/// `LOOM_MAX_BRANCHES` means [`DEFAULT_BRANCHES`].
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(DEFAULT_PREEMPTIONS));
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        builder.max_branches = DEFAULT_BRANCHES;
    }
    builder.check(f);
}

/// A registry as every model builds it: one partition, so every thread works on the same
/// table, which under `cfg(loom)` starts with two slots and migrates one group at a time.
#[must_use]
pub fn registry<V: Send + Sync + 'static>() -> loom::sync::Arc<Registry<V>> {
    registry_with_capacity(0)
}

/// Like [`registry`], but sized for `capacity` entries so that no migration runs: for models
/// about another protocol, where a migration's copying would only multiply the interleavings.
#[must_use]
pub fn registry_with_capacity<V: Send + Sync + 'static>(
    capacity: usize,
) -> loom::sync::Arc<Registry<V>> {
    let registry = Unique::builder()
        .partitions(1)
        .capacity(capacity)
        .hasher(FixedHasher::default())
        .build();
    loom::sync::Arc::new(registry)
}

/// A fresh [`registry`] with keys 10 and 20 registered for `pid` (each valued at its pid's
/// number): under `cfg(loom)` a table starts with two slots, so the name table is left
/// mid-migration, the next array installed and nothing copied yet (models 5 and 16).
/// Also returns the capacity the registry had before the setup.
///
/// # Panics
///
/// If the table is not mid-migration after the setup (a change to loom's table sizes).
#[must_use]
pub fn registry_mid_migration(pid: Pid) -> (loom::sync::Arc<Registry<u64>>, usize) {
    let reg = registry::<u64>();
    let fresh_capacity = reg.stats().capacity;
    reg.register(pid, 10, pid.get()).unwrap();
    reg.register(pid, 20, pid.get()).unwrap();
    assert_eq!(
        reg.stats().migrations,
        1,
        "setup must leave the name table mid-migration"
    );
    (reg, fresh_capacity)
}

/// Asserts that `reg` holds exactly `expected`, each key valued at its pid's number, by
/// every view: `count`, a full `select` (each key once), `lookup`, each pid's `keys` and
/// `monitors`.
///
/// # Panics
///
/// On the first view that disagrees.
pub fn assert_holds_exactly(reg: &Registry<u64>, expected: &[(u64, Pid)]) {
    assert_eq!(reg.count(), expected.len(), "count");
    let mut all = reg.select(|&key, pid, &value| Some((key, pid, value)));
    all.sort_unstable();
    let mut listed: Vec<_> = expected
        .iter()
        .map(|&(key, pid)| (key, pid, pid.get()))
        .collect();
    listed.sort_unstable();
    assert_eq!(all, listed, "select must see every key exactly once");
    for &(key, pid) in expected {
        assert_eq!(reg.lookup(&key), Some((pid, pid.get())), "lookup({key})");
    }
    // Ordered: a model must run the same operations in every execution, and a `HashSet`
    // would visit the pids in a different order each time (loom: "Is the model fully
    // deterministic?").
    let pids: BTreeSet<Pid> = expected.iter().map(|&(_, pid)| pid).collect();
    for &pid in &pids {
        let mut held = reg.keys(pid);
        held.sort_unstable();
        let mut keys: Vec<u64> = expected
            .iter()
            .filter(|&&(_, p)| p == pid)
            .map(|&(key, _)| key)
            .collect();
        keys.sort_unstable();
        assert_eq!(held, keys, "keys({pid})");
    }
    assert_eq!(reg.monitors(), pids.len(), "monitors");
}

/// A duplicate registry as the models use it: one partition, partitioned `by`.
pub type Bags<V> = Duplicate<u64, V, Pid, FixedHasher>;

/// An empty duplicate registry with one partition and a fixed hasher.
#[must_use]
pub fn bags<V: Send + Sync + 'static>(by: PartitionBy) -> loom::sync::Arc<Bags<V>> {
    let registry = Duplicate::builder()
        .partitions(1)
        .partition_by(by)
        .hasher(FixedHasher::default())
        .build();
    loom::sync::Arc::new(registry)
}

/// The first pid after `pid` whose [`FixedHasher`] hash shares `pid`'s tag bits and low
/// bits: in a one-partition table of up to 512 groups the two have the same home group and
/// tag, so a probe for either meets the other's record and compares it. Models use it to
/// make the monitor index read another pid's record (a duplicate registry reads the pid
/// out of the record's slot).
#[must_use]
pub fn pid_sharing_probes_with(pid: Pid) -> Pid {
    // Bits 3..12 pick the group in tables of up to 512 groups; bits 40..48 are the tag
    // (`engine/src/raw/array.rs`).
    const PROBE_BITS: u64 = 0xFF << 40 | 0xFF8;
    let hasher = FixedHasher::default();
    let target = hasher.hash_one(pid) & PROBE_BITS;
    (pid.get() + 1..)
        .map(Pid::new)
        .find(|&p| hasher.hash_one(p) & PROBE_BITS == target)
        .expect("some pid shares the probe bits")
}

/// The body of the models in which a subscriber leaves `TOPIC` (3) and, after two
/// reclamations, another joins, reusing the leaver's slot if the epoch let it go, while the
/// model's thread dispatches to the topic and clones each value it visits. `stable` (value
/// id 1) and `leaver` (id 2) register first, in that order, from the model's thread; the
/// spawned thread leaves and joins `joiner` (id 3).
///
/// Checks: the dispatch sees `stable` exactly once, sees no entry twice, never visits a
/// dropped value (a clone of a dropped `Tracked` fails), and sees each pid with its own
/// value (a reused slot never shows a torn pid/value pair); afterwards the topic holds ids
/// 1 and 3. `model_tracked` checks that every value is dropped exactly once.
pub fn dispatch_races_leave_reclaim_and_rejoin(
    ledger: &Arc<Ledger>,
    stable: Pid,
    leaver: Pid,
    joiner: Pid,
) {
    const TOPIC: u64 = 3;
    let reg = bags(PartitionBy::Key);
    reg.register(stable, TOPIC, (1, ledger.value(stable)));
    reg.register(leaver, TOPIC, (2, ledger.value(leaver)));
    let writer = {
        let (reg, ledger) = (reg.clone(), ledger.clone());
        loom::thread::spawn(move || {
            assert_eq!(reg.unregister(leaver, &TOPIC), 1);
            // Two epoch advances free the leaver's slot for reuse.
            regent::reclaim();
            regent::reclaim();
            reg.register(joiner, TOPIC, (3, ledger.value(joiner)));
        })
    };
    let mut seen = Vec::new();
    reg.dispatch(&TOPIC, |pid, (id, value)| {
        assert_eq!(pid, value.owner, "a pid with another entry's value");
        let _alive = value.clone();
        seen.push(*id);
    });
    seen.sort_unstable();
    let all = seen.len();
    seen.dedup();
    assert_eq!(all, seen.len(), "an entry seen twice: {seen:?}");
    assert!(
        seen.contains(&1),
        "the stable subscriber was missed: {seen:?}"
    );
    writer.join().unwrap();
    let mut after: Vec<u64> = reg.lookup(&TOPIC).into_iter().map(|(_, v)| v.0).collect();
    after.sort_unstable();
    assert_eq!(after, vec![1, 3]);
}

/// Like [`model`], for models whose values are [`Tracked`]: `f` gets the ledger that issues
/// them, and every value an execution issued must have been dropped once that execution is
/// over.
///
/// The check runs between executions, not at the end of `f`: a removed entry is freed only
/// when crossbeam-epoch's epoch has advanced past every pinned participant, and a spawned
/// thread's participant is torn down by its thread-local destructor, which loom runs after
/// `join` has returned. Once an execution is over, every participant is gone and loom has
/// dropped the per-execution collector, running whatever garbage was still queued: a value
/// alive then was never retired (a leak).
pub fn model_tracked(f: impl Fn(&Arc<Ledger>) + Sync + Send + 'static) {
    let ledger = Ledger::new();
    let shared = Arc::clone(&ledger);
    model(move || {
        assert_eq!(shared.live(), 0, "the previous execution leaked values");
        f(&shared);
    });
    assert_eq!(ledger.live(), 0, "the last execution leaked values");
}

/// Issues [`Tracked`] values and knows which of them are alive.
///
/// Plain `std` synchronisation on purpose: the audit must not add interleavings for loom to
/// explore, and loom switches threads only at its own operations, so this lock is never
/// contended.
#[derive(Debug, Default)]
pub struct Ledger {
    next_serial: AtomicU64,
    live: Mutex<HashSet<u64>>,
}

impl Ledger {
    /// An empty ledger, shared with the values it issues.
    #[must_use]
    pub fn new() -> Arc<Ledger> {
        Arc::default()
    }

    /// A fresh value owned by `owner`.
    #[must_use]
    pub fn value(self: &Arc<Self>, owner: Pid) -> Tracked {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        self.live_set().insert(serial);
        Tracked {
            owner,
            serial,
            ledger: Arc::clone(self),
        }
    }

    /// How many issued values (clones included) are still alive.
    #[must_use]
    pub fn live(&self) -> usize {
        self.live_set().len()
    }

    fn is_live(&self, serial: u64) -> bool {
        self.live_set().contains(&serial)
    }

    fn live_set(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        // A failed assertion elsewhere may have poisoned the lock; the set is still sound.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A registry value that reports misuse of its lifecycle: cloning it after it was dropped
/// (a reader reached a reclaimed entry) or dropping it twice panics, and one never dropped
/// shows up in [`Ledger::live`].
#[derive(Debug)]
pub struct Tracked {
    /// The pid the value was registered for, so readers can check pid and value agree.
    pub owner: Pid,
    serial: u64,
    ledger: Arc<Ledger>,
}

impl Clone for Tracked {
    fn clone(&self) -> Self {
        assert!(
            self.ledger.is_live(self.serial),
            "value #{} cloned after it was dropped",
            self.serial
        );
        self.ledger.value(self.owner)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let was_live = self.ledger.live_set().remove(&self.serial);
        if !was_live && !std::thread::panicking() {
            panic!("value #{} dropped twice", self.serial);
        }
    }
}
