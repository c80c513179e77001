//! What `compare` measures, and how one Rust peer is measured on one key count and thread
//! count.

use crate::bags::{Bags, DashMapBags, FlurryBags, PapayaBags, RegentBags, RwLockBags, SccBags};
use crate::peers::{
    DashMapPeer, FlurryPeer, PapayaPeer, Peer, RegentPeer, Registry, RwLockPeer, SccPeer,
};
use crate::workload::{ensure_empty, middle, prepare, Keys, Phase, State};
use crate::{alloc, duplicate, floor, report, Error};

/// A workload of `compare`, named in tables and JSON as on the command line.
///
/// `dispatch` and `join_leave` run on duplicate registries: each Rust peer's bag adapter
/// ([`crate::bags`]), built from the same crate as its name table (regent partitioned by
/// key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Workload {
    Register,
    RegisterConflict,
    LookupHit,
    LookupMiss,
    Unregister,
    ProcessDown,
    ReadMix,
    Memory,
    Dispatch,
    JoinLeave,
    LookupSingle,
    LookupMany,
    LookupPinned,
    RegisterSingle,
    RegisterMany,
    ProcessDownSingle,
    ProcessDownMany,
}

/// How a workload is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One timed pass over every process: figures in Mops/s.
    Pass(Phase),
    /// Live bytes per registration after registering every key into a fresh table.
    Memory,
    /// A duplicate-registry workload, in Mops/s (entries visited, or joins and leaves).
    Bags,
    /// regent only, single calls against batch calls, each workload's passes interleaved
    /// with the others': lookups on one table of its own (`whereis` one by one,
    /// `whereis_many`, or `whereis` under one `pin`), or registrations and exits on fresh
    /// presized tables (`register` and `process_down` one by one, or `register_many` and
    /// `process_down_many`); in Mops/s.
    Batch,
}

impl Workload {
    /// Every workload, in the order they run and are reported.
    pub const ALL: [Workload; 17] = [
        Workload::Register,
        Workload::RegisterConflict,
        Workload::LookupHit,
        Workload::LookupMiss,
        Workload::Unregister,
        Workload::ProcessDown,
        Workload::ReadMix,
        Workload::Memory,
        Workload::Dispatch,
        Workload::JoinLeave,
        Workload::LookupSingle,
        Workload::LookupMany,
        Workload::LookupPinned,
        Workload::RegisterSingle,
        Workload::RegisterMany,
        Workload::ProcessDownSingle,
        Workload::ProcessDownMany,
    ];

    #[must_use]
    pub const fn kind(self) -> Kind {
        match self {
            Workload::Register => Kind::Pass(Phase::Register),
            Workload::RegisterConflict => Kind::Pass(Phase::RegisterConflict),
            Workload::LookupHit => Kind::Pass(Phase::LookupHit),
            Workload::LookupMiss => Kind::Pass(Phase::LookupMiss),
            Workload::Unregister => Kind::Pass(Phase::Unregister),
            Workload::ProcessDown => Kind::Pass(Phase::ProcessDown),
            Workload::ReadMix => Kind::Pass(Phase::ReadMix),
            Workload::Memory => Kind::Memory,
            Workload::Dispatch | Workload::JoinLeave => Kind::Bags,
            Workload::LookupSingle
            | Workload::LookupMany
            | Workload::LookupPinned
            | Workload::RegisterSingle
            | Workload::RegisterMany
            | Workload::ProcessDownSingle
            | Workload::ProcessDownMany => Kind::Batch,
        }
    }

