//! Runs one operation per index over pinned threads and times it.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

/// One in this many operations is timed on its own. Reading the clock costs ~30 ns here,
/// so timing every operation would distort throughput; one in 128 adds well under 1 ns a
/// operation, the same for every peer.
const SAMPLE_EVERY: usize = 128;

/// Operations between progress-bar updates, so that the bar's shared counter stays off the
/// hot path.
const PROGRESS_EVERY: usize = 4096;

/// The outcome of one timed run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Operations run.
    pub ops: usize,
    /// Operations that returned what the workload expects.
    pub expected: usize,
    /// Wall time from the first thread's start to the last one's end.
    pub elapsed: Duration,
    /// Latency of the sampled operations.
    pub latency: Latency,
}

impl Timing {
    /// Millions of operations a second.
    #[must_use]
    pub fn mops(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Percentiles of single-operation latency, clock reads included (they dominate the low
/// percentiles; the tail shows stalls such as table growth).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

impl Latency {
    /// The percentiles of `histogram`.
    #[must_use]
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            p50_ns: histogram.value_at_quantile(0.5),
            p99_ns: histogram.value_at_quantile(0.99),
            p999_ns: histogram.value_at_quantile(0.999),
            max_ns: histogram.max(),
        }
    }
}

/// Calls `op(i)` once for every `i` in `0..n`, visiting `i = j * stride mod n` for
/// `j = 0, 1, ..`, with the `j`s split into contiguous ranges over `threads` threads pinned
/// to distinct cores (round-robin when there are more threads than cores).
///
/// `stride` must be coprime with `n` so that the visit is a permutation; stride 1 visits in
/// order. `op` returns whether the operation did what the workload expects.
///
/// # Panics
///
/// If `threads` or `n` is 0, or a thread panics.
pub fn run(
    threads: usize,
    n: usize,
    stride: usize,
    progress: &ProgressBar,
    op: impl Fn(usize) -> bool + Sync,
) -> Timing {
    assert!(
        threads > 0 && n > 0,
        "need at least one thread and one operation"
    );
    let stride = stride % n;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let start_line = Barrier::new(threads);
    progress.set_length(n as u64);

    let workers: Vec<Worker> = thread::scope(|s| {
        let spawned: Vec<_> = (0..threads)
            .map(|t| {
                let (cores, start_line, op) = (&cores, &start_line, &op);
                let std::ops::Range {
                    start: first,
                    end: last,
                } = share(n, threads, t);
                s.spawn(move || {
                    pin(cores, t);
                    let mut histogram = new_histogram();
                    // One division per thread; the loop steps with an add and a compare,
                    // since a division per operation would cost more than some lookups.
                    let mut i = usize::try_from(first as u128 * stride as u128 % n as u128)
                        .expect("below n");
                    let mut expected = 0;
                    start_line.wait();
                    let start = Instant::now();
                    for j in first..last {
                        if j % SAMPLE_EVERY == 0 {
                            let start = Instant::now();
                            expected += usize::from(op(i));
                            let nanos = start.elapsed().as_nanos();
                            histogram.saturating_record(u64::try_from(nanos).unwrap_or(u64::MAX));
                        } else {
                            expected += usize::from(op(i));
                        }
                        i += stride;
                        if i >= n {
                            i -= n;
                        }
                        if (j + 1) % PROGRESS_EVERY == 0 {
                            progress.inc(PROGRESS_EVERY as u64);
                        }
                    }
                    Worker {
                        expected,
                        histogram,
                        start,
                        end: Instant::now(),
                    }
                })
            })
            .collect();
        spawned
            .into_iter()
            .map(|w| w.join().expect("benchmark thread panicked"))
            .collect()
    });
    progress.finish_and_clear();

    // Timed by the workers' own clocks: with every core busy, a coordinating thread could
    // wake from the barrier long after they started.
    let start = workers
        .iter()
        .map(|w| w.start)
        .min()
        .expect("one thread at least");
    let end = workers
        .iter()
        .map(|w| w.end)
        .max()
        .expect("one thread at least");
    let mut histogram = new_histogram();
    for w in &workers {
        histogram
            .add(&w.histogram)
            .expect("histograms share bounds");
    }
    Timing {
        ops: n,
        expected: workers.iter().map(|w| w.expected).sum(),
        elapsed: end - start,
        latency: Latency::of(&histogram),
    }
}

/// The contiguous share of `0..n` that thread `t` of `threads` visits.
#[must_use]
pub fn share(n: usize, threads: usize, t: usize) -> std::ops::Range<usize> {
    t * n / threads..(t + 1) * n / threads
}

/// Pins the calling thread, the `t`-th of its run, to a core of `cores` (round-robin when
/// there are more threads than cores; not at all when the cores are unknown).
pub fn pin(cores: &[core_affinity::CoreId], t: usize) {
    if let Some(&core) = cores.get(t % cores.len().max(1)) {
        core_affinity::set_for_current(core);
    }
}

/// What one thread did.
struct Worker {
    expected: usize,
    histogram: Histogram<u64>,
    start: Instant,
    end: Instant,
}

/// Bounds fixed up front so that recording never allocates on the hot path.
#[must_use]
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}
