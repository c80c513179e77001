//! `limits`: how fast this machine can touch random memory, the ceiling under every lookup.
//!
//! An array of cache lines, sized like a registry's table, holds one random cycle through
//! all of its lines (Sattolo's shuffle). Following it from one line is *dependent* access:
//! each load needs the one before, so each costs a full miss (pointer chasing). Following
//! [`CHAINS`] cursors at once, interleaved, is *independent* access: the core keeps their
//! misses in flight together, which is as fast as lookups can get when their keys are known
//! up front (a batch lookup). Lookup throughput is quoted as a fraction of both.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Barrier;
use std::thread;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::count::Count;
use crate::report::{self, figure, Provenance, Table};
use crate::Error;

/// Bytes of array per key when sized by keys: one cache line per registration, about what
/// regent's table holds per entry (62 B at 10M, pid index included) and less than any peer.
pub const BYTES_PER_KEY: usize = 64;

/// Cursors in flight in the independent-access measurement.
pub const CHAINS: usize = 16;

/// Dependent loads timed per thread; [`CHAINS`] times as many independent ones.
const STEPS: usize = 1 << 21;

/// Arguments of `regent-bench limits`.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitsArgs {
    /// Size the array like a table of this many keys, 64 bytes each (suffixes k, M, G)
    #[arg(long, default_value = "10M", conflicts_with = "bytes")]
    pub keys: Count,
    /// Size the array in bytes instead (suffixes k, M, G)
    #[arg(long)]
    pub bytes: Option<Count>,
    /// Threads chasing at once, each pinned to a core; figures are per thread
    #[arg(long, default_value = "1")]
    pub threads: NonZeroUsize,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
}

/// Random-access time over one array, per access and per thread.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limits {
    /// Size of the array.
    pub bytes: usize,
    /// Threads that chased at once.
    pub threads: usize,
    /// Cursors per thread in the independent measurement.
    pub chains: usize,
    /// Nanoseconds per load when each load needs the previous one.
    pub dependent_ns: f64,
    /// Nanoseconds per load with [`CHAINS`] independent loads in flight.
    pub independent_ns: f64,
}

impl Limits {
    /// Millions of dependent accesses a second over all threads: the rate of lookups that
    /// each cost one miss and overlap nothing.
    #[must_use]
    pub fn dependent_mops(&self) -> f64 {
        self.threads as f64 * 1e3 / self.dependent_ns
    }

    /// Millions of independent accesses a second over all threads: the most lookups that
    /// each cost one miss can reach.
    #[must_use]
    pub fn independent_mops(&self) -> f64 {
        self.threads as f64 * 1e3 / self.independent_ns
    }
}

/// One cache line of the array: the index of the next line of the cycle, and padding.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line {
    next: usize,
    _pad: [usize; 7],
}

/// Measures dependent and independent random access over an array of `bytes` (at least
/// a few lines per chain), on `threads` threads pinned to distinct cores at once.
///
/// # Panics
///
/// If `threads` is 0 or a measuring thread panics.
#[must_use]
pub fn measure(bytes: usize, threads: usize) -> Limits {
    assert!(threads > 0, "need at least one thread");
    let n = (bytes / size_of::<Line>()).max(4 * CHAINS * threads);
    let lines = cycle(n);
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let start_line = Barrier::new(threads);
    let per_thread: Vec<(f64, f64)> = thread::scope(|s| {
        let spawned: Vec<_> = (0..threads)
            .map(|t| {
                let (lines, cores, start_line) = (&lines, &cores, &start_line);
                s.spawn(move || {
                    if let Some(&core) = cores.get(t % cores.len().max(1)) {
                        core_affinity::set_for_current(core);
                    }
                    start_line.wait();
                    // Each thread starts its cursors at its own spread of lines.
                    let first = t * n / threads;
                    let dependent = dependent_ns(lines, first);
                    let starts: [usize; CHAINS] =
                        std::array::from_fn(|c| (first + c * n / (CHAINS * threads)) % n);
                    (dependent, independent_ns(lines, starts))
                })
            })
            .collect();
        spawned
            .into_iter()
            .map(|h| h.join().expect("limits thread panicked"))
            .collect()
    });
    let mean = |f: fn(&(f64, f64)) -> f64| per_thread.iter().map(f).sum::<f64>() / threads as f64;
    Limits {
        bytes: n * size_of::<Line>(),
        threads,
        chains: CHAINS,
        dependent_ns: mean(|p| p.0),
        independent_ns: mean(|p| p.1),
    }
}