    /// The name used in tables and JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Workload::Dispatch => "dispatch",
            Workload::JoinLeave => "join_leave",
            Workload::LookupSingle => "lookup_single",
            Workload::LookupMany => "lookup_many",
            Workload::LookupPinned => "lookup_pinned",
            Workload::RegisterSingle => "register_single",
            Workload::RegisterMany => "register_many",
            Workload::ProcessDownSingle => "process_down_single",
            Workload::ProcessDownMany => "process_down_many",
            _ => match self.kind() {
                Kind::Pass(phase) => phase.name(),
                Kind::Memory | Kind::Bags | Kind::Batch => "memory",
            },
        }
    }

    /// Whether the [`floor`] runs the workload: the unique-registry passes and memory, not
    /// the bags or regent's batch calls.
    #[must_use]
    pub const fn floor_runs(self) -> bool {
        matches!(self.kind(), Kind::Pass(_) | Kind::Memory)
    }

    /// Whether the workload is lookups only, and so quoted against the memory limit.
    #[must_use]
    pub const fn is_lookup(self) -> bool {
        matches!(
            self,
            Workload::LookupHit
                | Workload::LookupMiss
                | Workload::LookupSingle
                | Workload::LookupMany
                | Workload::LookupPinned
        )
    }

    /// One line saying what the workload does, for the report.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Workload::Register => "every process registers its own key into a fresh table",
            Workload::RegisterConflict => {
                "for every key, another process tries to register it and is refused"
            }
            Workload::LookupHit => "every key is looked up, in scattered order",
            Workload::LookupMiss => "as many lookups of keys nobody holds",
            Workload::Unregister => "every process unregisters its key (owner-only removal)",
            Workload::ProcessDown => {
                "every process exits and the registry removes its key (its pid index entry too)"
            }
            Workload::ReadMix => "90% lookups, 5% process exits, 5% registrations by new processes",
            Workload::Memory => {
                "live bytes after registering every key, per key, pid index included"
            }
            Workload::Dispatch => {
                "one thread visits every entry of one topic of up to 1M entries (M entries/s)"
            }
            Workload::JoinLeave => {
                "each thread joins a hot topic (1,000 standing entries) and leaves it again"
            }
            Workload::LookupSingle => {
                "every key looked up with one `whereis` call each (regent only), on the table, \
                 threads and key order that `lookup_many` and `lookup_pinned` use, their passes \
                 taking turns: the baseline those two are divided by"
            }
            Workload::LookupMany => {
                "every key looked up with regent's `whereis_many` in batches of 16 (other peers \
                 have no batch call), on the table of `lookup_single`"
            }
            Workload::LookupPinned => {
                "every key looked up with one `whereis` call each, under one `Unique::pin` per \
                 16 keys (regent only), on the table of `lookup_single`: what a single lookup \
                 loses to the epoch pin's barrier"
            }
            Workload::RegisterSingle => {
                "every process registers its own key with one `register` call each (regent \
                 only), into a fresh table presized for every key, its passes taking turns with \
                 `register_many`'s: the baseline that one is divided by"
            }
            Workload::RegisterMany => {
                "as `register_single`, with `register_many` over batches of 1,024 processes \
                 (other peers have no batch call)"
            }
            Workload::ProcessDownSingle => {
                "every process of `register_single`'s table exits, one `process_down` call each \
                 (regent only): the baseline `process_down_many` is divided by"
            }
            Workload::ProcessDownMany => {
                "as `process_down_single`, with `process_down_many` over batches of 1,024 \
                 exits, on `register_many`'s table"
            }
        }
    }
}

/// One Rust peer's figures on one key count and thread count.
#[derive(Debug)]
pub struct Figures {
    /// The middle pass of each measured phase, by elapsed time.
    pub mops: Vec<(Phase, f64)>,
    pub bytes_per_entry: Option<f64>,
    /// Bag workloads (every Rust peer), and regent's batch lookup.
    pub bags: Vec<(Workload, f64)>,
}

impl Figures {
    /// One figure per workload from `passes`, each of which measured the same workloads
    /// once: the middle pass by each figure (for an even count, the slower of the two
    /// middle ones, the one the passes' elapsed times would pick).
    #[must_use]
    pub fn middle_of(passes: &[Figures]) -> Figures {
        let bytes: Vec<f64> = passes.iter().filter_map(|f| f.bytes_per_entry).collect();
        Figures {
            mops: middles(passes, |f| &f.mops),
            bytes_per_entry: (!bytes.is_empty()).then(|| middle(bytes, f64::total_cmp)),
            bags: middles(passes, |f| &f.bags),
        }
    }

