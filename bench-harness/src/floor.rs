//! The floor: what a registry would reach if sharing it cost nothing.
//!
//! Each of the run's pinned threads owns a private [`Tables`] (hashbrown name table and pid
//! index, the [`RwLockPeer`](crate::peers::RwLockPeer)'s maps without its lock) and runs
//! every phase over its own share of the processes: the same keys, values, hasher and
//! allocator as the peers, and the same contiguous shares the [`runner`](crate::runner)
//! hands each thread. Registration visits its share in pid order, as the peers do; the
//! other phases visit it in a scattered order (`SCATTER` within the share, where the peers
//! scatter over all processes). Tables store their entries inline, so either order
//! touches them at hash-chosen places.
//!
//! No thread ever touches another's tables: no lock, no atomic, no cache line moves
//! between cores. That is not a registry (a runtime looks names up from any thread) but
//! an upper bound for one built on hash tables: the floor divided by the best peer is the
//! most any registry could gain over that peer on this machine, short of a single-threaded
//! table faster than hashbrown.

use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use indicatif::ProgressBar;

use crate::alloc;
use crate::peers::Tables;
use crate::runner::{self, Latency, Timing};
use crate::workload::{Keys, Phase, MIX, MIX_DOWN, MIX_REGISTER, SCATTER};
use crate::Error;

/// The name the floor has in tables and JSON.
pub const NAME: &str = "floor";

/// One floor pass: the timing of each phase asked for, in order, and the live bytes per
/// key after registration.
#[derive(Debug)]
pub struct Pass {
    pub timings: Vec<Timing>,
    pub bytes_per_entry: f64,
}

/// Runs `phases` (the first must be [`Phase::Register`], and the last must leave every
/// table empty) over `keys` on `threads` pinned threads, each on private tables, counting
/// the operations done on `progress`.
///
/// # Errors
///
/// If an operation answered other than the phase expects, or a table still holds entries
/// after the last phase: the floor's figures would mean nothing.
///
/// # Panics
///
/// If `phases` does not start with a registration, or `threads` or the key count is 0.
pub fn run(
    keys: Keys,
    threads: usize,
    phases: &[Phase],
    progress: &ProgressBar,
) -> Result<Pass, Error> {
    assert_eq!(
        phases.first(),
        Some(&Phase::Register),
        "the floor starts from empty tables"
    );
    let n = keys.count();
    assert!(threads > 0 && n > 0, "need a thread and a process");
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let barrier = Barrier::new(threads);
    let before = alloc::live();
    let registered = std::sync::OnceLock::new();
    progress.set_length((n * phases.len()) as u64);

    let workers: Vec<Worker> = thread::scope(|s| {
        let spawned: Vec<_> = (0..threads)
            .map(|t| {
                let (cores, barrier, registered) = (&cores, &barrier, &registered);
                s.spawn(move || {
                    runner::pin(cores, t);
                    let share = runner::share(n, threads, t);
                    let mut tables = Tables::default();
                    let mut phase_times = Vec::with_capacity(phases.len());
                    for &phase in phases {
                        barrier.wait();
                        let start = Instant::now();
                        let expected = drive(&mut tables, keys, phase, share.clone());
                        phase_times.push((start, Instant::now(), expected));
                        progress.inc(share.len() as u64);
                        if phase == Phase::Register {
                            // Every thread's tables are built before the reading.
                            if barrier.wait().is_leader() {
                                let _ = registered.set(alloc::live());
                            }
                        }
                    }
                    Worker {
                        phase_times,
                        left: tables.count(),
                    }
                })
            })
            .collect();
        spawned
            .into_iter()
            .map(|w| w.join().expect("floor thread panicked"))
            .collect()
    });

    progress.finish_and_clear();
    let left: usize = workers.iter().map(|w| w.left).sum();
    if left != 0 {
        return Err(format!("the floor holds {left} entries after its last phase").into());
    }
    let timings = phases
        .iter()
        .enumerate()
        .map(|(p, phase)| {
            let start = workers.iter().map(|w| w.phase_times[p].0).min();
            let end = workers.iter().map(|w| w.phase_times[p].1).max();
            let expected = workers.iter().map(|w| w.phase_times[p].2).sum();
            if expected != n {
                return Err(format!(
                    "{NAME} {}: {} of {n} operations returned a wrong result",
                    phase.name(),
                    n - expected
                )
                .into());
            }
            Ok(Timing {
                ops: n,
                expected,
                elapsed: end.zip(start).map(|(e, s)| e - s).unwrap_or_default(),
                latency: Latency::default(),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let registered = registered.get().copied().unwrap_or(before);
    Ok(Pass {
        timings,
        bytes_per_entry: registered.saturating_sub(before) as f64 / n as f64,
    })
}

/// What one thread did: each phase's start, end and operations answered as expected, and
/// the entries its tables held at the end.
struct Worker {
    phase_times: Vec<(Instant, Instant, usize)>,
    left: usize,
}

/// Runs `phase` over the processes of `share` on this thread's own tables, with the
/// operations of [`Phase::drive`]. Returns how many answered as the phase expects.
fn drive(tables: &mut Tables, keys: Keys, phase: Phase, share: std::ops::Range<usize>) -> usize {
    let n = keys.count();
    let (first, len) = (share.start, share.len());
    if len == 0 {
        return 0;
    }
    let stride = SCATTER % len;
    let mut expected = 0;
    let mut j = 0;
    for _ in 0..len {
        let i = first + j;
        let ok = match phase {
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
        };
        expected += usize::from(ok);
        // Registration runs in pid order, the other phases scattered over the share.
        j += if phase == Phase::Register { 1 } else { stride };
        if j >= len {
            j -= len;
        }
    }
    expected
}
