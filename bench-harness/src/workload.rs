//! The workload every subcommand and bench drives: process `i` registers one name, its
//! session id, then names are looked up, then every process exits.

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
const SCATTER: usize = (1 << 61) - 1;

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

    const fn value(i: usize) -> u64 {
        !(i as u64)
    }
}

/// One pass over all processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every process registers its key, in pid order.
    Register,
    /// Every key is looked up; the owner and value must be right.
    LookupHit,
    /// As many lookups of keys nobody holds.
    LookupMiss,
    /// Every process is reported down and must lose exactly its one key.
    ProcessDown,
}

impl Phase {
    /// All phases, in the order they run.
    pub const ALL: [Phase; 4] = [
        Phase::Register,
        Phase::LookupHit,
        Phase::LookupMiss,
        Phase::ProcessDown,
    ];

    /// The name used in tables and JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Phase::Register => "register",
            Phase::LookupHit => "lookup_hit",
            Phase::LookupMiss => "lookup_miss",
            Phase::ProcessDown => "process_down",
        }
    }

    /// Runs this phase over `keys` on `threads` pinned threads.
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
        let n = keys.count();
        let timing = match self {
            Phase::Register => runner::run(threads, n, 1, progress, |i| {
                registry.register(i as u64, keys.key(i), Keys::value(i))
            }),
            Phase::LookupHit => runner::run(threads, n, SCATTER, progress, |i| {
                registry.lookup(keys.key(i)) == Some((i as u64, Keys::value(i)))
            }),
            Phase::LookupMiss => runner::run(threads, n, SCATTER, progress, |i| {
                registry.lookup(keys.missing(i)).is_none()
            }),
            Phase::ProcessDown => runner::run(threads, n, SCATTER, progress, |i| {
                registry.process_down(i as u64) == 1
            }),
        };
        if timing.expected != timing.ops {
            let wrong = timing.ops - timing.expected;
            return Err(format!(
                "{} {}: {wrong} of {n} operations returned a wrong result",
                R::NAME,
                self.name()
            )
            .into());
        }
        Ok(timing)
    }
}
