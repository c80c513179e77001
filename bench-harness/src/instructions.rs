//! `instructions`: what one operation of each peer costs in instructions, counted by
//! callgrind (valgrind's instruction-level profiler) instead of timed.
//!
//! A timing on a shared VM moves by a fifth between two runs of one binary; an instruction
//! count is exact for its run, and moves between runs only with the hasher's seed (foldhash
//! seeds every process at random), which decides where tables grow and shrink. Each
//! (peer, phase) is counted `--runs` times, in as many processes, and the median is quoted
//! with the spread. A count is not a speed (it ignores cache misses, and a locked
//! read-modify-write counts as one instruction), but it says how much work each peer does
//! for the same operation on the same keys, which is most of what a single-thread timing of
//! a cache-resident table measures.
//!
//! Each (peer, phase) runs in its own child process, this binary under
//! `valgrind --tool=callgrind`, with collection off except inside `counted`: the child
//! builds a fresh registry, brings it to the state the phase starts from (uncounted), and
//! runs the phase's operations on one thread, in the order `compare` visits them. A null
//! registry that stores nothing runs the same loops, and its count (the loop, the keys, the
//! call) is subtracted from every peer's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde::Serialize;

use crate::count::Count;
use crate::peers::{
    DashMapPeer, FlurryPeer, PapayaPeer, Peer, RegentPeer, Registry, RwLockPeer, SccPeer,
};
use crate::report::{self, figure, Provenance, Table};
use crate::workload::{self, Driver, Keys, Phase, State};
use crate::Error;

/// The symbol callgrind counts inside (`--toggle-collect`).
const COUNTED: &str = "regent_bench::instructions::counted*";

/// Arguments of `regent-bench instructions`.
#[derive(Debug, Clone, clap::Args)]
pub struct InstructionsArgs {
    /// Processes, one key each (suffixes k, M, G); the table's size sets its load, and so
    /// how far probes run
    #[arg(long, default_value = "1M")]
    pub keys: Count,
    /// Runs of each (peer, phase), each in its own process with its own hash seed; the
    /// median is quoted
    #[arg(long, default_value = "3")]
    pub runs: std::num::NonZeroUsize,
    /// Peers to count (comma list) [default: every Rust peer]
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<Peer>,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
    /// The markdown report to regenerate
    #[arg(long, default_value_os_t = report::workspace_dir().join("reports").join("instructions.md"))]
    pub report: PathBuf,
    /// The `valgrind` executable
    #[arg(long, default_value = "valgrind")]
    pub valgrind: PathBuf,
    /// The `regent-bench` binary the children run: this one, unless a test names it.
    #[arg(skip)]
    pub exe: Option<PathBuf>,
}

/// Arguments of the hidden child subcommand, run under callgrind.
#[derive(Debug, Clone, clap::Args)]
pub struct ChildArgs {
    /// The peer to run, or none for the null registry
    #[arg(long)]
    pub peer: Option<Peer>,
    /// The phase, by its name in tables and JSON
    #[arg(long)]
    pub phase: String,
    /// Processes, one key each
    #[arg(long)]
    pub keys: Count,
}

/// `results/instructions-<stamp>.json`.
#[derive(Debug, Serialize)]
pub struct InstructionsResult {
    /// Where and how the counts were taken.
    pub run: Run,
    /// One entry per phase, in the order they ran.
    pub phases: Vec<PhaseCounts>,
}

/// The run's provenance, key count and valgrind.
#[derive(Debug, Serialize)]
pub struct Run {
    /// Processes, one key each.
    pub keys: usize,
    /// Runs of each (peer, phase); the figures are medians.
    pub runs: usize,
    /// `valgrind --version`.
    pub valgrind: String,
    /// Machine, compiler, commit and command.
    #[serde(flatten)]
    pub provenance: Provenance,
}

/// One phase's counts.
#[derive(Debug, Serialize)]
pub struct PhaseCounts {
    /// The phase's name.
    pub name: &'static str,
    /// The null registry's instructions per operation (median of the runs), subtracted from
    /// each peer's.
    pub baseline: f64,
    /// Each peer's instructions per operation, net of the baseline.
    pub results: Vec<PeerCount>,
}

/// One peer's count in one phase.
#[derive(Debug, Serialize)]
pub struct PeerCount {
    /// The peer's name.
    pub peer: &'static str,
    /// Instructions per operation, net of the baseline: the median of the runs.
    pub instructions_per_op: f64,
    /// The fewest and the most of the runs, net of the baseline.
    pub min: f64,
    /// See `min`.
    pub max: f64,
}

