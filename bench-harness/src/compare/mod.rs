//! `compare`: regent beside the registries users would pick instead, on every workload, at
//! each requested key count and thread count. Rust peers run in this process, one after
//! the other on the same keys and pinned threads, each dropped before the next starts;
//! the beam peer runs Elixir's `Registry` in a child process. Each configuration also
//! measures this machine's random-access [`limits`] over a table-sized
//! array, and lookups are quoted as a fraction of them.

mod chart;
mod markdown;
mod workload;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use self::workload::{Figures, Kind, Workload};
use crate::count::Count;
use crate::limits::{self, Limits};
use crate::peers::beam::{self, BeamRun};
use crate::peers::Peer;
use crate::report::{self, Provenance};
use crate::workload::Keys;
use crate::Error;

/// Arguments of `regent-bench compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Key counts, one process per key (suffixes k, M, G; repeat or separate with commas)
    #[arg(long, value_delimiter = ',', default_values_t = [Count(1_000_000), Count(10_000_000)])]
    pub keys: Vec<Count>,
    /// Thread counts, each thread pinned to a core (repeat or comma list) [default: 1 and
    /// every core]
    #[arg(long, value_delimiter = ',')]
    pub threads: Vec<NonZeroUsize>,
    /// Peers to run (comma list) [default: all]
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<Peer>,
    /// Workloads to run (comma list) [default: all]
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<Workload>,
    /// Passes per Rust peer and configuration; each figure is the middle one
    #[arg(long, default_value = "3")]
    pub reps: NonZeroUsize,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
    /// The markdown report to regenerate; its SVG charts go in a folder named after it
    #[arg(long, default_value_os_t = report::workspace_dir().join("reports").join("compare.md"))]
    pub report: PathBuf,
    /// The `elixir` executable for the beam peer
    #[arg(long, default_value = "elixir")]
    pub elixir: PathBuf,
    /// Seconds after which a beam run is stopped: the workloads it finished are kept, the
    /// others have no beam figure (and with none finished, the peer is skipped)
    #[arg(long, default_value = "3600")]
    pub beam_timeout: u64,
    /// Leave out the floor (each thread on private hashbrown tables, nothing shared: what
    /// a registry would reach if sharing cost nothing), which otherwise takes its turn
    /// with the Rust peers on the registry workloads and memory
    #[arg(long)]
    pub no_floor: bool,
}

impl CompareArgs {
    /// The thread counts to run: as given, or 1 and every core.
    #[must_use]
    pub fn thread_counts(&self) -> Vec<usize> {
        let mut threads: Vec<usize> = if self.threads.is_empty() {
            let cores = thread::available_parallelism().map_or(1, NonZeroUsize::get);
            vec![1, cores]
        } else {
            self.threads.iter().map(|t| t.get()).collect()
        };
        threads.dedup();
        threads
    }

    fn selected_peers(&self) -> Vec<Peer> {
        selected(&self.peers, &Peer::ALL)
    }

    fn selected_workloads(&self) -> Vec<Workload> {
        selected(&self.workloads, &Workload::ALL)
    }
}

/// `given` in `all`'s order without repeats, or `all` when nothing was given.
fn selected<T: Copy + PartialEq>(given: &[T], all: &[T]) -> Vec<T> {
    all.iter()
        .copied()
        .filter(|x| given.is_empty() || given.contains(x))
        .collect()
}

/// `results/compare-<stamp>.json`.
#[derive(Debug, Serialize)]
pub struct CompareResult {
    pub run: Run,
    /// The random-access limits measured for each configuration.
    pub limits: Vec<LimitFigure>,
    pub workloads: Vec<WorkloadFigures>,
}

