//! The workload every subcommand and bench drives: process `i` registers one name, its
//! session id, then names are looked up, unregistered, or every process exits. Each
//! [`Phase`] is one pass over all processes and moves the registry between [`State`]s;
//! [`prepare`] makes the state a phase starts from.

use std::cmp::Ordering;

use indicatif::ProgressBar;

use crate::peers::Registry;
use crate::runner::{self, Timing};
use crate::Error;

/// The processes of one run: pid `i` holds key [`Keys::key`]`(i)` with value `!i`.
///
/// Keys are a fixed bijective mix of the index, so they are distinct, look random to every
/// hasher, and are the same in every run and for every peer.
#[derive(Debug, Clone, Copy)]
pub struct Keys {
    count: usize,
}

const SEED: u64 = 0x2545_F491_4F6C_DD1D;

/// Lookups and exits visit processes in the order `i = j * SCATTER mod n`: a permutation,
/// since this prime exceeds any `n` that fits in memory and so is coprime with it.
/// Replaying registration order instead would hand the peers that allocate a node per
/// entry a memory locality no runtime sees.
pub const SCATTER: usize = (1 << 61) - 1;

impl Keys {
    /// `count` processes.
    #[must_use]
    pub const fn new(count: usize) -> Self {
        Self { count }
    }

    /// How many processes.
    #[must_use]
    pub const fn count(self) -> usize {
        self.count
    }

    /// The session id process `i` registers.
    #[must_use]
    pub const fn key(self, i: usize) -> u64 {
        // `SEED ^ i` is distinct for distinct `i` and splitmix64's finalizer is a bijection.
        let mut x = SEED ^ i as u64;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// A key that no process registers.
    #[must_use]
    pub const fn missing(self, i: usize) -> u64 {
        self.key(self.count + i)
    }

    /// The value process `i` registers with its key.
    #[must_use]
    pub const fn value(i: usize) -> u64 {
        !(i as u64)
    }
}

/// The read mix: of every [`MIX`] consecutive indices, one process exits ([`MIX_DOWN`]),
/// one new process registers ([`MIX_REGISTER`]), and the others are lookups: 90% / 5% / 5%.
pub const MIX: usize = 20;
/// The index within each [`MIX`] block whose process exits in the read mix.
pub const MIX_DOWN: usize = 18;
/// The index within each [`MIX`] block at which a new process registers in the read mix.
pub const MIX_REGISTER: usize = 19;

/// What a registry holds between passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing.
    Empty,
    /// Process `i` holds [`Keys::key`]`(i)` for every `i`.
    Populated,
    /// What [`Phase::ReadMix`] leaves: the populated table less its exited processes, plus
    /// its new ones.
    Mixed,
}

/// One pass over all processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every process registers its key, in pid order.
    Register,
    /// For every key, a process that does not hold it tries to register it and must fail.
    RegisterConflict,
    /// Every key is looked up; the owner and value must be right.
    LookupHit,
    /// As many lookups of keys nobody holds.
    LookupMiss,
    /// Every process unregisters its key and must succeed.
    Unregister,
    /// Every process is reported down and must lose exactly its one key.
    ProcessDown,
    /// 90% lookups of held keys, 5% exits of holders, 5% registrations by new processes
    /// (see [`MIX`]).
    ReadMix,
}

impl Phase {
    /// The phases of `engine` and the criterion benches, in the order they run.
    pub const ENGINE: [Phase; 4] = [
        Phase::Register,
        Phase::LookupHit,
        Phase::LookupMiss,
        Phase::ProcessDown,
    ];

    /// Every phase, in the order `compare` runs them.
    pub const ALL: [Phase; 7] = [
        Phase::Register,
        Phase::RegisterConflict,
        Phase::LookupHit,
        Phase::LookupMiss,
        Phase::Unregister,
        Phase::ProcessDown,
        Phase::ReadMix,
    ];

