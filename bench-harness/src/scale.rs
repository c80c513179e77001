//! `scale`: regent alone at runtime scale. Every process registers its session id, every
//! name is looked up, every process exits. Reports throughput, sampled latency, bytes per
//! registration, and that teardown leaves no entry, monitor or byte behind.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::thread;
use std::time::SystemTime;

use serde::Serialize;

use crate::count::Count;
use crate::peers::{reclaim_until, RegentPeer, Registry};
use crate::report::{self, figure, Provenance, Table};
use crate::runner::{Latency, Timing};
use crate::workload::{Keys, Phase};
use crate::{alloc, Error};

/// Sized so that the whole default run takes well under a minute on two cores.
const DEFAULT_PROCESSES: usize = 2_000_000;
const QUICK_PROCESSES: usize = 50_000;

/// Arguments of `regent-bench scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Processes, one name each (suffixes k, M, G) [default: 2M]
    #[arg(long, conflicts_with = "quick")]
    pub processes: Option<Count>,
    /// Worker threads, each pinned to a core [default: available cores]
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Registry partitions [default: regent's own]
    #[arg(long)]
    pub partitions: Option<NonZeroUsize>,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
    /// A tiny run (50k processes) for CI
    #[arg(long)]
    pub quick: bool,
}

#[derive(Debug, Serialize)]
struct ScaleResult {
    run: Run,
    phases: Vec<PhaseFigures>,
    memory: Memory,
    #[serde(rename = "final")]
    left: Left,
}

#[derive(Debug, Serialize)]
struct Run {
    processes: usize,
    threads: usize,
    partitions: usize,
    #[serde(flatten)]
    provenance: Provenance,
}

#[derive(Debug, Serialize)]
struct PhaseFigures {
    name: &'static str,
    ops: usize,
    seconds: f64,
    mops: f64,
    #[serde(flatten)]
    latency: Latency,
}

impl PhaseFigures {
    fn new(phase: Phase, timing: &Timing) -> Self {
        Self {
            name: phase.name(),
            ops: timing.ops,
            seconds: timing.elapsed.as_secs_f64(),
            mops: timing.mops(),
            latency: timing.latency,
        }
    }
}

/// Live bytes as the counting allocator sees them.
#[derive(Debug, Serialize)]
struct Memory {
    baseline_bytes: usize,
    /// High-water mark over the run, baseline included.
    peak_bytes: usize,
    /// Live bytes after every process registered, less the baseline, per process.
    bytes_per_process: f64,
    after_teardown_bytes: usize,
    /// Negative if teardown freed more than the run allocated.
    leaked_bytes: i64,
}

/// What the registry still held after every process was reported down.
#[derive(Debug, Serialize)]
struct Left {
    unique_count: usize,
    monitors: usize,
}

