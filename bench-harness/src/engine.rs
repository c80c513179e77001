//! `engine`: regent side by side with the peer registries. Every peer runs in this process
//! on the same keys and pinned threads, the peers taking turns pass by pass, each table
//! dropped before the next pass starts. Each pass builds a fresh table: register, lookup
//! hit, lookup miss, process_down; every figure is the middle pass of `--reps`. The
//! [`floor`] takes its turn with them: the same phases on thread-private tables, the
//! ceiling of what any registry could gain over the best peer here.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::count::Count;
use crate::floor;
use crate::peers::{DashMapPeer, RegentPeer, Registry, RwLockPeer};
use crate::report::{self, figure, Provenance, Table};
use crate::runner::{Latency, Timing};
use crate::workload::{ensure_empty, middle, Keys, Phase};
use crate::{alloc, Error};

/// Arguments of `regent-bench engine`.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Keys registered, one per process (suffixes k, M, G)
    #[arg(long, default_value = "10M")]
    pub keys: Count,
    /// Worker threads, each pinned to a core
    #[arg(long, default_value = "2")]
    pub threads: NonZeroUsize,
    /// Passes per peer; each figure is the middle one
    #[arg(long, default_value = "3")]
    pub reps: NonZeroUsize,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
    /// The markdown report to regenerate
    #[arg(long, default_value_os_t = report::workspace_dir().join("reports").join("engine.md"))]
    pub report: PathBuf,
}

#[derive(Debug, Serialize)]
struct EngineResult {
    run: Run,
    workloads: Vec<Workload>,
}

#[derive(Debug, Serialize)]
struct Run {
    keys: usize,
    threads: usize,
    reps: usize,
    #[serde(flatten)]
    provenance: Provenance,
}

#[derive(Debug, Serialize)]
struct Workload {
    name: &'static str,
    threads: usize,
    keys: usize,
    results: Vec<PeerResult>,
    /// The [`floor`]'s figures: not a peer, so not in `results`.
    floor: FloorResult,
}

#[derive(Debug, Serialize)]
struct FloorResult {
    mops: f64,
    bytes_per_entry: f64,
}

#[derive(Debug, Serialize)]
struct PeerResult {
    peer: &'static str,
    mops: f64,
    /// The peer's live bytes after registering every key, per key.
    bytes_per_entry: f64,
    #[serde(flatten)]
    latency: Latency,
}

/// One peer's middle pass of each phase, in [`Phase::ENGINE`] order.
#[derive(Debug)]
struct PeerFigures {
    peer: &'static str,
    passes: [Timing; 4],
    bytes_per_entry: f64,
}

/// Runs `engine`, prints its table, writes `engine-<stamp>.json` to `args.out` and
/// regenerates the markdown report at `args.report`. Returns the JSON's path.
///
/// # Errors
///
/// If a peer returned a wrong result or still held entries after every process went
/// down, or a file could not be written.
pub fn run(args: &EngineArgs) -> Result<PathBuf, Error> {
    let (threads, reps) = (args.threads.get(), args.reps.get());
    let provenance = Provenance::detect(&format!(
        "engine --keys {} --threads {threads} --reps {reps}",
        args.keys
    ));
    let stamp = report::utc_stamp(SystemTime::now());
    let keys = Keys::new(args.keys.0);

    // Regent first: the ratio column relies on it. The peers take turns pass by pass, so
    // that a slow stretch of this shared machine falls on every peer's passes alike rather
    // than on one peer's whole run.
    let mut passes = [
        Passes::new(RegentPeer::NAME, reps),
        Passes::new(DashMapPeer::NAME, reps),
        Passes::new(RwLockPeer::NAME, reps),
    ];
    let mut floors = Passes::new(floor::NAME, reps);
    for rep in 1..=reps {
        let round = format!("{rep}/{reps}");
        let [regent, dashmap, rwlock] = &mut passes;
        regent.run::<RegentPeer>(keys, threads, &round)?;
        dashmap.run::<DashMapPeer>(keys, threads, &round)?;
        rwlock.run::<RwLockPeer>(keys, threads, &round)?;
        floors.run_floor(keys, threads, &round)?;
    }
    let peers = passes.map(Passes::middle);
    let floor = floors.middle();
    let workloads = Phase::ENGINE
        .iter()
        .enumerate()
        .map(|(p, phase)| Workload {
            name: phase.name(),
            threads,
            keys: keys.count(),
            results: peers
                .iter()
                .map(|f| PeerResult {
                    peer: f.peer,
                    mops: f.passes[p].mops(),
                    bytes_per_entry: f.bytes_per_entry,
                    latency: f.passes[p].latency,
                })
                .collect(),
            floor: FloorResult {
                mops: floor.passes[p].mops(),
                bytes_per_entry: floor.bytes_per_entry,
            },
        })
        .collect();
    let result = EngineResult {
        run: Run {
            keys: keys.count(),
            threads,
            reps,
            provenance,
        },
        workloads,
    };

    let body = format!(
        "{}\n{}",
        result.run.provenance.describe(),
        table(&peers, &floor)
    );
    print!("{body}");
    let json = report::write_json(&args.out, "engine", &stamp, &result)?;
    println!("wrote {}", json.display());
    write_markdown(&args.report, &body, &json, &result.run)?;
    println!("wrote {}", args.report.display());
    Ok(json)
}

