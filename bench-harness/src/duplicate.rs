//! `duplicate`: bags side by side ([`crate::bags`]): dispatch over one big key, join/leave
//! churn on a hot key as it grows, and memory per entry. Every peer runs in this process,
//! one after the other, on the same keys and pinned threads.

use std::fs;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::bags::{Bags, DashMapBags, FlurryBags, PapayaBags, RegentBags, RwLockBags, SccBags};
use crate::count::Count;
use crate::report::{self, figure, Provenance, Table};
use crate::scale::plot::{self, Axis, Line, COLORS};
use crate::{alloc, Error};

/// Arguments of `regent-bench duplicate`.
#[derive(Debug, Clone, clap::Args)]
pub struct DuplicateArgs {
    /// Entries under the key that `dispatch` walks
    #[arg(long, default_value = "1M")]
    pub entries: Count,
    /// Hot-key sizes for the churn curve, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1k,10k,100k,1M")]
    pub hot: Vec<Count>,
    /// Joins plus leaves per churn pass, over all threads
    #[arg(long, default_value = "2M")]
    pub churn_ops: Count,
    /// Entries for the memory figure (each pid joins one of `--topics` keys)
    #[arg(long, default_value = "10M")]
    pub memory_entries: Count,
    /// Keys the memory run spreads its entries over
    #[arg(long, default_value = "1k")]
    pub topics: Count,
    /// Churn threads, each pinned to a core
    #[arg(long, default_value = "2")]
    pub threads: NonZeroUsize,
    /// Passes per figure; each figure is the median
    #[arg(long, default_value = "3")]
    pub reps: NonZeroUsize,
    /// Passes of the churn curves (every peer at every point once a pass); each figure is
    /// the median. More than `--reps`: churn is the figure this VM's noise moves most
    #[arg(long, default_value = "5")]
    pub churn_reps: NonZeroUsize,
    /// Folder for the JSON results
    #[arg(long, default_value_os_t = report::workspace_dir().join("results"))]
    pub out: PathBuf,
    /// The markdown report to regenerate
    #[arg(long, default_value_os_t = report::workspace_dir().join("reports").join("duplicate.md"))]
    pub report: PathBuf,
}

#[derive(Debug, Serialize)]
struct DuplicateResult {
    run: Run,
    peers: Vec<PeerFigures>,
}

#[derive(Debug, Serialize)]
struct Run {
    entries: usize,
    churn_ops: usize,
    memory_entries: usize,
    topics: usize,
    threads: usize,
    reps: usize,
    churn_reps: usize,
    #[serde(flatten)]
    provenance: Provenance,
}

#[derive(Debug, Serialize)]
struct PeerFigures {
    peer: &'static str,
    /// Entries per second one thread's `dispatch` walks over the big key.
    dispatch_entries_per_s: f64,
    /// regent only: `dispatch_parallel` with as many workers as threads.
    parallel_dispatch_entries_per_s: Option<f64>,
    /// (hot key size, joins + leaves per second on all threads).
    churn: Vec<(usize, f64)>,
    /// The same churn at a fixed registry size: each smaller hot key churned beside
    /// another key that holds the rest of the largest one's entries, so the registry (and
    /// its pid index) is as large at every point as at `churn`'s last, and only the hot
    /// bag grows. Ends with `churn`'s last point (`others` 0), which it shares. (hot key
    /// size, other entries, joins + leaves per second.)
    churn_fixed: Vec<(usize, usize, f64)>,
    /// Every churn pass's rate, per point of `churn` then of `churn_fixed` (but its last),
    /// in pass order: the spread behind each median.
    churn_passes: Vec<Vec<f64>>,
    /// Live bytes per entry at `memory_entries`, pid index included.
    bytes_per_entry: f64,
}