    /// The figure `workload` reports: Mops/s for passes, bytes per entry for memory.
    #[must_use]
    pub fn of(&self, workload: Workload) -> Option<f64> {
        match workload.kind() {
            Kind::Pass(phase) => find(&self.mops, phase),
            Kind::Memory => self.bytes_per_entry,
            Kind::Bags | Kind::Batch => find(&self.bags, workload),
        }
    }
}

/// The figure of `what` in `figures`.
fn find<T: PartialEq>(figures: &[(T, f64)], what: T) -> Option<f64> {
    figures.iter().find(|(w, _)| *w == what).map(|f| f.1)
}

/// For each rate the first pass has in `of`, the middle one of all passes' (Mops/s).
fn middles<T: Copy + PartialEq>(
    passes: &[Figures],
    of: impl Fn(&Figures) -> &[(T, f64)],
) -> Vec<(T, f64)> {
    let Some(first) = passes.first() else {
        return Vec::new();
    };
    of(first)
        .iter()
        .map(|&(what, _)| {
            let all = passes.iter().filter_map(|f| find(of(f), what)).collect();
            // Higher is faster: in descending order the later middle one is the slower.
            (what, middle(all, |a: &f64, b: &f64| b.total_cmp(a)))
        })
        .collect()
}

/// Measures every peer of `peers` (Rust ones), and the [`floor`] if asked, on
/// `workloads` in `reps` rounds, each of which runs one pass of every peer in turn over
/// fresh tables, so that a change in the machine's state during the run (another tenant's
/// load, where the host puts the vCPUs) falls on every peer alike; each figure is the
/// middle of a peer's `reps` passes. regent's batch lookups run after the rounds, their
/// own passes taking turns. Returns each peer's figures by name, the floor's last.
///
/// # Errors
///
/// If a peer returned a wrong result or held entries after every process went down.
pub fn measure_in_turn(
    peers: &[Peer],
    with_floor: bool,
    workloads: &[Workload],
    keys: Keys,
    threads: usize,
    reps: usize,
) -> Result<Vec<(&'static str, Figures)>, Error> {
    let (batch, rest): (Vec<Workload>, Vec<Workload>) =
        workloads.iter().partition(|w| w.kind() == Kind::Batch);
    let (lookups, writes): (Vec<Workload>, Vec<Workload>) =
        batch.iter().partition(|w| w.is_lookup());
    let mut passes: Vec<Vec<Figures>> = peers.iter().map(|_| Vec::with_capacity(reps)).collect();
    let mut floors = Vec::with_capacity(reps);
    for _ in 0..reps {
        for (&peer, passes) in peers.iter().zip(&mut passes) {
            passes.push(measure_pass(peer, &rest, keys, threads)?);
        }
        if with_floor {
            floors.push(measure_floor(&rest, keys, threads)?);
        }
    }
    let mut figures: Vec<(&'static str, Figures)> = peers
        .iter()
        .zip(passes)
        .map(|(&peer, passes)| {
            let mut figures = Figures::middle_of(&passes);
            if peer == Peer::Regent && !lookups.is_empty() {
                figures
                    .bags
                    .extend(measure_batches(&lookups, keys, threads, reps));
            }
            if peer == Peer::Regent && !writes.is_empty() {
                figures
                    .bags
                    .extend(measure_write_batches(&writes, keys, threads, reps));
            }
            (peer.name(), figures)
        })
        .collect();
    if with_floor {
        figures.push((floor::NAME, Figures::middle_of(&floors)));
    }
    Ok(figures)
}

/// The registry phases of `workloads`, in order.
fn passes(workloads: &[Workload]) -> Vec<Phase> {
    workloads
        .iter()
        .filter_map(|w| match w.kind() {
            Kind::Pass(phase) => Some(phase),
            Kind::Memory | Kind::Bags | Kind::Batch => None,
        })
        .collect()
}

/// One pass of the [`floor`] on the registry workloads of `workloads` and memory: the
/// figures a pass of a Rust peer has for them.
fn measure_floor(workloads: &[Workload], keys: Keys, threads: usize) -> Result<Figures, Error> {
    let phases = passes(workloads);
    let progress = report::progress(floor::NAME);
    let memory = workloads.contains(&Workload::Memory);
    let pass = floor::run(keys, threads, &phases, memory, &progress)?;
    Ok(Figures {
        mops: phases
            .into_iter()
            .zip(pass.timings)
            .map(|(phase, timing)| (phase, timing.mops()))
            .collect(),
        bytes_per_entry: pass.bytes_per_entry,
        bags: Vec::new(),
    })
}

/// One pass of `peer` (a Rust one) on `workloads` over fresh tables.
fn measure_pass(
    peer: Peer,
    workloads: &[Workload],
    keys: Keys,
    threads: usize,
) -> Result<Figures, Error> {
    let measure = match peer {
        Peer::Regent => measure::<RegentPeer>,
        Peer::Dashmap => measure::<DashMapPeer>,
        Peer::Scc => measure::<SccPeer>,
        Peer::Papaya => measure::<PapayaPeer>,
        Peer::Flurry => measure::<FlurryPeer>,
        Peer::Rwlock => measure::<RwLockPeer>,
        Peer::Beam => panic!("beam runs in its own process"),
    };
    let mut figures = measure(workloads, keys, threads)?;
    let bags: &[Workload] = &workloads
        .iter()
        .copied()
        .filter(|w| w.kind() == Kind::Bags)
        .collect::<Vec<_>>();
    if !bags.is_empty() {
        figures.bags = match peer {
            Peer::Regent => measure_bags::<RegentBags<false>>(bags, keys, threads)?,
            Peer::Dashmap => measure_bags::<DashMapBags>(bags, keys, threads)?,
            Peer::Scc => measure_bags::<SccBags>(bags, keys, threads)?,
            Peer::Papaya => measure_bags::<PapayaBags>(bags, keys, threads)?,
            Peer::Flurry => measure_bags::<FlurryBags>(bags, keys, threads)?,
            Peer::Rwlock => measure_bags::<RwLockBags>(bags, keys, threads)?,
            Peer::Beam => unreachable!("beam was refused above"),
        };
    }
    Ok(figures)
}

/// regent's lookups of every key on `threads` threads, over one table: one `whereis` per
/// key (`lookup_single`), `whereis_many` in batches of 16 (`lookup_many`), or one `whereis`
/// per key under one pin per 16 keys (`lookup_pinned`). Each of `reps` rounds runs one pass
/// of every workload in turn, so that they share the table, the keys, their order and the
/// machine's moods; each figure is the median of its `reps` passes, in Mops/s.
fn measure_batches(
    workloads: &[Workload],
    keys: Keys,
    threads: usize,
    reps: usize,
) -> Vec<(Workload, f64)> {
    const BATCH: usize = 16;
    let registry = regent::Unique::<u64, u64, regent::Pid, crate::peers::Hasher>::builder()
        .hasher(crate::peers::Hasher::default())
        .build();
    let n = keys.count();
    for i in 0..n {
        let _ = registry.register(regent::Pid::new(i as u64), keys.key(i), i as u64);
    }
    let all: Vec<u64> = (0..n).map(|i| keys.key(i)).collect();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let pass = |workload: Workload| {
        let start = std::time::Instant::now();
        let found: usize = std::thread::scope(|s| {
            let handles: Vec<_> = all
                .chunks(n.div_ceil(threads).max(1))
                .enumerate()
                .map(|(t, share)| {
                    let (registry, core) = (&registry, cores.get(t % cores.len().max(1)).copied());
                    s.spawn(move || {
                        if let Some(core) = core {
                            core_affinity::set_for_current(core);
                        }
                        match workload {
                            Workload::LookupSingle => share
                                .iter()
                                .filter(|k| registry.whereis(*k).is_some())
                                .count(),
                            Workload::LookupPinned => share
                                .chunks(BATCH)
                                .map(|batch| {
                                    let pinned = registry.pin();
                                    batch
                                        .iter()
                                        .filter(|k| pinned.whereis(*k).is_some())
                                        .count()
                                })
                                .sum(),
                            _ => share
                                .chunks(BATCH)
                                .map(|batch| registry.whereis_many(batch).iter().flatten().count())
                                .sum(),
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("no panics"))
                .sum()
        });
        let elapsed = start.elapsed().as_secs_f64();
        assert_eq!(found, n, "{} found every key", workload.name());
        n as f64 / elapsed / 1e6
    };
    let mut rates: Vec<Vec<f64>> = vec![Vec::with_capacity(reps); workloads.len()];
    for _ in 0..reps {
        for (rates, &workload) in rates.iter_mut().zip(workloads) {
            rates.push(pass(workload));
        }
    }
    workloads
        .iter()
        .zip(rates)
        .map(|(&workload, rates)| (workload, middle(rates, f64::total_cmp)))
        .collect()
}

/// A thread's share of the `(pid, key)` pairs.
type Share = [(u64, u64)];

/// regent's registrations and exits of every key on `threads` threads (each its share of
/// the keys, in order), one call per process (`register_single`, `process_down_single`) or
/// one batch call per 1,024 processes (`register_many`, `process_down_many`), on a fresh
/// table presized for every key, so that the growth both pay alike does not hide what the
/// batch saves. Each of `reps` rounds runs a single-call pass and a batch pass in turn; each
/// figure is the median of its `reps` passes, in Mops/s.
fn measure_write_batches(
    workloads: &[Workload],
    keys: Keys,
    threads: usize,
    reps: usize,
) -> Vec<(Workload, f64)> {
    const BATCH: usize = 1_024;
    let n = keys.count();
    let all: Vec<(u64, u64)> = (0..n).map(|i| (i as u64 + 1, keys.key(i))).collect();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    // Runs `f` on each thread's share and returns the rate, in Mops/s.
    let timed = |f: &(dyn Fn(&Share) + Sync)| {
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for (t, share) in all.chunks(n.div_ceil(threads).max(1)).enumerate() {
                let core = cores.get(t % cores.len().max(1)).copied();
                s.spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    f(share);
                });
            }
        });
        n as f64 / start.elapsed().as_secs_f64() / 1e6
    };
    let pass = |many: bool| {
        let registry = regent::Unique::<u64, u64, regent::Pid, crate::peers::Hasher>::builder()
            .hasher(crate::peers::Hasher::default())
            .capacity(n)
            .build();
        let pid = regent::Pid::new;
        let register = timed(&|share| {
            if many {
                for batch in share.chunks(BATCH) {
                    let refused =
                        registry.register_many(batch.iter().map(|&(p, k)| (pid(p), k, p)));
                    assert!(refused.is_empty(), "every key is free");
                }
            } else {
                for &(p, k) in share {
                    assert!(registry.register(pid(p), k, p).is_ok(), "every key is free");
                }
            }
        });
        assert_eq!(registry.count(), n, "every key registered");
        let down = timed(&|share| {
            let gone = if many {
                share
                    .chunks(BATCH)
                    .map(|batch| registry.process_down_many(batch.iter().map(|&(p, _)| pid(p))))
                    .sum::<usize>()
            } else {
                share
                    .iter()
                    .map(|&(p, _)| registry.process_down(pid(p)))
                    .sum()
            };
            assert_eq!(gone, share.len(), "each process held one key");
        });
        assert_eq!((registry.count(), registry.monitors()), (0, 0), "all gone");
        (register, down)
    };
    let mut single = Vec::with_capacity(reps);
    let mut many = Vec::with_capacity(reps);
    for _ in 0..reps {
        single.push(pass(false));
        many.push(pass(true));
    }
    let median = |passes: &[(f64, f64)], which: fn(&(f64, f64)) -> f64| {
        middle(passes.iter().map(which).collect(), f64::total_cmp)
    };
    workloads
        .iter()
        .map(|&workload| {
            let rate = match workload {
                Workload::RegisterSingle => median(&single, |p| p.0),
                Workload::RegisterMany => median(&many, |p| p.0),
                Workload::ProcessDownSingle => median(&single, |p| p.1),
                _ => median(&many, |p| p.1),
            };
            (workload, rate)
        })
        .collect()
}

/// One pass of the bag workloads: dispatch over a topic of `min(keys, 1M)` entries (one
/// thread), and join/leave on a hot topic of 1,000 standing entries (`min(keys, 1M)`
/// operations over `threads` threads), each on a fresh registry.
fn measure_bags<B: Bags + 'static>(
    workloads: &[Workload],
    keys: Keys,
    threads: usize,
) -> Result<Vec<(Workload, f64)>, Error> {
    let size = keys.count().min(1_000_000);
    let mut out = Vec::new();
    for &workload in workloads {
        let bags = B::default();
        let rate = match workload {
            Workload::Dispatch => {
                duplicate::fill(&bags, size);
                duplicate::dispatch_pass(&bags, size)?
            }
            _ => {
                duplicate::fill(&bags, 1_000);
                duplicate::churn_pass(&bags, threads, size)?
            }
        };
        out.push((workload, rate / 1e6));
    }
    Ok(out)
}

