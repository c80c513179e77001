//! The floor: what a registry would reach if sharing it cost nothing.
//!
//! Each of the run's pinned threads owns a private [`Tables`] (hashbrown name table and pid
//! index, the [`RwLockPeer`](crate::peers::RwLockPeer)'s maps without its lock, split into
//! [`SHARDS`] shards so that each growth rehashes a table small enough for the caches, as
//! dashmap's shards do) and runs
//! every phase over its own share of the processes: the same keys, values, hasher and
//! allocator as the peers, and the same contiguous shares the [`runner`]
//! hands each thread. Registration visits its share in pid order, as the peers do; the
//! other phases visit it in a scattered order (`SCATTER` within the share, where the peers
//! scatter over all processes). Tables store their entries inline, so either order
//! touches them at hash-chosen places. Between phases each thread brings its own tables to
//! the state the next phase starts from, untimed, as [`prepare`](crate::workload::prepare)
//! does for a peer.
//!
//! No thread ever touches another's tables: no lock, no atomic, no cache line moves
//! between cores. That is not a registry (a runtime looks names up from any thread) but
//! an upper bound for one built on hash tables: the floor divided by the best peer is the
//! most any registry could gain over that peer on this machine, short of a single-threaded
//! table faster than hashbrown.

use std::ops::Range;
use std::sync::{Barrier, OnceLock};
use std::thread;
use std::time::Instant;

use indicatif::ProgressBar;

use crate::alloc;
use crate::peers::Tables;
use crate::runner::{self, Latency, Timing};
use crate::workload::{unmix, Keys, Phase, State, MIX, MIX_DOWN, MIX_REGISTER, SCATTER};
use crate::Error;

/// The name the floor has in tables and JSON.
pub const NAME: &str = "floor";

/// Shards of each thread's name table and pid index. Growth rehashes one shard at a time:
/// at 10M keys on 2 threads a shard holds about 80k entries, a few megabytes, where one
/// table per thread would rehash hundreds of megabytes from memory at each doubling. A
/// lookup pays one multiply and shift for it. [`ABOUT`] names this count.
pub const SHARDS: usize = 64;

/// One thread's tables.
type Private = Tables<SHARDS>;

/// What the floor is, for the reports that show it.
pub const ABOUT: &str = "The floor is not a registry: each thread registers, looks up and \
    removes its own share of the processes in its own hashbrown name table and pid index \
    (the rwlock peer's maps without the lock, in 64 shards so that growth rehashes small \
    tables), so nothing is shared and nothing synchronized. It is what a registry would \
    reach if sharing it cost nothing";

/// One floor pass: the timing of each phase asked for, in order, and, if asked, the live
/// bytes per key the first time the tables held every key.
#[derive(Debug)]
pub struct Pass {
    pub timings: Vec<Timing>,
    pub bytes_per_entry: Option<f64>,
}