/// Runs every phase for every selected Rust peer under callgrind, prints a table and
/// writes `instructions-<stamp>.json` to `args.out` and the markdown report. Returns the
/// JSON's path.
///
/// # Errors
///
/// If valgrind cannot be run, a child fails (a peer answered wrongly, or crashed), or an
/// output cannot be written.
pub fn run(args: &InstructionsArgs) -> Result<PathBuf, Error> {
    let valgrind = valgrind_version(&args.valgrind)?;
    let exe = match &args.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    let peers: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|p| args.peers.is_empty() || args.peers.contains(p))
        .filter(|p| {
            let rust = p.is_rust();
            if !rust {
                println!(
                    "{} skipped: it runs on the BEAM, whose instructions callgrind would count \
                     for the virtual machine, not the registry",
                    p.name()
                );
            }
            rust
        })
        .collect();
    if peers.is_empty() {
        return Err("no Rust peer selected".into());
    }
    let keys = args.keys.0;
    let runs = args.runs.get();
    let provenance = Provenance::detect(&format!(
        "instructions --keys {} --runs {runs} --peers {}",
        args.keys,
        peers.iter().map(|p| p.name()).collect::<Vec<_>>().join(",")
    ));
    let stamp = report::utc_stamp(SystemTime::now());
    let scratch = std::env::temp_dir().join(format!(
        "regent-instructions-{}-{stamp}",
        std::process::id()
    ));
    fs::create_dir_all(&scratch)?;
    let progress = report::progress("instructions");
    progress.set_length((Phase::ALL.len() * (peers.len() + 1) * runs) as u64);
    let counted = (|| {
        let mut phases = Vec::new();
        for phase in Phase::ALL {
            // Every run of `peer`, per operation, sorted: the fewest first, the most last.
            let count = |peer: Option<Peer>| {
                progress.set_prefix(format!(
                    "{} {}",
                    peer.map_or("baseline", Peer::name),
                    phase.name()
                ));
                let mut counts = Vec::with_capacity(runs);
                for _ in 0..runs {
                    let total = count_child(&args.valgrind, &exe, &scratch, peer, phase, keys)?;
                    counts.push(total as f64 / keys as f64);
                    progress.inc(1);
                }
                counts.sort_by(f64::total_cmp);
                Ok::<_, Error>(counts)
            };
            let baseline = workload::middle(count(None)?, f64::total_cmp);
            let mut results = Vec::new();
            for &peer in &peers {
                let counts = count(Some(peer))?;
                results.push(PeerCount {
                    peer: peer.name(),
                    min: counts[0] - baseline,
                    max: counts[counts.len() - 1] - baseline,
                    instructions_per_op: workload::middle(counts, f64::total_cmp) - baseline,
                });
            }
            phases.push(PhaseCounts {
                name: phase.name(),
                baseline,
                results,
            });
        }
        Ok::<_, Error>(phases)
    })();
    progress.finish_and_clear();
    // Best effort: the counts are read already, and a leftover folder in the temp dir
    // does no harm.
    let _ = fs::remove_dir_all(&scratch);
    let result = InstructionsResult {
        run: Run {
            keys,
            runs,
            valgrind,
            provenance,
        },
        phases: counted?,
    };
    let table = table(&result);
    print!("{}\n{table}", result.run.provenance.describe());
    let path = report::write_json(&args.out, "instructions", &stamp, &result)?;
    println!("wrote {}", path.display());
    fs::write(&args.report, markdown(&result, &path, &table))?;
    println!("wrote {}", args.report.display());
    Ok(path)
}

/// The hidden child: one phase of one peer (or of the null registry), counted.
///
/// # Errors
///
/// If the phase name is unknown, or the peer answered an operation wrongly.
pub fn child(args: &ChildArgs) -> Result<(), Error> {
    let phase = Phase::ALL
        .into_iter()
        .find(|p| p.name() == args.phase)
        .ok_or_else(|| format!("unknown phase {}", args.phase))?;
    let keys = Keys::new(args.keys.0);
    match args.peer {
        None => count_phase::<Null>(phase, keys),
        Some(Peer::Regent) => count_phase::<RegentPeer>(phase, keys),
        Some(Peer::Dashmap) => count_phase::<DashMapPeer>(phase, keys),
        Some(Peer::Scc) => count_phase::<SccPeer>(phase, keys),
        Some(Peer::Papaya) => count_phase::<PapayaPeer>(phase, keys),
        Some(Peer::Flurry) => count_phase::<FlurryPeer>(phase, keys),
        Some(Peer::Rwlock) => count_phase::<RwLockPeer>(phase, keys),
        Some(Peer::Beam) => Err("beam does not run in this process".into()),
    }
}

