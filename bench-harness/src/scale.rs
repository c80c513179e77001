//! `scale`: regent inside a simulated runtime at scale. Pinned schedulers own millions of
//! processes; each registers a unique name and joins Zipf-distributed topics; the run
//! spawns them all, runs a steady mix of sends by name, topic broadcasts and crash-restart
//! churn, then tears everything down. It reports throughput and latency per phase, latency
//! while the tables grow, bytes per process split by kind, and checks that teardown leaves
//! no entry, monitor or byte behind, that no lookup returned a pid already reported down
//! and that no message reached a dead process.
//!
//! - [`runtime`]: the processes, their schedulers and the three phases;
//! - [`zipf`]: deterministic randomness (topic popularity);
//! - [`sampler`]: live bytes over the run, from a thread of its own;
//! - [`memory`]: bytes per process split into entries and monitors;
//! - [`figures`]: the JSON schema and the tables;
//! - [`markdown`] and [`plot`]: `reports/scale.md` and its SVG charts.

pub mod figures;
pub mod markdown;
pub mod memory;
pub mod plot;
pub mod runtime;
pub mod sampler;
pub mod zipf;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, SystemTime};

use regent::{PartitionBy, Stats};

use self::figures::{
    Final, GrowthFigures, MixFigures, Name, Origin, PhaseFigures, Run, ScaleResult,
};
use self::memory::Split;
use self::runtime::{GrowthPoint, Kind, PhaseRun, Plan, SteadyRun, World};
use self::sampler::{Sampler, Stage, Timeline};
use crate::count::Count;
use crate::peers::reclaim_until;
use crate::report::{self, Provenance};
use crate::{alloc, Error};

/// Sized so that the default run takes a few minutes on this 2-core machine.
pub const DEFAULT_PROCESSES: usize = 10_000_000;
/// Long enough for steady throughput to settle, short enough for the default run.
pub const DEFAULT_SECONDS: f64 = 20.0;
const QUICK_PROCESSES: usize = 50_000;
const QUICK_SECONDS: f64 = 0.5;

/// What may stay allocated after teardown: one node of crossbeam-epoch's global garbage
/// queue (`Node<SealedBag>`: 64 deferred functions of 32 bytes, the bag's length, its
/// epoch and the link), which the queue keeps in flight for good because freeing a node
/// defers its destruction into the next bag. It does not grow with the run.
pub const EXPLAINED_LEAK_BYTES: i64 = 2_072;

/// Samples the timeline keeps at most.
const TIMELINE_SAMPLES: usize = 2_048;

/// How the duplicate registry partitions its entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    /// All entries of a topic in one partition (Elixir's `{:duplicate, :key}`)
    #[default]
    Key,
    /// Each entry in its pid's partition (Elixir's `{:duplicate, :pid}`)
    Pid,
}

/// Arguments of `regent-bench scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Processes (suffixes k, M, G) [default: 10M; --quick: 50k]
    #[arg(long)]
    pub processes: Option<Count>,
    /// Scheduler threads, each pinned to a core [default: available cores]
    #[arg(long)]
    pub threads: Option<NonZeroUsize>,
    /// Topics each process joins
    #[arg(long, default_value_t = 2)]
    pub topics: usize,
    /// Share of steady operations that crash a process and restart it under a new pid
    #[arg(long, default_value_t = 0.01)]
    pub churn: f64,
    /// Share of steady operations that broadcast to a topic
    #[arg(long, default_value_t = 0.01)]
    pub broadcasts: f64,
    /// Partitions of each registry [default: regent's own, one per core]
    #[arg(long)]
    pub partitions: Option<NonZeroUsize>,
    /// How the duplicate registry partitions its entries
    #[arg(long, value_enum, default_value_t)]
    pub partition_by: By,
    /// Length of the steady phase in seconds [default: 20; --quick: 0.5]
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Seed of the topic draws and the steady mix
    #[arg(long, default_value_t = 0x5EED_2026)]
    pub seed: u64,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
    /// The markdown report to regenerate from the newest result in --out
    #[arg(long, default_value_os_t = report::workspace_dir().join("reports").join("scale.md"))]
    pub report: PathBuf,
    /// A CI-sized run: 50k processes, a half-second steady phase
    #[arg(long)]
    pub quick: bool,
    /// Renders --report from this result file instead of running (for a report per run
    /// size, e.g. `--from results/scale-<stamp>.json --report reports/scale-100m.md`)
    #[arg(long, value_name = "JSON")]
    pub from: Option<PathBuf>,
}

impl Default for ScaleArgs {
    /// The defaults of the command line.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ScaleArgs,
        }
        <Cli as clap::Parser>::parse_from(["scale"]).args
    }
}