/// Runs `phases` in order over `keys` on `threads` pinned threads, each on its own tables,
/// counting the operations timed on `progress`; reads the allocator when the tables first
/// hold every key if `memory` (registering every key for it, untimed, if no phase does).
/// The tables end empty.
///
/// # Errors
///
/// If an operation answered other than its phase expects, or a table still holds entries
/// at the end: the floor's figures would mean nothing.
///
/// # Panics
///
/// If `threads` or the key count is 0, or a floor thread panics.
pub fn run(
    keys: Keys,
    threads: usize,
    phases: &[Phase],
    memory: bool,
    progress: &ProgressBar,
) -> Result<Pass, Error> {
    let n = keys.count();
    assert!(threads > 0 && n > 0, "need a thread and a process");
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let floor = Floor {
        keys,
        barrier: Barrier::new(threads),
        memory,
        before: alloc::live(),
        reading: OnceLock::new(),
        progress,
    };
    progress.set_length((n * phases.len()) as u64);

    let workers: Vec<Result<Worker, Error>> = thread::scope(|s| {
        let spawned: Vec<_> = (0..threads)
            .map(|t| {
                let (cores, floor) = (&cores, &floor);
                s.spawn(move || {
                    runner::pin(cores, t);
                    floor.thread(runner::share(n, threads, t), phases)
                })
            })
            .collect();
        spawned
            .into_iter()
            .map(|w| w.join().expect("floor thread panicked"))
            .collect()
    });
    progress.finish_and_clear();
    let workers = workers.into_iter().collect::<Result<Vec<_>, Error>>()?;

    let left: usize = workers.iter().map(|w| w.left).sum();
    if left != 0 {
        return Err(format!("the {NAME} holds {left} entries after its last phase").into());
    }
    let timings = phases
        .iter()
        .enumerate()
        .map(|(p, phase)| {
            let expected = workers.iter().map(|w| w.phases[p].expected).sum();
            if expected != n {
                return Err(format!(
                    "{NAME} {}: {} of {n} operations returned a wrong result",
                    phase.name(),
                    n - expected
                )
                .into());
            }
            let start = workers.iter().map(|w| w.phases[p].start).min();
            let end = workers.iter().map(|w| w.phases[p].end).max();
            Ok(Timing {
                ops: n,
                expected,
                elapsed: end.zip(start).map(|(e, s)| e - s).unwrap_or_default(),
                latency: Latency::default(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Pass {
        timings,
        bytes_per_entry: floor
            .reading
            .get()
            .map(|&live| live.saturating_sub(floor.before) as f64 / n as f64),
    })
}

/// What the floor's threads share: the run's parameters and its one memory reading.
struct Floor<'a> {
    keys: Keys,
    barrier: Barrier,
    memory: bool,
    /// The allocator's live bytes before any table existed.
    before: usize,
    reading: OnceLock<usize>,
    progress: &'a ProgressBar,
}

/// What one thread did: each phase's timing, and the entries its tables held at the end.
struct Worker {
    phases: Vec<PhaseTime>,
    left: usize,
}

struct PhaseTime {
    start: Instant,
    end: Instant,
    expected: usize,
}

impl Floor<'_> {
    /// One thread's run: `phases` over `share` on tables of its own. Every thread meets
    /// the barrier at the same points, before each timed phase and around the memory
    /// reading, whatever its operations answer: a thread that returned at its first wrong
    /// answer would leave the others waiting at the barrier forever. The first error is
    /// returned at the end.
    fn thread(&self, share: Range<usize>, phases: &[Phase]) -> Result<Worker, Error> {
        let mut tables = Private::default();
        let mut times = Vec::with_capacity(phases.len());
        let mut state = State::Empty;
        let mut failed = Ok(());
        for &phase in phases {
            let prepared = self.prepare(&mut tables, &share, state, phase.starts());
            failed = failed.and(prepared);
            self.read(phase.starts());
            self.barrier.wait();
            let start = Instant::now();
            let expected = visit(&share, phase != Phase::Register, |i| {
                self.op(&mut tables, phase, i)
            });
            times.push(PhaseTime {
                start,
                end: Instant::now(),
                expected,
            });
            self.progress.inc(share.len() as u64);
            state = phase.leaves();
            self.read(state);
        }
        if self.memory && self.reading.get().is_none() {
            let prepared = self.prepare(&mut tables, &share, state, State::Populated);
            failed = failed.and(prepared);
            state = State::Populated;
            self.read(state);
        }
        failed.and(self.prepare(&mut tables, &share, state, State::Empty))?;
        Ok(Worker {
            phases: times,
            left: tables.count(),
        })
    }

    /// Reads the allocator the first time every thread's tables hold every key of its
    /// share, with no thread changing its tables meanwhile.
    fn read(&self, state: State) {
        if self.memory && state == State::Populated && self.reading.get().is_none() {
            if self.barrier.wait().is_leader() {
                let _ = self.reading.set(alloc::live());
            }
            self.barrier.wait();
        }
    }

    /// Brings this thread's tables from `from` to `to`, untimed.
    fn prepare(
        &self,
        tables: &mut Private,
        share: &Range<usize>,
        from: State,
        to: State,
    ) -> Result<(), Error> {
        let n = self.keys.count();
        let (name, done) = match (from, to) {
            (State::Empty, State::Empty) | (State::Populated, State::Populated) => return Ok(()),
            (_, State::Mixed) => return Err(format!("{NAME}: only the read mix mixes").into()),
            (State::Empty, State::Populated) => (
                "register",
                visit(share, false, |i| self.op(tables, Phase::Register, i)),
            ),
            (State::Populated, State::Empty) => (
                "process_down",
                visit(share, false, |i| self.op(tables, Phase::ProcessDown, i)),
            ),
            (State::Mixed, State::Empty) => (
                "teardown",
                visit(share, false, |i| {
                    unmix(n, i, |pid| tables.process_down(pid))
                }),
            ),
            (State::Mixed, State::Populated) => {
                self.prepare(tables, share, from, State::Empty)?;
                return self.prepare(tables, share, State::Empty, to);
            }
        };
        if done == share.len() {
            Ok(())
        } else {
            let wrong = share.len() - done;
            Err(format!("{NAME} {name}: {wrong} operations returned a wrong result").into())
        }
    }

    /// Process `i`'s operation in `phase`, as [`Phase::drive`] has it: whether it answered
    /// as the phase expects.
    fn op(&self, tables: &mut Private, phase: Phase, i: usize) -> bool {
        let (keys, n) = (self.keys, self.keys.count());
        match phase {
            Phase::Register => tables.register(i as u64, keys.key(i), Keys::value(i)),
            Phase::RegisterConflict => {
                !tables.register((n + i) as u64, keys.key(i), Keys::value(n + i))
            }
            Phase::LookupHit => tables.lookup(keys.key(i)) == Some((i as u64, Keys::value(i))),
            Phase::LookupMiss => tables.lookup(keys.missing(i)).is_none(),
            Phase::Unregister => tables.unregister(i as u64, keys.key(i)),
            Phase::ProcessDown => tables.process_down(i as u64) == 1,
            Phase::ReadMix => match i % MIX {
                MIX_DOWN => tables.process_down(i as u64) == 1,
                MIX_REGISTER => {
                    tables.register((n + i) as u64, keys.missing(i), Keys::value(n + i))
                }
                _ => tables.lookup(keys.key(i)) == Some((i as u64, Keys::value(i))),
            },
        }
    }
}

/// Calls `op` once for every process of `share`, in order or `scattered` (`SCATTER`
/// within the share). Returns how many calls returned true.
fn visit(share: &Range<usize>, scattered: bool, mut op: impl FnMut(usize) -> bool) -> usize {
    let len = share.len();
    let stride = if scattered { SCATTER % len.max(1) } else { 1 };
    let (mut j, mut expected) = (0, 0);
    for _ in 0..len {
        expected += usize::from(op(share.start + j));
        j += stride;
        if j >= len {
            j -= len;
        }
    }
    expected
}
