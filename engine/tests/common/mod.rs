//! Helpers shared by the integration tests. Each test binary uses a subset of them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regent::{ProcessId, Unique};

/// The partition counts every test runs with: one partition (all keys contend, one table
/// grows through every migration) and several.
pub const PARTITIONS: [usize; 2] = [1, 8];

/// Runs `test` once per partition count in [`PARTITIONS`], naming the configuration if it fails.
pub fn for_each_config(mut test: impl FnMut(usize)) {
    struct Reporter(usize);
    impl Drop for Reporter {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("failed with partitions = {}", self.0);
            }
        }
    }
    for partitions in PARTITIONS {
        let _reporter = Reporter(partitions);
        test(partitions);
    }
}

/// A registry with `partitions` partitions and otherwise default settings.
pub fn unique<K, V>(partitions: usize) -> Unique<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    Unique::builder().partitions(partitions).build()
}

/// Scales an iteration count down in debug builds so every test stays within a few seconds.
pub fn scaled(release: usize) -> usize {
    if cfg!(debug_assertions) {
        release / 4
    } else {
        release
    }
}

/// Counts worker threads down as they finish, by returning or by panicking, so threads that
/// loop while workers run never hang a failing test.
#[derive(Debug)]
pub struct Workers(AtomicUsize);

impl Workers {
    pub fn new(n: usize) -> Self {
        Workers(AtomicUsize::new(n))
    }

    pub fn running(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }

    /// Runs one worker's body and counts it finished however the body ends.
    pub fn run<T>(&self, body: impl FnOnce() -> T) -> T {
        struct Finish<'a>(&'a AtomicUsize);
        impl Drop for Finish<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _finish = Finish(&self.0);
        body()
    }
}

/// A tiny xorshift generator, so threads pick keys without a dependency or shared state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Counts the live [`Counted`] instances it created: constructions and clones minus drops.
///
/// Counting instances rather than drops keeps the tests independent of how many clones the
/// registry hands out, while still catching a leak (too many live) and a double drop (too
/// few, or a drop of an instance never created).
#[derive(Clone, Debug, Default)]
pub struct Tracker(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl Tracker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counted(&self, id: u64) -> Counted {
        self.0.created.fetch_add(1, Ordering::SeqCst);
        Counted {
            id,
            tracker: self.clone(),
        }
    }

    pub fn live(&self) -> usize {
        // Read `dropped` first: a drop that happens in between can only make the result larger.
        let dropped = self.0.dropped.load(Ordering::SeqCst);
        let created = self.0.created.load(Ordering::SeqCst);
        created
            .checked_sub(dropped)
            .unwrap_or_else(|| panic!("{dropped} drops of {created} instances: a double drop"))
    }

    /// Reclaims retired entries until at most `expected` instances are live (bounded at 5 s),
    /// then asserts that exactly `expected` are.
    pub fn assert_live(&self, expected: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.live() > expected && Instant::now() < deadline {
            regent::reclaim();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(self.live(), expected, "live instances");
    }
}

/// A value (or key) that reports its constructions and drops to a [`Tracker`].
/// Equality, ordering and hashing look at `id` only.
#[derive(Debug)]
pub struct Counted {
    pub id: u64,
    tracker: Tracker,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.tracker.counted(self.id)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.tracker.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl PartialEq for Counted {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Counted {}

impl PartialOrd for Counted {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Counted {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl Hash for Counted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

/// Checks that every view of `reg` tells the same story: `select` agrees with `count`,
/// `monitors`, `stats`, `lookup`, `whereis`, `contains_key` and `keys`.
pub fn assert_consistent<K, V, P, S>(reg: &Unique<K, V, P, S>)
where
    K: Hash + Eq + Ord + Clone + Debug + Send + Sync + 'static,
    V: Clone + PartialEq + Debug + Send + Sync + 'static,
    P: ProcessId + Debug,
    S: BuildHasher + Send + Sync + 'static,
{
    let entries = reg.select(|k, p, v| Some((k.clone(), p, v.clone())));
    let pids: HashSet<P> = entries.iter().map(|e| e.1).collect();
    assert_eq!(reg.count(), entries.len(), "count");
    assert_eq!(
        reg.count_select(|_, _, _| true),
        entries.len(),
        "count_select"
    );
    assert_eq!(reg.is_empty(), entries.is_empty(), "is_empty");
    assert_eq!(reg.monitors(), pids.len(), "monitors");
    let stats = reg.stats();
    assert_eq!(
        (stats.entries, stats.monitors),
        (entries.len(), pids.len()),
        "stats"
    );
    for (key, pid, value) in &entries {
        assert_eq!(
            reg.lookup(key),
            Some((*pid, value.clone())),
            "lookup {key:?}"
        );
        assert_eq!(reg.whereis(key), Some(*pid), "whereis {key:?}");
        assert!(reg.contains_key(key), "contains_key {key:?}");
    }
    for pid in pids {
        let expected: Vec<K> = entries
            .iter()
            .filter(|e| e.1 == pid)
            .map(|e| e.0.clone())
            .collect();
        assert_eq!(sorted(reg.keys(pid)), sorted(expected), "keys({pid:?})");
    }
}

/// `v` sorted, for comparisons that ignore order but not repeats.
pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