impl ScaleArgs {
    fn plan(&self) -> Result<Plan, Error> {
        let (processes, seconds) = if self.quick {
            (QUICK_PROCESSES, QUICK_SECONDS)
        } else {
            (DEFAULT_PROCESSES, DEFAULT_SECONDS)
        };
        let processes = self.processes.map_or(processes, |c| c.0);
        let seconds = self.seconds.unwrap_or(seconds);
        let share = 0.0..=1.0;
        if !share.contains(&self.churn)
            || !share.contains(&self.broadcasts)
            || self.churn + self.broadcasts > 1.0
        {
            return Err(
                "--churn and --broadcasts are shares between 0 and 1, summing to 1 at most".into(),
            );
        }
        if !(seconds.is_finite() && seconds > 0.0) {
            return Err("--seconds must be positive".into());
        }
        if processes >= (1 << 40) - 4096 {
            return Err("at most 2^40 processes".into());
        }
        Ok(Plan {
            processes,
            threads: self
                .threads
                .or_else(|| thread::available_parallelism().ok())
                .map_or(1, NonZeroUsize::get),
            partitions: self.partitions.map(NonZeroUsize::get),
            partition_by: match self.partition_by {
                By::Key => PartitionBy::Key,
                By::Pid => PartitionBy::Pid,
            },
            topics: self.topics,
            topic_keys: (processes / runtime::PROCESSES_PER_TOPIC).max(1),
            churn: self.churn,
            broadcasts: self.broadcasts,
            seconds,
            seed: self.seed,
        })
    }
}

/// The command line that repeats a run of `plan`.
fn command(plan: &Plan) -> String {
    let mut command = format!(
        "scale --processes {} --threads {} --topics {} --churn {} --broadcasts {} \
         --seconds {} --seed {}",
        Count(plan.processes),
        plan.threads,
        plan.topics,
        plan.churn,
        plan.broadcasts,
        plan.seconds,
        plan.seed
    );
    if let Some(partitions) = plan.partitions {
        command += &format!(" --partitions {partitions}");
    }
    if plan.partition_by == PartitionBy::Pid {
        command += " --partition-by pid";
    }
    command
}

/// What the simulation measured: plain numbers only, so that nothing it keeps is
/// allocated after the baseline.
#[derive(Debug, Clone, Copy)]
struct Measured {
    partitions: usize,
    spawn: PhaseRun,
    steady: SteadyRun,
    teardown: PhaseRun,
    before_spawn: usize,
    after_spawn: usize,
    unique: Stats,
    duplicate: Stats,
    process_record_bytes: usize,
    migration_writes: usize,
    migrations: usize,
    unique_count: usize,
    duplicate_count: usize,
    monitors: usize,
    mailbox_total: u64,
}

/// Runs `scale`, prints its tables, writes `scale-<stamp>.json` to `args.out` and
/// regenerates `args.report` from the newest result there. Returns the JSON's path.
///
/// # Errors
///
/// If the arguments are out of range, a check failed (after the JSON and the report are
/// written: a leak, an entry or monitor left, a stale lookup, a dead delivery, a wrong
/// result), or a file could not be written.
pub fn run(args: &ScaleArgs) -> Result<PathBuf, Error> {
    if let Some(json) = &args.from {
        markdown::render(json, &args.report)?;
        println!("wrote {}", args.report.display());
        return Ok(json.clone());
    }
    let plan = args.plan()?;
    let provenance = Provenance::detect(&command(&plan));
    let stamp = report::utc_stamp(SystemTime::now());
    // Everything the run keeps until its results are written is allocated before the
    // baseline, so that the leak accounting sees only the registries.
    let mut growth: Vec<GrowthPoint> = Vec::with_capacity(runtime::GROWTH_POINTS);
    let mut timeline = Timeline::new(TIMELINE_SAMPLES, Duration::from_millis(10));
    // Registers this thread with the epoch collector first: that allocates once, for good.
    regent::reclaim();
    alloc::reset_peak();
    let baseline = alloc::live();

    let sampler = Sampler::default();
    let measured = thread::scope(|scope| {
        let timeline = &mut timeline;
        let sampling = scope.spawn(|| sampler.run(timeline));
        let measured = simulate(plan, &sampler, &mut growth);
        sampler.stop();
        sampling.join().expect("the sampler panicked");
        measured
    });
    let after_teardown = settle(baseline);
    timeline.finish(sampler.elapsed(), after_teardown, Stage::Dropped);
    let peak = alloc::peak();

    let result = assemble(
        plan,
        provenance,
        &measured,
        &growth,
        timeline,
        (baseline, peak, after_teardown),
    );
    println!("{}\n\n{}", result.headline(), result.run.origin.describe());
    print!("{}", result.tables());
    let path = report::write_json(&args.out, "scale", &stamp, &result)?;
    println!("wrote {}", path.display());
    markdown::regenerate(&args.out, &args.report)?;
    println!("wrote {}", args.report.display());
    let failures = result.failures();
    if !failures.is_empty() {
        return Err(format!("scale checks failed: {}", failures.join("; ")).into());
    }
    Ok(path)
}

