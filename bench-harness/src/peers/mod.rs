//! The registries compared, behind one adapter trait, one file per peer.
//!
//! Every peer gives the unique-registry semantics a runtime needs: atomic
//! register-if-absent, lookup, owner-only unregister, and removal of all of a process's keys
//! when it exits, which needs a pid → keys index next to the name table. All of them hash
//! with foldhash. The `beam` peer is Elixir's own `Registry` in a separate process; it
//! runs the same workloads from a script instead of through [`Registry`].

pub mod beam;
mod dashmap;
pub(crate) mod flurry;
pub(crate) mod papaya;
mod regent;
mod rwlock;
mod scc;

pub use self::dashmap::DashMapPeer;
pub use self::flurry::FlurryPeer;
pub use self::papaya::PapayaPeer;
pub use self::regent::{reclaim_until, RegentPeer};
pub use self::rwlock::{RwLockPeer, Tables};
pub use self::scc::SccPeer;

/// The hasher every peer uses, so the comparison measures the tables, not the hash.
pub type Hasher = foldhash::fast::RandomState;

/// Human-readable form of [`Hasher`] for reports.
pub const HASHER: &str = "foldhash::fast::RandomState";

/// The keys a pid holds, for the peers that keep their own pid index. A process usually
/// holds one name, so the first key lives inline.
type Keys = smallvec::SmallVec<[u64; 1]>;

/// A unique registry as a runtime drives it: pids, keys and values are plain `u64`s.
///
/// The runtime's contract holds for every peer: only `pid` itself registers or unregisters
/// for `pid`, and `process_down(pid)` is called once, after its last such call. Peers rely
/// on it to update their pid index outside the name table's critical section.
pub trait Registry: Default + Send + Sync {
    /// Short name used in tables and JSON.
    const NAME: &'static str;

    /// Registers `key` to `pid` unless some process holds it already. Returns whether it did.
    fn register(&self, pid: u64, key: u64, value: u64) -> bool;

    /// The owner and value registered under `key`.
    fn lookup(&self, key: u64) -> Option<(u64, u64)>;

    /// Removes `key` if `pid` holds it, and only then. Returns whether it did.
    fn unregister(&self, pid: u64, key: u64) -> bool;

    /// Removes every key `pid` holds. Returns how many.
    fn process_down(&self, pid: u64) -> usize;

    /// Live entries.
    fn count(&self) -> usize;

    /// Frees memory the peer has retired but not yet released, so that a live-bytes
    /// reading afterwards counts only what the table holds.
    fn quiesce(&self) {}
}

/// Every peer `compare` knows, by the name it has in tables and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum Peer {
    Regent,
    Dashmap,
    Scc,
    Papaya,
    Flurry,
    Rwlock,
    /// Elixir's `Registry`, run by `elixir` in a child process.
    Beam,
}

impl Peer {
    /// Every peer, regent first (ratios are regent's figure over the others').
    pub const ALL: [Peer; 7] = [
        Peer::Regent,
        Peer::Dashmap,
        Peer::Scc,
        Peer::Papaya,
        Peer::Flurry,
        Peer::Rwlock,
        Peer::Beam,
    ];

    /// The name used in tables and JSON; a Rust peer's [`Registry::NAME`].
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Peer::Regent => RegentPeer::NAME,
            Peer::Dashmap => DashMapPeer::NAME,
            Peer::Scc => SccPeer::NAME,
            Peer::Papaya => PapayaPeer::NAME,
            Peer::Flurry => FlurryPeer::NAME,
            Peer::Rwlock => RwLockPeer::NAME,
            Peer::Beam => beam::NAME,
        }
    }

    /// Whether the peer runs in this process, through [`Registry`].
    #[must_use]
    pub const fn is_rust(self) -> bool {
        !matches!(self, Peer::Beam)
    }
}
