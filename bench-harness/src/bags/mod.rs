//! Duplicate registries (bags) behind one adapter trait: regent partitioned by key and by
//! pid, and the bags a Rust runtime would otherwise build from each crate the name peers
//! ([`crate::peers`]) use: a topic map of per-key member maps plus a pid index for exits
//! (dashmap, scc, papaya, flurry), or an `RwLock` around two hashbrown maps. All hash with
//! foldhash. One file per adapter, as in [`crate::peers`].

mod dashmap;
mod flurry;
mod papaya;
mod regent;
mod rwlock;
mod scc;

use hashbrown::HashMap;
use smallvec::SmallVec;

use crate::peers::Hasher;

pub use self::dashmap::DashMapBags;
pub use self::flurry::FlurryBags;
pub use self::papaya::PapayaBags;
pub use self::regent::RegentBags;
pub use self::rwlock::RwLockBags;
pub use self::scc::SccBags;

/// A duplicate registry as a runtime drives it: pids, keys and values are `u64`s.
///
/// The runtime's contract holds for every adapter, as for [`crate::peers::Registry`]: only
/// `pid` itself joins or leaves for `pid`, and `down(pid)` comes after its last such call.
/// Different pids join and leave the same keys concurrently.
pub trait Bags: Default + Send + Sync {
    /// Short name used in tables and JSON.
    const NAME: &'static str;

    /// Adds `(pid, value)` under `key`.
    fn join(&self, pid: u64, key: u64, value: u64);

    /// Removes every entry of `pid` under `key`; returns how many.
    fn leave(&self, pid: u64, key: u64) -> usize;

    /// Calls `f(pid, value)` for each entry of `key`; returns how many.
    fn dispatch(&self, key: u64, f: impl FnMut(u64, u64)) -> usize;

    /// Removes every entry of `pid`; returns how many.
    fn down(&self, pid: u64) -> usize;

    /// Frees retired memory before a live-bytes reading.
    fn quiesce(&self) {}
}

/// The values one pid joined a key with (usually one).
type Values = SmallVec<[u64; 1]>;

/// A key's entries: by pid, the values it joined with.
type Members = HashMap<u64, Values, Hasher>;

/// The keys a pid joined, with repeats, for exits.
type Keys = SmallVec<[u64; 2]>;

/// Removes `pid` from a key's members, if the key has any; returns how many entries went.
fn leave_topic(members: &mut Option<impl std::ops::DerefMut<Target = Members>>, pid: u64) -> usize {
    members
        .as_mut()
        .and_then(|m| m.remove(&pid))
        .map_or(0, |values| values.len())
}

/// Calls `f` for each entry of a key's members; returns how many.
fn each<'a>(
    members: impl IntoIterator<Item = (&'a u64, &'a Values)>,
    f: &mut impl FnMut(u64, u64),
) -> usize {
    let mut n = 0;
    for (&pid, values) in members {
        for &value in values {
            f(pid, value);
            n += 1;
        }
    }
    n
}