#[derive(Debug, Serialize)]
pub struct Run {
    pub keys: Vec<usize>,
    pub threads: Vec<usize>,
    pub reps: usize,
    pub peers: Vec<&'static str>,
    pub workloads: Vec<&'static str>,
    /// Peers (beam) that produced no figures for a configuration, and why.
    pub skipped: Vec<Skip>,
    /// Peers (beam) stopped part-way through a configuration, and why: the workloads they
    /// finished have figures, the others none.
    pub stopped: Vec<Skip>,
    /// The Elixir and OTP releases, if beam ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beam: Option<BeamVersions>,
    #[serde(flatten)]
    pub provenance: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    pub peer: &'static str,
    pub keys: usize,
    pub threads: usize,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BeamVersions {
    pub elixir: String,
    pub otp: String,
    pub keys_per_process: usize,
}

#[derive(Debug, Serialize)]
pub struct LimitFigure {
    pub keys: usize,
    #[serde(flatten)]
    pub limits: Limits,
    pub dependent_mops: f64,
    pub independent_mops: f64,
}

#[derive(Debug, Serialize)]
pub struct WorkloadFigures {
    pub name: &'static str,
    pub threads: usize,
    pub keys: usize,
    pub results: Vec<PeerResult>,
}

#[derive(Debug, Serialize)]
pub struct PeerResult {
    pub peer: &'static str,
    /// Millions of operations a second; `null` for the memory workload.
    pub mops: Option<f64>,
    /// Live bytes per registration; `null` except for the memory workload.
    pub bytes_per_entry: Option<f64>,
    /// Lookups only: `mops` over the dependent-access rate of the same configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_dependent_limit: Option<f64>,
    /// Lookups only: `mops` over the independent-access rate of the same configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_independent_limit: Option<f64>,
}

impl PeerResult {
    fn new(peer: &'static str, workload: Workload, figure: f64, limits: &Limits) -> Self {
        let (mops, bytes_per_entry) = match workload.kind() {
            Kind::Memory => (None, Some(figure)),
            Kind::Pass(_) | Kind::Bags | Kind::Batch => (Some(figure), None),
        };
        let lookup = workload.is_lookup();
        Self {
            peer,
            mops,
            bytes_per_entry,
            of_dependent_limit: lookup.then(|| figure / limits.dependent_mops()),
            of_independent_limit: lookup.then(|| figure / limits.independent_mops()),
        }
    }