/// One pass: the phases of `workloads` in order on one fresh table, making the state each
/// starts from with untimed passes in between. The memory reading is taken the first time
/// the table holds every key.
fn measure<R: Registry>(
    workloads: &[Workload],
    keys: Keys,
    threads: usize,
) -> Result<Figures, Error> {
    let phases = passes(workloads);
    let memory = workloads.contains(&Workload::Memory);
    // Allocated up front: growing it mid-pass would count against the peer.
    let mut mops = Vec::with_capacity(phases.len());
    let registry = R::default();
    // Garbage of earlier passes and peers must not count against this one.
    registry.quiesce();
    let before = alloc::live();
    let mut state = State::Empty;
    let mut reading = None;
    let mut read = |registry: &R, state| {
        if memory && reading.is_none() && state == State::Populated {
            // Old tables retired by growth are garbage, not entries.
            registry.quiesce();
            reading = Some(alloc::live().saturating_sub(before) as f64 / keys.count() as f64);
        }
    };
    for &phase in &phases {
        prepare(&registry, keys, threads, state, phase.starts())?;
        read(&registry, phase.starts());
        let progress = report::progress(&format!("{} {}", R::NAME, phase.name()));
        mops.push((
            phase,
            phase.run(&registry, keys, threads, &progress)?.mops(),
        ));
        // Freed before the reading below.
        drop(progress);
        state = phase.leaves();
        read(&registry, state);
    }
    if memory && phases.is_empty() {
        prepare(&registry, keys, threads, state, State::Populated)?;
        state = State::Populated;
        read(&registry, state);
    }
    prepare(&registry, keys, threads, state, State::Empty)?;
    ensure_empty(&registry)?;
    Ok(Figures {
        mops,
        bytes_per_entry: reading,
        bags: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(register: f64, bytes: Option<f64>, join_leave: f64) -> Figures {
        Figures {
            mops: vec![
                (Phase::Register, register),
                (Phase::LookupHit, 2.0 * register),
            ],
            bytes_per_entry: bytes,
            bags: vec![(Workload::JoinLeave, join_leave)],
        }
    }

    #[test]
    fn the_middle_pass_is_taken_per_figure() {
        // Each figure's middle comes from a different pass.
        let passes = [
            pass(3.0, Some(70.0), 9.0),
            pass(1.0, Some(60.0), 5.0),
            pass(2.0, Some(80.0), 7.0),
        ];
        let middle = Figures::middle_of(&passes);
        assert_eq!(middle.of(Workload::Register), Some(2.0));
        assert_eq!(middle.of(Workload::LookupHit), Some(4.0));
        assert_eq!(middle.of(Workload::Memory), Some(70.0));
        assert_eq!(middle.of(Workload::JoinLeave), Some(7.0));
        assert_eq!(middle.of(Workload::Dispatch), None);
    }

    #[test]
    fn an_even_count_takes_the_slower_middle_pass() {
        // As `measure` did by elapsed time: the slower of the two middle passes.
        let passes = [pass(4.0, None, 1.0), pass(1.0, None, 2.0)];
        let middle = Figures::middle_of(&passes);
        assert_eq!(middle.of(Workload::Register), Some(1.0));
        assert_eq!(middle.of(Workload::JoinLeave), Some(1.0));
        assert_eq!(middle.of(Workload::Memory), None);
        assert!(Figures::middle_of(&[]).mops.is_empty());
    }
}