/// Runs `duplicate`, prints its tables, writes `duplicate-<stamp>.json` and the report.
///
/// # Errors
///
/// If a peer returned a wrong count, or a file could not be written.
pub fn run(args: &DuplicateArgs) -> Result<PathBuf, Error> {
    let provenance = Provenance::detect(&format!(
        "duplicate --entries {} --hot {} --churn-ops {} --memory-entries {} --topics {} --threads {} --reps {} --churn-reps {}",
        args.entries,
        args.hot.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        args.churn_ops,
        args.memory_entries,
        args.topics,
        args.threads,
        args.reps,
        args.churn_reps,
    ));
    let stamp = report::utc_stamp(SystemTime::now());
    let mut peers = vec![
        measure::<RegentBags<false>>(args, true)?,
        measure::<RegentBags<true>>(args, true)?,
        measure::<DashMapBags>(args, false)?,
        measure::<SccBags>(args, false)?,
        measure::<PapayaBags>(args, false)?,
        measure::<FlurryBags>(args, false)?,
        measure::<RwLockBags>(args, false)?,
    ];
    let churners: [Churner; 7] = [
        churn_point::<RegentBags<false>>,
        churn_point::<RegentBags<true>>,
        churn_point::<DashMapBags>,
        churn_point::<SccBags>,
        churn_point::<PapayaBags>,
        churn_point::<FlurryBags>,
        churn_point::<RwLockBags>,
    ];
    churn_curves(args, &churners, &mut peers)?;
    let result = DuplicateResult {
        run: Run {
            entries: args.entries.0,
            churn_ops: args.churn_ops.0,
            memory_entries: args.memory_entries.0,
            topics: args.topics.0,
            threads: args.threads.get(),
            reps: args.reps.get(),
            churn_reps: args.churn_reps.get(),
            provenance,
        },
        peers,
    };
    let body = format!("{}\n{}", result.run.provenance.describe(), tables(&result));
    print!("{body}");
    let json = report::write_json(&args.out, "duplicate", &stamp, &result)?;
    println!("wrote {}", json.display());
    let charts = churn_charts(&args.report, &result)?;
    write_markdown(&args.report, &format!("{body}{charts}"), &json, &result.run)?;
    println!("wrote {}", args.report.display());
    Ok(json)
}

const KEY: u64 = 7;
/// Pids of the control's other key: below the churn threads' ranges (`(t + 1) << 40`),
/// above any pre-filled pid.
const OTHER_PIDS: u64 = 1 << 39;

fn measure<B: Bags + 'static>(args: &DuplicateArgs, parallel: bool) -> Result<PeerFigures, Error> {
    let reps = args.reps.get();
    let threads = args.threads.get();

    // Dispatch: one key, `entries` pids.
    let bags = B::default();
    let entries = args.entries.0;
    fill(&bags, entries);
    let mut walks = Vec::with_capacity(reps);
    let mut parallel_walks = Vec::with_capacity(reps);
    for _ in 0..reps {
        walks.push(dispatch_pass(&bags, entries)?);
        if parallel {
            let any = &bags as &dyn std::any::Any;
            if let Some(regent) = any.downcast_ref::<RegentBags<false>>() {
                parallel_walks.push(parallel_walk(regent, threads, entries)?);
            } else if let Some(regent) = any.downcast_ref::<RegentBags<true>>() {
                parallel_walks.push(parallel_walk(regent, threads, entries)?);
            }
        }
    }
    drop(bags);

    // Memory: `memory_entries` pids, each joined to one of `topics` keys.
    let mut bytes = Vec::with_capacity(1);
    {
        let bags = B::default();
        bags.quiesce();
        let before = alloc::live();
        let (n, topics) = (args.memory_entries.0 as u64, args.topics.0.max(1) as u64);
        let progress = report::progress(&format!("{} memory", B::NAME));
        progress.set_length(n);
        for pid in 0..n {
            bags.join(pid, pid.wrapping_mul(0x9E37_79B9_7F4A_7C15) % topics, pid);
            if pid % 65_536 == 0 {
                progress.set_position(pid);
            }
        }
        drop(progress);
        bags.quiesce();
        bytes.push(alloc::live().saturating_sub(before) as f64 / n as f64);
    }

    Ok(PeerFigures {
        peer: B::NAME,
        dispatch_entries_per_s: median(walks),
        parallel_dispatch_entries_per_s: (!parallel_walks.is_empty())
            .then(|| median(parallel_walks)),
        churn: Vec::new(),
        churn_fixed: Vec::new(),
        churn_passes: Vec::new(),
        bytes_per_entry: median(bytes),
    })
}

/// One churn measurement of a peer: `(hot, others, threads, ops)` to joins and leaves per
/// second (see [`churn_point`]).
type Churner = fn(usize, usize, usize, usize) -> Result<f64, Error>;