    /// The figure of its workload.
    #[must_use]
    pub fn figure(&self) -> Option<f64> {
        self.mops.or(self.bytes_per_entry)
    }
}

/// Runs `compare`, prints a table per workload, writes `compare-<stamp>.json` to
/// `args.out` and regenerates the markdown report and its charts at `args.report`.
/// Returns the JSON's path. A beam peer that cannot run is skipped, not an error.
///
/// # Errors
///
/// If a Rust peer returned a wrong result or still held entries after every process went
/// down, or a file could not be written.
pub fn run(args: &CompareArgs) -> Result<PathBuf, Error> {
    let peers = args.selected_peers();
    let workloads = args.selected_workloads();
    let threads = args.thread_counts();
    let reps = args.reps.get();
    let names = |xs: &[Count]| xs.iter().map(ToString::to_string).collect::<Vec<_>>();
    let provenance = Provenance::detect(&format!(
        "compare --keys {} --threads {} --peers {} --workloads {} --reps {reps}{}",
        names(&args.keys).join(","),
        threads
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        peers.iter().map(|p| p.name()).collect::<Vec<_>>().join(","),
        workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(","),
        if args.no_floor { " --no-floor" } else { "" },
    ));
    let stamp = report::utc_stamp(SystemTime::now());

    let floor = !args.no_floor && workloads.iter().any(|w| w.floor_runs());
    let mut result = CompareResult {
        run: Run {
            keys: args.keys.iter().map(|k| k.0).collect(),
            threads: threads.clone(),
            reps,
            peers: peers
                .iter()
                .map(|p| p.name())
                .chain(floor.then_some(crate::floor::NAME))
                .collect(),
            workloads: workloads.iter().map(|w| w.name()).collect(),
            skipped: Vec::new(),
            stopped: Vec::new(),
            beam: None,
            provenance,
        },
        limits: Vec::new(),
        workloads: Vec::new(),
    };
    let mut elixir_missing: Option<String> = None;
    for &count in &args.keys {
        for &t in &threads {
            eprintln!("compare: {count} keys, {t} thread(s)");
            let keys = Keys::new(count.0);
            let limits = limits::measure(count.0.saturating_mul(limits::BYTES_PER_KEY), t);
            let rust: Vec<Peer> = peers.iter().copied().filter(|p| p.is_rust()).collect();
            let figures = workload::measure_in_turn(&rust, floor, &workloads, keys, t, reps)?;
            let beam_run = if !peers.contains(&Peer::Beam) {
                None
            } else if let Some(reason) = &elixir_missing {
                result.run.skipped.push(skip(count.0, t, reason));
                None
            } else {
                let timeout = Duration::from_secs(args.beam_timeout);
                eprintln!(
                    "beam: running Elixir's Registry with {}",
                    args.elixir.display()
                );
                match beam::run(&args.elixir, count.0, t, timeout) {
                    Ok(run) => Some(run),
                    Err(skipped) => {
                        println!("{skipped}");
                        if skipped.0.starts_with("elixir not found") {
                            elixir_missing = Some(skipped.0.clone());
                        }
                        result.run.skipped.push(skip(count.0, t, &skipped.0));
                        None
                    }
                }
            };
            if let Some(run) = &beam_run {
                if let Some(reason) = &run.stopped {
                    println!(
                        "{}: stopped ({reason}); its finished workloads are kept",
                        beam::NAME
                    );
                    result.run.stopped.push(skip(count.0, t, reason));
                }
                result.run.beam.get_or_insert_with(|| BeamVersions {
                    elixir: run.elixir.clone(),
                    otp: run.otp.clone(),
                    keys_per_process: run.keys_per_process,
                });
            }
            for &workload in &workloads {
                result.workloads.push(WorkloadFigures {
                    name: workload.name(),
                    threads: t,
                    keys: count.0,
                    results: results(workload, &figures, beam_run.as_ref(), &limits),
                });
            }
            result.limits.push(LimitFigure {
                keys: count.0,
                limits,
                dependent_mops: limits.dependent_mops(),
                independent_mops: limits.independent_mops(),
            });
        }
    }

    print!("{}", markdown::tables(&result));
    let json = report::write_json(&args.out, "compare", &stamp, &result)?;
    println!("wrote {}", json.display());
    markdown::write(&args.report, &json, &result)?;
    println!("wrote {}", args.report.display());
    Ok(json)
}

fn skip(keys: usize, threads: usize, reason: &str) -> Skip {
    Skip {
        peer: beam::NAME,
        keys,
        threads,
        reason: reason.to_owned(),
    }
}

/// Every peer's figure for `workload` in one configuration, the floor's after the Rust
/// peers' if it ran; beam only where its script measured the workload.
fn results(
    workload: Workload,
    figures: &[(&'static str, Figures)],
    beam_run: Option<&BeamRun>,
    limits: &Limits,
) -> Vec<PeerResult> {
    let rust = figures.iter().filter_map(|(peer, f)| {
        let figure = f.of(workload)?;
        Some(PeerResult::new(peer, workload, figure, limits))
    });
    let beam = beam_run
        .and_then(|run| run.figure(workload.name()))
        .and_then(|f| match workload.kind() {
            Kind::Memory => f.bytes_per_entry,
            Kind::Pass(_) | Kind::Bags | Kind::Batch => f.mops,
        })
        .filter(|x| x.is_finite() && *x > 0.0)
        .map(|figure| PeerResult::new(beam::NAME, workload, figure, limits));
    rust.chain(beam).collect()
}

#[cfg(test)]
mod tests {
    use clap::{Parser, ValueEnum};

    use super::{CompareArgs, Workload};
    use crate::count::Count;
    use crate::peers::Peer;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    fn parse(args: &[&str]) -> CompareArgs {
        Cli::parse_from(["compare"].iter().chain(args)).args
    }

    #[test]
    fn defaults_are_1m_and_10m_keys_1_and_all_cores_every_peer_and_workload() {
        let args = parse(&[]);
        assert_eq!(args.keys, [Count(1_000_000), Count(10_000_000)]);
        assert_eq!(args.thread_counts()[0], 1);
        assert_eq!(args.selected_peers(), Peer::ALL);
        assert_eq!(args.selected_workloads(), Workload::ALL);
    }

    #[test]
    fn lists_repeat_and_keep_the_canonical_order() {
        let args = parse(&[
            "--keys=1M,10M",
            "--keys=100k",
            "--threads=2",
            "--peers=beam,scc,regent",
            "--workloads=memory,lookup_hit,register_conflict",
        ]);
        assert_eq!(
            args.keys,
            [Count(1_000_000), Count(10_000_000), Count(100_000)]
        );
        assert_eq!(args.thread_counts(), [2]);
        assert_eq!(args.selected_peers(), [Peer::Regent, Peer::Scc, Peer::Beam]);
        assert_eq!(
            args.selected_workloads(),
            [
                Workload::RegisterConflict,
                Workload::LookupHit,
                Workload::Memory
            ]
        );
        assert!(Cli::try_parse_from(["compare", "--workloads=dispatch,join_leave"]).is_ok());
        assert!(Cli::try_parse_from(["compare", "--workloads=broadcast"]).is_err());
    }

    #[test]
    fn command_line_names_are_the_json_names() {
        for workload in Workload::ALL {
            let value = workload.to_possible_value().unwrap();
            assert_eq!(value.get_name(), workload.name());
        }
        for peer in Peer::ALL {
            assert_eq!(peer.to_possible_value().unwrap().get_name(), peer.name());
        }
    }
}