/// `n` lines linked into one random cycle through all of them (Sattolo's algorithm).
fn cycle(n: usize) -> Vec<Line> {
    let mut lines: Vec<Line> = (0..n)
        .map(|i| Line {
            next: i,
            _pad: [0; 7],
        })
        .collect();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in (1..n).rev() {
        // splitmix64, then a multiply-shift into 0..i: j < i is what makes one cycle.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = state;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
        let j = ((u128::from(x) * i as u128) >> 64) as usize;
        let (a, b) = (lines[i].next, lines[j].next);
        (lines[i].next, lines[j].next) = (b, a);
    }
    lines
}

fn dependent_ns(lines: &[Line], first: usize) -> f64 {
    let chase = |steps: usize| {
        let mut at = first;
        for _ in 0..steps {
            at = lines[at].next;
        }
        black_box(at)
    };
    chase(STEPS / 8);
    let start = Instant::now();
    chase(STEPS);
    start.elapsed().as_secs_f64() * 1e9 / STEPS as f64
}

fn independent_ns(lines: &[Line], starts: [usize; CHAINS]) -> f64 {
    let chase = |steps: usize| {
        let mut at = starts;
        for _ in 0..steps {
            for cursor in &mut at {
                *cursor = lines[*cursor].next;
            }
        }
        black_box(at)
    };
    chase(STEPS / 8);
    let start = Instant::now();
    chase(STEPS);
    start.elapsed().as_secs_f64() * 1e9 / (STEPS * CHAINS) as f64
}

#[derive(Debug, Serialize)]
struct LimitsResult {
    run: Run,
    #[serde(flatten)]
    limits: Limits,
    dependent_mops: f64,
    independent_mops: f64,
}

#[derive(Debug, Serialize)]
struct Run {
    /// The key count the array was sized for, if it was sized by keys.
    keys: Option<usize>,
    #[serde(flatten)]
    provenance: Provenance,
}

/// Runs `limits`, prints both figures and writes `limits-<stamp>.json` to `args.out`.
/// Returns the JSON's path.
///
/// # Errors
///
/// If the JSON could not be written.
pub fn run(args: &LimitsArgs) -> Result<PathBuf, Error> {
    let threads = args.threads.get();
    let (keys, bytes, sized) = match args.bytes {
        Some(bytes) => (None, bytes.0, format!("--bytes {bytes}")),
        None => (
            Some(args.keys.0),
            args.keys.0.saturating_mul(BYTES_PER_KEY),
            format!("--keys {}", args.keys),
        ),
    };
    let provenance = Provenance::detect(&format!("limits {sized} --threads {threads}"));
    let stamp = report::utc_stamp(SystemTime::now());
    let limits = measure(bytes, threads);
    let result = LimitsResult {
        run: Run { keys, provenance },
        limits,
        dependent_mops: limits.dependent_mops(),
        independent_mops: limits.independent_mops(),
    };
    print!("{}\n{}", result.run.provenance.describe(), table(&limits));
    let path = report::write_json(&args.out, "limits", &stamp, &result)?;
    println!("wrote {}", path.display());
    Ok(path)
}

/// One row per access pattern: ns per access per thread, and the rate over all threads.
#[must_use]
pub fn table(limits: &Limits) -> Table {
    let mut table = Table::new(&[
        format!(
            "random access, {} MiB, {} thread(s)",
            figure(limits.bytes as f64 / f64::from(1 << 20)),
            limits.threads
        ),
        "ns/access".to_owned(),
        "Mops/s".to_owned(),
    ]);
    table.row(vec![
        "dependent (pointer chasing)".to_owned(),
        figure(limits.dependent_ns),
        figure(limits.dependent_mops()),
    ]);
    table.row(vec![
        format!("independent ({} chains in flight)", limits.chains),
        figure(limits.independent_ns),
        figure(limits.independent_mops()),
    ]);
    table
}

#[cfg(test)]
mod tests {
    use super::cycle;

    #[test]
    fn sattolo_links_one_cycle_through_every_line() {
        for n in [1, 2, 3, 64, 1000] {
            let lines = cycle(n);
            let (mut at, mut steps) = (0, 0);
            loop {
                at = lines[at].next;
                steps += 1;
                if at == 0 {
                    break;
                }
            }
            assert_eq!(steps, n, "cycle of {n} lines");
        }
    }
}