/// The churn curves of every peer, into `peers` (in `churners`' order).
///
/// Each thread keeps a window of its own subscribers on the hot key, joining a new one and
/// letting the oldest leave. The speed of this shared VM's cores changes by 2× or more
/// from minute to minute (the two vCPUs' placement), so every pass measures each peer at
/// each point once, in turn, starting at another peer each pass: a slow spell then lands
/// on every peer and point alike instead of bending one curve. The points are the hot
/// sizes alone (`churn`: the registry grows with the key), then each smaller one beside
/// another key holding the rest of the largest one's entries (`churn_fixed`: the registry
/// keeps the largest point's size).
fn churn_curves(
    args: &DuplicateArgs,
    churners: &[Churner],
    peers: &mut [PeerFigures],
) -> Result<(), Error> {
    let (reps, threads, ops) = (args.churn_reps.get(), args.threads.get(), args.churn_ops.0);
    let large = args.hot.iter().map(|c| c.0).max().unwrap_or(0);
    let mut points: Vec<(usize, usize)> = args.hot.iter().map(|h| (h.0, 0)).collect();
    let growing = points.len();
    points.extend(
        args.hot
            .iter()
            .filter(|h| h.0 < large)
            .map(|h| (h.0, large - h.0)),
    );
    let mut rates = vec![vec![Vec::with_capacity(reps); points.len()]; churners.len()];
    let progress = report::progress("churn");
    progress.set_length((reps * churners.len() * points.len()) as u64);
    for rep in 0..reps {
        for turn in 0..churners.len() {
            let peer = (rep + turn) % churners.len();
            for (point, &(hot, others)) in points.iter().enumerate() {
                rates[peer][point].push(churners[peer](hot, others, threads, ops)?);
                progress.inc(1);
            }
        }
    }
    drop(progress);
    for (figures, rates) in peers.iter_mut().zip(rates) {
        figures.churn_passes.clone_from(&rates);
        let medians: Vec<(usize, usize, f64)> = points
            .iter()
            .zip(rates)
            .map(|(&(hot, others), rates)| (hot, others, median(rates)))
            .collect();
        figures.churn = medians[..growing].iter().map(|m| (m.0, m.2)).collect();
        figures.churn_fixed = medians[growing..].to_vec();
        if let Some(&last) = medians[..growing].iter().max_by_key(|m| m.0) {
            if !figures.churn_fixed.is_empty() {
                figures.churn_fixed.push(last);
            }
        }
    }
    Ok(())
}

/// A fresh peer with `hot` entries on the benchmark key and `others` on another key, then
/// one [`churn_pass`] on the benchmark key.
///
/// # Errors
///
/// As `churn_pass`.
pub fn churn_point<B: Bags>(
    hot: usize,
    others: usize,
    threads: usize,
    ops: usize,
) -> Result<f64, Error> {
    let bags = B::default();
    fill(&bags, hot);
    for i in 0..others as u64 {
        bags.join(OTHER_PIDS + i, KEY + 1, i);
    }
    churn_pass(&bags, threads, ops)
}

/// Joins pids `0..entries` to the benchmark key.
pub fn fill<B: Bags>(bags: &B, entries: usize) {
    for pid in 0..entries as u64 {
        bags.join(pid, KEY, pid);
    }
}

/// One thread walks the benchmark key (holding `entries`); returns entries per second.
///
/// # Errors
///
/// If the walk saw another number of entries.
pub fn dispatch_pass<B: Bags>(bags: &B, entries: usize) -> Result<f64, Error> {
    let start = Instant::now();
    let mut sum = 0u64;
    let seen = bags.dispatch(KEY, |pid, value| sum = sum.wrapping_add(pid ^ value));
    let rate = entries as f64 / start.elapsed().as_secs_f64();
    black_box(sum);
    check(B::NAME, "dispatch", seen, entries)?;
    Ok(rate)
}

fn parallel_walk<const BY_PID: bool>(
    regent: &RegentBags<BY_PID>,
    workers: usize,
    entries: usize,
) -> Result<f64, Error> {
    let start = Instant::now();
    let seen = regent.dispatch_parallel(KEY, workers, |pid, value| {
        black_box(pid ^ value);
    });
    let rate = entries as f64 / start.elapsed().as_secs_f64();
    check("regent", "dispatch_parallel", seen, entries)?;
    Ok(rate)
}