    /// The name used in tables and JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Register => "register",
            Phase::RegisterConflict => "register_conflict",
            Phase::LookupHit => "lookup_hit",
            Phase::LookupMiss => "lookup_miss",
            Phase::Unregister => "unregister",
            Phase::ProcessDown => "process_down",
            Phase::ReadMix => "read_mix",
        }
    }

    /// The state the phase starts from.
    #[must_use]
    pub const fn starts(self) -> State {
        match self {
            Phase::Register => State::Empty,
            _ => State::Populated,
        }
    }

    /// The state the phase leaves behind.
    #[must_use]
    pub const fn leaves(self) -> State {
        match self {
            Phase::Register | Phase::RegisterConflict | Phase::LookupHit | Phase::LookupMiss => {
                State::Populated
            }
            Phase::Unregister | Phase::ProcessDown => State::Empty,
            Phase::ReadMix => State::Mixed,
        }
    }

    /// Runs this phase over `keys` on `threads` pinned threads. The registry must be in
    /// the state [`Phase::starts`] names.
    ///
    /// # Errors
    ///
    /// If any operation returned something other than what the phase expects: the registry
    /// is broken and its timing means nothing.
    pub fn run<R: Registry>(
        self,
        registry: &R,
        keys: Keys,
        threads: usize,
        progress: &ProgressBar,
    ) -> Result<Timing, Error> {
        let timing = self.drive(registry, keys, Timed { threads, progress });
        check(R::NAME, self.name(), keys.count(), &timing)?;
        Ok(timing)
    }

    /// Hands this phase's operation on `registry` to `driver`: a closure of the process
    /// index that returns whether the operation answered as the phase expects, with the
    /// stride in which the phase visits the processes.
    pub fn drive<R: Registry, D: Driver>(self, registry: &R, keys: Keys, driver: D) -> D::Output {
        let n = keys.count();
        match self {
            Phase::Register => driver.drive(n, 1, |i| {
                registry.register(i as u64, keys.key(i), Keys::value(i))
            }),
            Phase::RegisterConflict => driver.drive(n, SCATTER, |i| {
                !registry.register((n + i) as u64, keys.key(i), Keys::value(n + i))
            }),
            Phase::LookupHit => driver.drive(n, SCATTER, |i| {
                registry.lookup(keys.key(i)) == Some((i as u64, Keys::value(i)))
            }),
            Phase::LookupMiss => {
                driver.drive(n, SCATTER, |i| registry.lookup(keys.missing(i)).is_none())
            }
            Phase::Unregister => {
                driver.drive(n, SCATTER, |i| registry.unregister(i as u64, keys.key(i)))
            }
            Phase::ProcessDown => {
                driver.drive(n, SCATTER, |i| registry.process_down(i as u64) == 1)
            }
            Phase::ReadMix => driver.drive(n, SCATTER, |i| match i % MIX {
                MIX_DOWN => registry.process_down(i as u64) == 1,
                // Process `n + i` is new; its key is one that lookups of misses use.
                MIX_REGISTER => {
                    registry.register((n + i) as u64, keys.missing(i), Keys::value(n + i))
                }
                _ => registry.lookup(keys.key(i)) == Some((i as u64, Keys::value(i))),
            }),
        }
    }
}

/// What to do with a phase's operation ([`Phase::drive`]): time it on pinned threads, or
/// count its instructions. Each phase passes its own closure type, so a driver's loop is
/// compiled for each, with the operation inlined.
pub trait Driver {
    /// What driving the phase yields.
    type Output;

    /// Applies `op` to each of the `n` processes, visiting `i = j * stride mod n` for
    /// `j` in `0..n`; `op` returns whether the registry answered as expected.
    fn drive(self, n: usize, stride: usize, op: impl Fn(usize) -> bool + Sync) -> Self::Output;
}

/// [`Phase::run`]'s driver: [`runner::run`].
struct Timed<'a> {
    threads: usize,
    progress: &'a ProgressBar,
}

impl Driver for Timed<'_> {
    type Output = Timing;

    fn drive(self, n: usize, stride: usize, op: impl Fn(usize) -> bool + Sync) -> Timing {
        runner::run(self.threads, n, stride, self.progress, op)
    }
}

/// The middle element in `cmp` order (the later of the two middle ones for even lengths).
///
/// # Panics
///
/// If `xs` is empty.
#[must_use]
pub fn middle<T: Copy>(mut xs: Vec<T>, cmp: impl FnMut(&T, &T) -> Ordering) -> T {
    xs.sort_by(cmp);
    xs[xs.len() / 2]
}

/// Checks that `registry` holds nothing once every process went down.
///
/// # Errors
///
/// If it still counts entries: the peer lost track of some, and its figures mean nothing.
pub fn ensure_empty<R: Registry>(registry: &R) -> Result<(), Error> {
    match registry.count() {
        0 => Ok(()),
        left => Err(format!(
            "{} holds {left} entries after every process went down",
            R::NAME
        )
        .into()),
    }
}

/// Brings `registry` from state `from` to state `to`, untimed, on `threads` threads.
///
/// # Errors
///
/// If an operation returned a wrong result, or `to` is [`State::Mixed`], which only
/// [`Phase::ReadMix`] makes.
pub fn prepare<R: Registry>(
    registry: &R,
    keys: Keys,
    threads: usize,
    from: State,
    to: State,
) -> Result<(), Error> {
    let hidden = ProgressBar::hidden();
    match (from, to) {
        (State::Empty, State::Empty) | (State::Populated, State::Populated) => {}
        (_, State::Mixed) => return Err("only the read mix makes a mixed table".into()),
        (State::Populated, State::Empty) => {
            Phase::ProcessDown.run(registry, keys, threads, &hidden)?;
        }
        (State::Mixed, _) => {
            let n = keys.count();
            let timing = runner::run(threads, n, 1, &hidden, |i| {
                unmix(n, i, |pid| registry.process_down(pid))
            });
            check(R::NAME, "teardown", n, &timing)?;
            prepare(registry, keys, threads, State::Empty, to)?;
        }
        (State::Empty, State::Populated) => {
            Phase::Register.run(registry, keys, threads, &hidden)?;
        }
    }
    Ok(())
}

/// Takes process `i`'s part of a [`State::Mixed`] table down with `process_down`: the
/// process itself unless it exited in the read mix, and the one that registered in its
/// place. Returns whether each held what the mix left it.
pub fn unmix(n: usize, i: usize, mut process_down: impl FnMut(u64) -> usize) -> bool {
    let held = usize::from(i % MIX != MIX_DOWN);
    process_down(i as u64) == held && (i % MIX != MIX_REGISTER || process_down((n + i) as u64) == 1)
}

fn check(peer: &str, phase: &str, n: usize, timing: &Timing) -> Result<(), Error> {
    if timing.expected == timing.ops {
        return Ok(());
    }
    let wrong = timing.ops - timing.expected;
    Err(format!("{peer} {phase}: {wrong} of {n} operations returned a wrong result").into())
}
