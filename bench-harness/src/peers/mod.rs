//! The registries compared, behind one adapter trait, one file per peer.
//!
//! Every peer gives the unique-registry semantics a runtime needs: atomic
//! register-if-absent, lookup, and removal of all of a process's keys when it exits, which
//! needs a pid → keys index next to the name table. All of them hash with foldhash.

mod dashmap;
mod regent;
mod rwlock;

pub use self::dashmap::DashMapPeer;
pub use self::regent::{reclaim_until, RegentPeer};
pub use self::rwlock::RwLockPeer;

/// The hasher every peer uses, so the comparison measures the tables, not the hash.
pub type Hasher = foldhash::fast::RandomState;

/// Human-readable form of [`Hasher`] for reports.
pub const HASHER: &str = "foldhash::fast::RandomState";

/// The keys a pid holds, for the peers that keep their own pid index. A process usually
/// holds one name, so the first key lives inline.
type Keys = smallvec::SmallVec<[u64; 1]>;

/// A unique registry as a runtime drives it: pids, keys and values are plain `u64`s.
pub trait Registry: Default + Send + Sync {
    /// Short name used in tables and JSON.
    const NAME: &'static str;

    /// Registers `key` to `pid` unless some process holds it already. Returns whether it did.
    fn register(&self, pid: u64, key: u64, value: u64) -> bool;

    /// The owner and value registered under `key`.
    fn lookup(&self, key: u64) -> Option<(u64, u64)>;

    /// Removes every key `pid` holds. Returns how many.
    fn process_down(&self, pid: u64) -> usize;

    /// Live entries.
    fn count(&self) -> usize;

    /// Frees memory the peer has retired but not yet released, so that a live-bytes
    /// reading afterwards counts only what the table holds.
    fn quiesce(&self) {}
}