/// `ops` joins and leaves on the benchmark key over `threads` pinned threads, each keeping
/// a window of 1,024 subscribers of its own; returns operations per second.
///
/// # Errors
///
/// If a leave removed another number of entries than its join added.
pub fn churn_pass<B: Bags>(bags: &B, threads: usize, ops: usize) -> Result<f64, Error> {
    const WINDOW: u64 = 1024;
    let per_thread = (ops / threads / 2) as u64;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let start = Instant::now();
    let left: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let core = cores.get(t as usize % cores.len().max(1)).copied();
                s.spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    // Pids far above the pre-filled ones, one range per thread.
                    let base = (t + 1) << 40;
                    let mut left = 0;
                    for i in 0..per_thread {
                        bags.join(base + i, KEY, i);
                        if i >= WINDOW {
                            left += bags.leave(base + i - WINDOW, KEY);
                        }
                    }
                    left
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panics"))
            .sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let expected = threads * per_thread.saturating_sub(WINDOW) as usize;
    check("a peer", "churn leaves", left, expected)?;
    Ok((threads as u64 * per_thread + left as u64) as f64 / elapsed)
}

fn check(peer: &str, what: &str, got: usize, expected: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{peer}: {what} saw {got} entries, expected {expected}").into())
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn tables(result: &DuplicateResult) -> String {
    let peers = &result.peers;
    let mut header = vec!["figure".to_owned()];
    header.extend(peers.iter().map(|p| p.peer.to_owned()));
    header.push("regent (by key) ÷ best peer".to_owned());
    let mut table = Table::new(&header);
    let row = |name: String, xs: Vec<f64>, higher_is_better: bool| {
        let best = xs[2..]
            .iter()
            .copied()
            .reduce(if higher_is_better { f64::max } else { f64::min })
            .unwrap_or(f64::NAN);
        let mut cells = vec![name];
        cells.extend(xs.iter().map(|&x| figure(x)));
        cells.push(format!("{:.2}×", xs[0] / best));
        cells
    };
    table.row(row(
        format!(
            "dispatch, M entries/s ({} entries, 1 thread)",
            Count(result.run.entries)
        ),
        peers
            .iter()
            .map(|p| p.dispatch_entries_per_s / 1e6)
            .collect(),
        true,
    ));
    for (i, &(hot, _)) in peers[0].churn.iter().enumerate() {
        table.row(row(
            format!(
                "join+leave on a {} key, Mops/s ({} threads)",
                Count(hot),
                result.run.threads
            ),
            peers.iter().map(|p| p.churn[i].1 / 1e6).collect(),
            true,
        ));
    }
    // The fixed-size curve's last point is the growing curve's last row, shown once.
    let fixed = peers[0].churn_fixed.len().saturating_sub(1);
    for (i, &(hot, others, _)) in peers[0].churn_fixed[..fixed].iter().enumerate() {
        table.row(row(
            format!(
                "join+leave on a {} key beside {} entries of another key, Mops/s ({} threads)",
                Count(hot),
                Count(others),
                result.run.threads
            ),
            peers.iter().map(|p| p.churn_fixed[i].2 / 1e6).collect(),
            true,
        ));
    }
    table.row(row(
        format!(
            "bytes per entry ({} entries over {} keys)",
            Count(result.run.memory_entries),
            Count(result.run.topics)
        ),
        peers.iter().map(|p| p.bytes_per_entry).collect(),
        false,
    ));
    let mut spread = String::from(
        "\nSpread of the churn passes behind each median (slowest–fastest pass, Mops/s; the \
         rows above in order):\n\n",
    );
    for p in peers {
        let ranges: Vec<String> = p
            .churn_passes
            .iter()
            .map(|rates| {
                let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = rates.iter().copied().fold(0.0, f64::max);
                format!("{}–{}", figure(lo / 1e6), figure(hi / 1e6))
            })
            .collect();
        spread.push_str(&format!("- {}: {}\n", p.peer, ranges.join(", ")));
    }
    let mut parallel = String::from(
        "\nParallel dispatch (regent's `dispatch_parallel`, scoped threads spawned per call):\n\n",
    );
    for p in peers
        .iter()
        .filter(|p| p.parallel_dispatch_entries_per_s.is_some())
    {
        let rate = p.parallel_dispatch_entries_per_s.unwrap_or(f64::NAN);
        parallel.push_str(&format!(
            "- {}: {} M entries/s with {} workers, {:.2}× its single-thread dispatch\n",
            p.peer,
            figure(rate / 1e6),
            result.run.threads,
            rate / p.dispatch_entries_per_s
        ));
    }
    format!("{table}{spread}{parallel}")
}

/// Draws the churn curves into the folder beside the report named after it
/// (`churn.svg`, and `churn-fixed.svg` when there is a fixed-size curve); returns the
/// markdown that shows them.
fn churn_charts(report: &Path, result: &DuplicateResult) -> Result<String, Error> {
    let (dir, stem) = report::chart_dir(report, "duplicate")?;
    let axes = (
        Axis {
            desc: "entries on the hot key (log scale)",
            log: true,
            label: |x| Count(x.round() as usize).to_string(),
        },
        Axis {
            desc: "joins + leaves, Mops/s",
            log: false,
            label: figure,
        },
    );
    let lines = |points: fn(&PeerFigures) -> Vec<(f64, f64)>| -> Vec<Line> {
        result
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| Line {
                name: p.peer.to_owned(),
                color: COLORS[i % COLORS.len()],
                points: points(p),
            })
            .collect()
    };
    let threads = result.run.threads;
    plot::lines(
        &dir.join("churn.svg"),
        &format!("Join+leave as the hot key grows, {threads} threads"),
        axes,
        &lines(|p| p.churn.iter().map(|&(h, r)| (h as f64, r / 1e6)).collect()),
    )?;
    let mut markdown = format!(
        "\nJoin+leave as the hot key grows, and the registry with it:\n\n\
         ![churn as the key grows]({stem}/churn.svg)\n"
    );
    let Some(&(large, ..)) = result.peers[0].churn_fixed.last() else {
        return Ok(markdown);
    };
    plot::lines(
        &dir.join("churn-fixed.svg"),
        &format!(
            "Join+leave as the hot key grows, {} entries in all",
            Count(large)
        ),
        axes,
        &lines(|p| {
            p.churn_fixed
                .iter()
                .map(|&(h, _, r)| (h as f64, r / 1e6))
                .collect()
        }),
    )?;
    markdown.push_str(&format!(
        "\nThe same with the registry held at {} entries (the rest under another key), so \
         that only the hot key grows:\n\n![churn at a fixed registry size]({stem}/churn-fixed.svg)\n",
        Count(large)
    ));
    Ok(markdown)
}

