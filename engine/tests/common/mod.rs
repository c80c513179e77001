//! Helpers shared by the integration tests. Each test binary uses a subset of them.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use regent::{Duplicate, PartitionBy, ProcessId, Unique};

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

/// A count from the environment variable `name` (for scaling a suite up in CI or down under
/// valgrind), or `default` when it is unset.
///
/// # Panics
///
/// If the variable is set but is not a number.
pub fn env_count(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

/// A seeded splitmix64 generator for reproducible runs: every stream is named by its seed.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A seed from OS randomness (via std's randomly keyed `RandomState`), for runs that print
/// their seed so that a failure can be replayed.
pub fn random_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(0x5EED_u64)
}

/// Fails the test run if it is not dropped within `limit`: a deadlock or a livelock in the
/// code under test ends the process with a message instead of hanging CI. Threads blocked
/// in the registry cannot be cancelled, so the watchdog aborts the whole test binary.
#[derive(Debug)]
pub struct Watchdog {
    cancel: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn new(what: &str, limit: Duration) -> Self {
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let what = what.to_string();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(limit) {
                eprintln!("watchdog: `{what}` did not finish within {limit:?} (blocked?)");
                std::process::abort();
            }
        });
        Watchdog {
            cancel: Some(cancel),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The duplicate-registry configurations every test runs with: partitions 1 and 8, each
/// partitioned by key and by pid.
pub fn for_each_dup_config(mut test: impl FnMut(usize, PartitionBy)) {
    for partitions in PARTITIONS {
        for by in [PartitionBy::Key, PartitionBy::Pid] {
            struct Reporter(usize, PartitionBy);
            impl Drop for Reporter {
                fn drop(&mut self) {
                    if std::thread::panicking() {
                        eprintln!(
                            "failed with partitions = {}, partition_by = {:?}",
                            self.0, self.1
                        );
                    }
                }
            }
            let _reporter = Reporter(partitions, by);
            test(partitions, by);
        }
    }
}

/// A duplicate registry with `partitions` partitions, partitioned `by`.
pub fn duplicate<K, V>(partitions: usize, by: PartitionBy) -> Duplicate<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    Duplicate::builder()
        .partitions(partitions)
        .partition_by(by)
        .build()
}

/// Checks that every view of a duplicate registry tells the same story: `select` agrees
/// with `count`, `count_select`, `monitors`, `stats`, `lookup`, `dispatch`, `count_match`,
/// `keys` and `values`.
pub fn assert_dup_consistent<K, V, P, S>(reg: &Duplicate<K, V, P, S>)
where
    K: Hash + Eq + Ord + Clone + Debug + Send + Sync + 'static,
    V: Clone + Ord + Debug + Send + Sync + 'static,
    P: ProcessId + Ord + Debug,
    S: BuildHasher + Send + Sync + 'static,
{
    let entries = sorted(reg.select(|k, p, v| Some((k.clone(), p, v.clone()))));
    let pids: HashSet<P> = entries.iter().map(|e| e.1).collect();
    let keys: HashSet<K> = entries.iter().map(|e| e.0.clone()).collect();
    assert_eq!(reg.count(), entries.len(), "count");
    assert_eq!(
        reg.count_select(|_, _, _| true),
        entries.len(),
        "count_select"
    );
    assert_eq!(reg.monitors(), pids.len(), "monitors");
    let stats = reg.stats();
    assert_eq!(
        (stats.entries, stats.monitors),
        (entries.len(), pids.len()),
        "stats"
    );
    for key in &keys {
        let expected: Vec<(P, V)> = entries
            .iter()
            .filter(|e| &e.0 == key)
            .map(|e| (e.1, e.2.clone()))
            .collect();
        assert_eq!(sorted(reg.lookup(key)), expected, "lookup {key:?}");
        assert_eq!(
            reg.dispatch(key, |_, _| {}),
            expected.len(),
            "dispatch {key:?}"
        );
        assert_eq!(
            reg.count_match(key, |_, _| true),
            expected.len(),
            "count_match {key:?}"
        );
        for &pid in &pids {
            let values: Vec<V> = expected
                .iter()
                .filter(|e| e.0 == pid)
                .map(|e| e.1.clone())
                .collect();
            assert_eq!(
                sorted(reg.values(key, pid)),
                values,
                "values({key:?}, {pid:?})"
            );
        }
    }
    for &pid in &pids {
        let expected: Vec<K> = entries
            .iter()
            .filter(|e| e.1 == pid)
            .map(|e| e.0.clone())
            .collect();
        assert_eq!(sorted(reg.keys(pid)), expected, "keys({pid:?})");
    }
}

/// The environment variable that tells a test binary it runs as a child of [`child_test`].
pub const CHILD_TEST: &str = "REGENT_CHILD_TEST";

/// Whether this process is the child that [`child_test`] started to run `name`.
pub fn in_child(name: &str) -> bool {
    std::env::var(CHILD_TEST).is_ok_and(|v| v == name)
}

/// Runs the (ignored) test `name` of this test binary in a child process, optionally limited
/// to `address_space_kib` of virtual memory, and waits at most `limit` for it. `None`: it
/// did not finish and was killed.
///
/// For tests that may hang or exhaust memory: in a child, a thread blocked forever does not
/// keep this process's epoch pinned (which would stop reclamation for every other test) and
/// a runaway allocation aborts the child, not the machine.
pub fn child_test(
    name: &str,
    limit: Duration,
    address_space_kib: Option<u64>,
) -> Option<std::process::ExitStatus> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let ulimit = address_space_kib.map_or(String::new(), |kib| format!("ulimit -v {kib} && "));
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{ulimit}exec \"$0\" --exact --nocapture --include-ignored \"$1\""
        ))
        .arg(exe)
        .arg(name)
        .env(CHILD_TEST, name)
        .spawn()
        .expect("sh starts the child");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("the child's status") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// For the test files whose tests share process-wide state (counters of every registry,
/// planted panics): runs them one at a time, and keeps the panic hook from printing the
/// panics they plant, raised with `panic_any(quiet)` (hundreds of lines). Any other panic
/// prints as usual.
pub fn serial_quiet(quiet: &'static str) -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&quiet) {
                previous(info);
            }
        }));
    });
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}