/// A fresh `R` brought to `phase`'s start state, then `phase` run inside [`counted`].
fn count_phase<R: Registry>(phase: Phase, keys: Keys) -> Result<(), Error> {
    let registry = R::default();
    if phase.starts() != State::Empty {
        workload::prepare(&registry, keys, 1, State::Empty, phase.starts())?;
    }
    let right = phase.drive(&registry, keys, Counted);
    if right != keys.count() && R::NAME != Null::NAME {
        return Err(format!(
            "{} {}: {} of {} operations returned a wrong result",
            R::NAME,
            phase.name(),
            keys.count() - right,
            keys.count()
        )
        .into());
    }
    Ok(())
}

/// Runs the phase's loop in [`counted`] on this thread.
struct Counted;

impl Driver for Counted {
    type Output = usize;

    fn drive(self, n: usize, stride: usize, op: impl Fn(usize) -> bool + Sync) -> usize {
        counted(n, stride, op)
    }
}

/// The only code callgrind counts: `op` on every process, in `compare`'s order. Returns
/// how many operations answered as expected.
#[inline(never)]
fn counted(n: usize, stride: usize, op: impl Fn(usize) -> bool) -> usize {
    let stride = stride % n.max(1);
    let (mut i, mut right) = (0, 0);
    for _ in 0..n {
        right += usize::from(op(i));
        i += stride;
        if i >= n {
            i -= n;
        }
    }
    right
}

/// A registry that stores nothing: what the loop, the keys and a call cost on their own.
#[derive(Debug, Default)]
struct Null;

impl Registry for Null {
    const NAME: &'static str = "baseline";

    #[inline(never)]
    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        std::hint::black_box((pid, key, value));
        true
    }

    #[inline(never)]
    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        std::hint::black_box(key);
        None
    }

    #[inline(never)]
    fn unregister(&self, pid: u64, key: u64) -> bool {
        std::hint::black_box((pid, key));
        true
    }

    #[inline(never)]
    fn process_down(&self, pid: u64) -> usize {
        std::hint::black_box(pid);
        1
    }

    fn count(&self) -> usize {
        0
    }
}