fn write_markdown(path: &Path, body: &str, json: &Path, run: &Run) -> std::io::Result<()> {
    let json = json.strip_prefix(report::workspace_dir()).unwrap_or(json);
    let markdown = format!(
        "# Duplicate registries beside their peers\n\n\
         Generated by `regent-bench duplicate`; rerun the command below to refresh it. Raw \
         figures: `{}`.\n\n\
         Every peer ran in one process on the same keys. Each figure is the median of {} \
         passes ({} for churn, whose passes take every peer at every point once each, in \
         turn, so that this VM's slow spells fall on all alike). *dispatch*: one thread walks every entry of one key \
         that holds {} entries. *join+leave*: {} pinned threads each keep a window of 1,024 \
         subscribers of their own on one hot key, pre-filled to the size shown, joining a \
         new one and letting the oldest leave; the rows show how each peer's rate changes \
         as the key grows, and the registry with it. The rows *beside* hold the registry at \
         the largest point's size instead: the smaller hot keys churned while another key \
         holds the rest of the entries, so that the pid index and the tables stay as large \
         at every point and only the hot key grows. Where the first curve falls and the \
         second stays level, the fall comes from the registry's size, not from the hot \
         key's. *bytes per entry*: live bytes (counting allocator) after {} entries, each \
         pid joining one of {} keys, pid index included. The last column \
         divides regent's (partitioned by key) figure by the best non-regent peer's. \
         `regent (by pid)` spreads a key's entries over partitions by pid (Elixir's \
         `{{:duplicate, :pid}}`). The other peers are the bags a runtime would build from \
         each crate: a map of per-key member maps plus a pid → keys index for exits \
         (dashmap, scc, papaya, flurry; papaya and flurry keep emptied keys, since their \
         values are immutable and removing a key's map could race a join into it), or one \
         `RwLock` around two hashbrown maps (rwlock).\n\n{body}",
        json.display(),
        run.reps,
        run.churn_reps,
        Count(run.entries),
        run.threads,
        Count(run.memory_entries),
        Count(run.topics),
    );
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, markdown)
}