/// One peer's passes so far: each phase's timings and the bytes per entry.
struct Passes {
    peer: &'static str,
    timings: [Vec<Timing>; 4],
    bytes: Vec<f64>,
}

impl Passes {
    fn new(peer: &'static str, reps: usize) -> Self {
        // Allocated up front: growing them mid-pass would count against the peer.
        Self {
            peer,
            timings: [(); 4].map(|()| Vec::with_capacity(reps)),
            bytes: Vec::with_capacity(reps),
        }
    }

    /// Runs pass `round` ("2/3") over a fresh `R`: every phase, in order.
    fn run<R: Registry>(&mut self, keys: Keys, threads: usize, round: &str) -> Result<(), Error> {
        let registry = R::default();
        // Garbage of earlier passes and peers must not count against this one.
        registry.quiesce();
        let before = alloc::live();
        for (phase, timings) in Phase::ENGINE.into_iter().zip(&mut self.timings) {
            let progress = report::progress(&format!("{} {} {round}", R::NAME, phase.name()));
            timings.push(phase.run(&registry, keys, threads, &progress)?);
            // Freed before the reading below.
            drop(progress);
            if phase == Phase::Register {
                // Old tables retired by growth are garbage, not entries.
                registry.quiesce();
                let bytes = alloc::live().saturating_sub(before) as f64 / keys.count() as f64;
                self.bytes.push(bytes);
            }
        }
        ensure_empty(&registry)?;
        // What the exits retired is freed before the next peer's pass reads the allocator.
        registry.quiesce();
        Ok(())
    }

    /// Runs pass `round` of the [`floor`].
    fn run_floor(&mut self, keys: Keys, threads: usize, round: &str) -> Result<(), Error> {
        let progress = report::progress(&format!("{} {round}", floor::NAME));
        let pass = floor::run(keys, threads, &Phase::ENGINE, true, &progress)?;
        for (timings, timing) in self.timings.iter_mut().zip(pass.timings) {
            timings.push(timing);
        }
        self.bytes
            .push(pass.bytes_per_entry.expect("the floor read the allocator"));
        Ok(())
    }

    /// The middle pass of each phase, and the middle bytes per entry.
    fn middle(self) -> PeerFigures {
        PeerFigures {
            peer: self.peer,
            passes: self
                .timings
                .map(|p| middle(p, |a, b| a.elapsed.cmp(&b.elapsed))),
            bytes_per_entry: middle(self.bytes, f64::total_cmp),
        }
    }
}

/// One row per workload, one column per peer (regent first), the floor, and regent's and
/// the floor's figures over the best other peer's.
fn table(peers: &[PeerFigures], floor: &PeerFigures) -> Table {
    let mut header = vec!["workload".to_owned()];
    header.extend(peers.iter().map(|f| f.peer.to_owned()));
    header.extend([
        floor::NAME.to_owned(),
        "regent ÷ best peer".to_owned(),
        "floor ÷ best peer".to_owned(),
    ]);
    let mut table = Table::new(&header);
    for (p, phase) in Phase::ENGINE.iter().enumerate() {
        let mops: Vec<f64> = peers.iter().map(|f| f.passes[p].mops()).collect();
        let name = format!("{} Mops/s", phase.name());
        table.row(row(name, &mops, floor.passes[p].mops(), f64::max));
    }
    let bytes: Vec<f64> = peers.iter().map(|f| f.bytes_per_entry).collect();
    table.row(row(
        "bytes per entry".to_owned(),
        &bytes,
        floor.bytes_per_entry,
        f64::min,
    ));
    table
}

/// The cells of one row: its name, the figures (regent's first), the floor's, and
/// regent's and the floor's over the best other peer's, `best` choosing the better of two
/// figures.
fn row(name: String, figures: &[f64], floor: f64, best: fn(f64, f64) -> f64) -> Vec<String> {
    let best_peer = figures[1..]
        .iter()
        .copied()
        .reduce(best)
        .unwrap_or(f64::NAN);
    let mut cells = vec![name];
    cells.extend(figures.iter().copied().map(figure));
    cells.push(figure(floor));
    cells.push(format!("{:.2}×", figures[0] / best_peer));
    cells.push(format!("{:.2}×", floor / best_peer));
    cells
}

fn write_markdown(path: &Path, body: &str, json: &Path, run: &Run) -> std::io::Result<()> {
    let json = json.strip_prefix(report::workspace_dir()).unwrap_or(json);
    let markdown = format!(
        "# regent beside its peers\n\n\
         Generated by `regent-bench engine`; rerun the command below to refresh it. \
         Raw figures: `{}`.\n\n\
         Every peer ran in one process on the same {} keys with {} pinned threads, the \
         peers taking turns pass by pass. Each figure comes from the middle pass of {}, \
         each over a fresh table. Mops/s: higher is better. Bytes per entry: live bytes \
         after registering every key, as the counting allocator sees them, per key; lower \
         is better. {}, and the last column, the floor over the best peer, is the most any \
         registry could gain over that peer on this machine. The column before divides \
         regent's figure by the best other peer's.\n\n{body}",
        json.display(),
        Count(run.keys),
        run.threads,
        run.reps,
        floor::ABOUT,
    );
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, markdown)
}