/// Runs `scale`, prints its tables and writes `scale-<stamp>.json` to `args.out`. Returns
/// the JSON's path.
///
/// # Errors
///
/// If an operation returned a wrong result, the registry was not empty at the end (after
/// the JSON is written), or the JSON could not be written.
pub fn run(args: &ScaleArgs) -> Result<PathBuf, Error> {
    let default = if args.quick {
        QUICK_PROCESSES
    } else {
        DEFAULT_PROCESSES
    };
    let processes = args.processes.map_or(default, |c| c.0);
    let threads = args
        .threads
        .or_else(|| thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let mut command = format!("scale --processes {} --threads {threads}", Count(processes));
    if let Some(partitions) = args.partitions {
        command += &format!(" --partitions {partitions}");
    }
    let provenance = Provenance::detect(&command);
    let stamp = report::utc_stamp(SystemTime::now());
    let keys = Keys::new(processes);

    // Registers this thread with the epoch collector first: that allocates once, for good.
    regent::reclaim();
    alloc::reset_peak();
    let baseline = alloc::live();
    let registry = RegentPeer::new(args.partitions.map(NonZeroUsize::get));
    let pass = |phase: Phase| {
        let label = format!("regent {}", phase.name());
        phase.run(&registry, keys, threads, &report::progress(&label))
    };
    let register = pass(Phase::Register)?;
    // Old tables retired by growth are garbage, not registrations.
    registry.quiesce();
    let registered = alloc::live();
    let lookup = pass(Phase::LookupHit)?;
    let down = pass(Phase::ProcessDown)?;
    let left = Left {
        unique_count: registry.count(),
        monitors: registry.inner().monitors(),
    };
    let partitions = registry.inner().partitions();
    drop(registry);
    let after_teardown = settle(baseline);

    let result = ScaleResult {
        run: Run {
            processes,
            threads,
            partitions,
            provenance,
        },
        phases: vec![
            PhaseFigures::new(Phase::Register, &register),
            PhaseFigures::new(Phase::LookupHit, &lookup),
            PhaseFigures::new(Phase::ProcessDown, &down),
        ],
        memory: Memory {
            baseline_bytes: baseline,
            peak_bytes: alloc::peak(),
            bytes_per_process: registered.saturating_sub(baseline) as f64 / processes as f64,
            after_teardown_bytes: after_teardown,
            leaked_bytes: after_teardown as i64 - baseline as i64,
        },
        left,
    };
    print!("{}", render(&result));
    let path = report::write_json(&args.out, "scale", &stamp, &result)?;
    println!("wrote {}", path.display());
    if result.left.unique_count != 0 || result.left.monitors != 0 {
        return Err(format!(
            "every process is down but regent still holds {} entries and {} monitors",
            result.left.unique_count, result.left.monitors
        )
        .into());
    }
    Ok(path)
}

/// Drives reclamation after the registry is gone and returns the live bytes then. Past
/// the registry's retired entries this frees crossbeam-epoch's records of exited worker
/// threads, which it reclaims lazily and `retired_bytes` does not count. Stops at the
/// baseline or once live bytes stop falling: crossbeam keeps a garbage bag (~2 KiB) of its
/// own in flight for good, while a leak of entries grows with the processes.
fn settle(baseline: usize) -> usize {
    let (mut lowest, mut flat) = (usize::MAX, 0);
    reclaim_until(|| {
        let live = alloc::live();
        if live < lowest {
            (lowest, flat) = (live, 0);
        } else {
            flat += 1;
        }
        live <= baseline || flat == 200
    });
    alloc::live()
}

fn render(result: &ScaleResult) -> String {
    let Run {
        processes,
        threads,
        partitions,
        provenance,
    } = &result.run;
    let mut phases = Table::new(&[
        "phase", "ops", "seconds", "Mops/s", "p50 ns", "p99 ns", "max ns",
    ]);
    for p in &result.phases {
        phases.row(vec![
            p.name.to_owned(),
            Count(p.ops).to_string(),
            format!("{:.3}", p.seconds),
            figure(p.mops),
            p.latency.p50_ns.to_string(),
            p.latency.p99_ns.to_string(),
            p.latency.max_ns.to_string(),
        ]);
    }
    let m = &result.memory;
    let mut totals = Table::new(&["after the run", "value"]);
    for (what, value) in [
        (
            "bytes per process (live after register)",
            figure(m.bytes_per_process),
        ),
        (
            "peak live MiB",
            figure(m.peak_bytes as f64 / f64::from(1 << 20)),
        ),
        ("leaked bytes after teardown", m.leaked_bytes.to_string()),
        ("entries left", result.left.unique_count.to_string()),
        ("monitors left", result.left.monitors.to_string()),
    ] {
        totals.row(vec![what.to_owned(), value]);
    }
    format!(
        "regent scale: {} processes on {threads} threads, {partitions} partitions\n\n\
         {}\n{phases}\n{totals}",
        Count(*processes),
        provenance.describe(),
    )
}