/// `valgrind --version`, or an error saying how to get it.
fn valgrind_version(valgrind: &Path) -> Result<String, Error> {
    let missing = || {
        format!(
            "{} not found: `instructions` counts with callgrind, part of valgrind \
             (apt-get install valgrind)",
            valgrind.display()
        )
    };
    let output = Command::new(valgrind)
        .arg("--version")
        .output()
        .map_err(|_| missing())?;
    if !output.status.success() {
        return Err(missing().into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs one child under callgrind and returns the instructions it counted.
fn count_child(
    valgrind: &Path,
    exe: &Path,
    scratch: &Path,
    peer: Option<Peer>,
    phase: Phase,
    keys: usize,
) -> Result<u64, Error> {
    let name = peer.map_or("baseline", Peer::name);
    let out = scratch.join(format!("{name}-{}.callgrind", phase.name()));
    let mut command = Command::new(valgrind);
    command
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={COUNTED}"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(["instructions-child", "--phase", phase.name(), "--keys"])
        .arg(keys.to_string());
    if let Some(peer) = peer {
        command.args(["--peer", peer.name()]);
    }
    let output = command.output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(format!(
            "{name} {} under callgrind failed ({}): {}",
            phase.name(),
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        )
        .into());
    }
    let text = fs::read_to_string(&out)?;
    parse_total(&text).ok_or_else(|| format!("no instruction total in {}", out.display()).into())
}

/// The instruction total of a callgrind output file: its `totals:` line (or `summary:`,
/// which older versions write instead).
#[must_use]
pub fn parse_total(text: &str) -> Option<u64> {
    let line = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    line("totals:").or_else(|| line("summary:"))
}

/// Phases down, peers across, and regent's count over the smallest other one.
#[must_use]
pub fn table(result: &InstructionsResult) -> Table {
    let Some(first) = result.phases.first() else {
        return Table::new(&["phase"]);
    };
    let mut header = peer_header("instructions per op", first);
    header.push("baseline".to_owned());
    let ratio = first.results.iter().any(|r| r.peer == RegentPeer::NAME) && first.results.len() > 1;
    if ratio {
        header.push("regent ÷ fewest other".to_owned());
    }
    let mut table = Table::new(&header);
    for phase in &result.phases {
        let mut row = vec![phase.name.to_owned()];
        row.extend(phase.results.iter().map(|r| figure(r.instructions_per_op)));
        row.push(figure(phase.baseline));
        if ratio {
            row.push(regent_ratio(phase).map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×")));
        }
        table.row(row);
    }
    table
}

/// A table's header: `corner`, then the peers of `phase` in their order.
fn peer_header(corner: &str, phase: &PhaseCounts) -> Vec<String> {
    let mut header = vec![corner.to_owned()];
    header.extend(phase.results.iter().map(|r| r.peer.to_owned()));
    header
}

/// regent's count over the smallest other peer's in `phase`.
#[must_use]
pub fn regent_ratio(phase: &PhaseCounts) -> Option<f64> {
    let regent = phase
        .results
        .iter()
        .find(|r| r.peer == RegentPeer::NAME)?
        .instructions_per_op;
    let fewest = phase
        .results
        .iter()
        .filter(|r| r.peer != RegentPeer::NAME)
        .map(|r| r.instructions_per_op)
        .min_by(f64::total_cmp)?;
    (fewest > 0.0).then(|| regent / fewest)
}

/// Phases down, peers across: each peer's most over its fewest count across the runs.
#[must_use]
pub fn spread(result: &InstructionsResult) -> Table {
    let Some(first) = result.phases.first() else {
        return Table::new(&["phase"]);
    };
    let mut table = Table::new(&peer_header("max ÷ min", first));
    for phase in &result.phases {
        let mut row = vec![phase.name.to_owned()];
        row.extend(phase.results.iter().map(|r| {
            if r.min > 0.0 {
                format!("{:.2}×", r.max / r.min)
            } else {
                "–".to_owned()
            }
        }));
        table.row(row);
    }
    table
}

fn markdown(result: &InstructionsResult, json: &Path, table: &Table) -> String {
    let run = &result.run;
    let json_name = json.file_name().map_or_else(
        || json.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!(
        "# Instructions per operation\n\n\
         Generated by `regent-bench instructions`; rerun the command below to refresh it. \
         Raw figures: `results/{json_name}`.\n\n\
         Each (peer, phase) ran alone in a child process under callgrind, which counted the \
         instructions executed inside the phase's loop only: {keys} processes, one thread, \
         a fresh table brought to the phase's start state uncounted, the keys and visiting \
         order of `compare`. A null registry that stores nothing ran the same loops; its \
         count (the loop, the key, the call) is the baseline column, subtracted from every \
         peer's. Each figure is the median of {runs} runs, each in its own process. Lower is \
         better. The last column divides regent's count by the smallest other peer's.\n\n\
         A count is not a speed: it ignores cache misses, and a locked read-modify-write \
         counts as one instruction though it costs tens of cycles. But callgrind's count is \
         exact for its run; it moves between runs only with the hasher's seed (foldhash \
         seeds each process at random), which decides where a table grows or shrinks. The \
         second table gives each peer's spread over the runs, the most over the fewest; a \
         timing on this shared VM moves by a fifth between two runs of one binary.\n\n\
         - machine: {cpu} ({cores} cores)\n\
         - rustc: {rustc}\n\
         - commit: {commit}\n\
         - valgrind: {valgrind}\n\
         - hasher: {hasher} (every peer)\n\
         - command: `{command}`\n\n\
         {table}\n\
         Spread over the {runs} runs, the most over the fewest (net of the baseline):\n\n\
         {spread}",
        keys = Count(run.keys),
        runs = run.runs,
        spread = spread(result),
        cpu = run.provenance.cpu,
        cores = run.provenance.cores,
        rustc = run.provenance.rustc,
        commit = run.provenance.commit,
        valgrind = run.valgrind,
        hasher = run.provenance.hasher,
        command = run.provenance.command,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_read_from_either_line() {
        let text = "version: 1\nevents: Ir\nsummary: 1234\ntotals: 1234\n";
        assert_eq!(parse_total(text), Some(1234));
        assert_eq!(parse_total("events: Ir\nsummary: 77\n"), Some(77));
        assert_eq!(parse_total("events: Ir\n"), None);
        assert_eq!(parse_total("totals: many\n"), None);
    }

    #[test]
    fn counted_visits_every_process_once() {
        for (n, stride) in [(1, 1), (10, 1), (10, 3), (97, (1 << 61) - 1)] {
            let seen = std::sync::Mutex::new(vec![0u32; n]);
            let right = counted(n, stride, |i| {
                seen.lock().unwrap()[i] += 1;
                i % 2 == 0
            });
            assert!(
                seen.into_inner().unwrap().iter().all(|&c| c == 1),
                "{n} {stride}"
            );
            assert_eq!(right, n.div_ceil(2));
        }
    }

    #[test]
    fn the_ratio_divides_by_the_fewest_other_peer() {
        let phase = PhaseCounts {
            name: "lookup_hit",
            baseline: 10.0,
            results: vec![
                PeerCount {
                    peer: "regent",
                    instructions_per_op: 150.0,
                    min: 149.0,
                    max: 151.0,
                },
                PeerCount {
                    peer: "dashmap",
                    instructions_per_op: 100.0,
                    min: 100.0,
                    max: 100.0,
                },
                PeerCount {
                    peer: "rwlock",
                    instructions_per_op: 75.0,
                    min: 70.0,
                    max: 80.0,
                },
            ],
        };
        assert_eq!(regent_ratio(&phase), Some(2.0));
    }
}