/// The three phases over a fresh world, which is dropped before this returns.
fn simulate(plan: Plan, sampler: &Sampler, growth: &mut Vec<GrowthPoint>) -> Measured {
    let world = World::new(plan);
    let before_spawn = alloc::live();

    sampler.enter(Stage::Spawn);
    let spawn = world.spawn(&report::progress("spawn"), growth);
    let migration_writes = world.finish_migrations();
    // Old tables retired by growth are garbage, not registrations.
    quiesce(&world);
    let (unique, duplicate) = (world.unique.stats(), world.topics.stats());
    let after_spawn = alloc::live();

    sampler.enter(Stage::Steady);
    let steady = world.steady(&report::progress("steady (ms)"));

    sampler.enter(Stage::Teardown);
    let teardown = world.teardown(&report::progress("teardown"));
    let measured = Measured {
        partitions: world.unique.partitions(),
        spawn,
        steady,
        teardown,
        before_spawn,
        after_spawn,
        unique,
        duplicate,
        process_record_bytes: world.process_table_bytes() / plan.processes.max(1),
        migration_writes,
        migrations: unique.migrations + duplicate.migrations,
        unique_count: world.unique.count(),
        duplicate_count: world.topics.count(),
        monitors: world.unique.monitors() + world.topics.monitors(),
        mailbox_total: world.mailbox_total(),
    };
    quiesce(&world);
    drop(world);
    sampler.enter(Stage::Dropped);
    measured
}

/// Waits until no registry in the process has retired bytes left to free.
fn quiesce(world: &World) {
    reclaim_until(|| world.unique.stats().retired_bytes == 0);
}

/// Drives reclamation after the registries are gone and returns the live bytes then. Past
/// the registries' retired entries this frees crossbeam-epoch's records of exited
/// scheduler threads, which it reclaims lazily and `retired_bytes` does not count. Stops at
/// the baseline or once live bytes stop falling (see [`EXPLAINED_LEAK_BYTES`]).
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

fn assemble(
    plan: Plan,
    provenance: Provenance,
    m: &Measured,
    growth: &[GrowthPoint],
    timeline: Timeline,
    (baseline, peak, after_teardown): (usize, usize, usize),
) -> ScaleResult {
    let n = plan.processes;
    let phase = |name: &'static str, p: &PhaseRun, mix: Vec<MixFigures>| PhaseFigures {
        name: Name::Borrowed(name),
        ops: p.ops,
        seconds: p.elapsed.as_secs_f64(),
        mops: p.ops as f64 / p.elapsed.as_secs_f64().max(1e-9) / 1e6,
        latency: p.latency,
        mix,
    };
    let tally = &m.steady.tally;
    let mix = Kind::ALL
        .iter()
        .map(|&kind| MixFigures {
            name: Name::Borrowed(kind.name()),
            ops: match kind {
                Kind::Send => tally.sends,
                Kind::Broadcast => tally.broadcasts,
                Kind::Restart => tally.restarts,
            },
            latency: m.steady.kinds[kind as usize],
        })
        .collect();
    let split = Split::of(&m.unique, &m.duplicate, n);
    ScaleResult {
        run: Run {
            processes: n,
            threads: plan.threads,
            partitions: m.partitions,
            partition_by: Name::Borrowed(match plan.partition_by {
                PartitionBy::Pid => "pid",
                _ => "key",
            }),
            topics: plan.topics,
            topic_keys: plan.topic_keys,
            zipf_exponent: runtime::ZIPF_EXPONENT,
            churn: plan.churn,
            broadcasts: plan.broadcasts,
            seconds: plan.seconds,
            seed: plan.seed,
            origin: Origin::from(provenance),
        },
        phases: vec![
            phase("spawn", &m.spawn, Vec::new()),
            phase("steady", &m.steady.phase, mix),
            phase("teardown", &m.teardown, Vec::new()),
        ],
        growth: growth
            .iter()
            .map(|g| GrowthFigures {
                processes: g.processes,
                latency: g.latency,
            })
            .collect(),
        memory: figures::Memory {
            baseline_bytes: baseline,
            peak_bytes: peak,
            bytes_per_process: m.after_spawn.saturating_sub(m.before_spawn) as f64
                / n.max(1) as f64,
            registry_bytes_per_process: split.registries,
            unique_bytes_per_process: split.unique,
            duplicate_bytes_per_process: split.duplicate,
            unique_entry_bytes_per_process: Some(split.unique_entries),
            duplicate_entry_bytes_per_process: Some(split.duplicate_entries),
            monitor_bytes_per_process: Some(split.monitors),
            process_record_bytes: m.process_record_bytes,
            migration_writes: m.migration_writes,
            migrations_in_flight: m.migrations,
            after_teardown_bytes: after_teardown,
            leaked_bytes: after_teardown as i64 - baseline as i64,
            explained_leak_bytes: EXPLAINED_LEAK_BYTES,
            timeline: timeline.samples().to_vec(),
        },
        left: Final {
            unique_count: m.unique_count,
            duplicate_count: m.duplicate_count,
            monitors: m.monitors,
            stale_lookups: tally.stale,
            dead_deliveries: tally.dead,
            lost_names: tally.lost,
            wrong_results: m.spawn.wrong + tally.wrong + m.teardown.wrong,
            delivered: tally.delivered,
            mailbox_total: m.mailbox_total,
            restarting_misses: tally.restarting,
        },
    }
}
