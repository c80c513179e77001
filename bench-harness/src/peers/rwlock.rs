use hashbrown::HashMap;
use parking_lot::RwLock;

use super::{Hasher, Keys, Registry};

/// One lock around both maps: the "one GenServer holding a map" registry.
#[derive(Debug, Default)]
pub struct RwLockPeer(RwLock<Tables>);

/// A registry's two maps with no synchronization at all: what [`RwLockPeer`] guards with
/// its lock (one shard each), and what each thread of the [`floor`](crate::floor) owns
/// alone (split into `S` shards by key and by pid, so that each growth rehashes a small
/// table that stays in the caches).
#[derive(Debug)]
pub struct Tables<const S: usize = 1> {
    names: [HashMap<u64, (u64, u64), Hasher>; S],
    pids: [HashMap<u64, Keys, Hasher>; S],
}

impl<const S: usize> Default for Tables<S> {
    fn default() -> Self {
        assert!(S.is_power_of_two(), "a power of two of shards");
        Self {
            names: std::array::from_fn(|_| HashMap::default()),
            pids: std::array::from_fn(|_| HashMap::default()),
        }
    }
}

/// The shard of `x` among `S`: the top bits of a multiplicative hash (keys look random,
/// pids count up; both spread evenly).
#[inline]
fn shard<const S: usize>(x: u64) -> usize {
    if S == 1 {
        0
    } else {
        (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - S.trailing_zeros())) as usize
    }
}

impl<const S: usize> Tables<S> {
    /// Registers `key` to `pid` unless it is taken. Returns whether it did.
    pub fn register(&mut self, pid: u64, key: u64, value: u64) -> bool {
        if self.names[shard::<S>(key)]
            .try_insert(key, (pid, value))
            .is_err()
        {
            return false;
        }
        self.pids[shard::<S>(pid)].entry(pid).or_default().push(key);
        true
    }

    /// The owner and value registered under `key`.
    #[must_use]
    pub fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.names[shard::<S>(key)].get(&key).copied()
    }

    /// Removes `key` if `pid` holds it. Returns whether it did.
    pub fn unregister(&mut self, pid: u64, key: u64) -> bool {
        let names = &mut self.names[shard::<S>(key)];
        if names.get(&key).is_none_or(|&(owner, _)| owner != pid) {
            return false;
        }
        names.remove(&key);
        let pids = &mut self.pids[shard::<S>(pid)];
        if let Some(keys) = pids.get_mut(&pid) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                pids.remove(&pid);
            }
        }
        true
    }

    /// Removes every key `pid` holds. Returns how many.
    pub fn process_down(&mut self, pid: u64) -> usize {
        let Some(keys) = self.pids[shard::<S>(pid)].remove(&pid) else {
            return 0;
        };
        keys.iter()
            .filter(|&&key| self.names[shard::<S>(key)].remove(&key).is_some())
            .count()
    }

    /// Live entries.
    #[must_use]
    pub fn count(&self) -> usize {
        self.names.iter().map(HashMap::len).sum()
    }
}

impl Registry for RwLockPeer {
    const NAME: &'static str = "rwlock";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        self.0.write().register(pid, key, value)
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.0.read().lookup(key)
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        self.0.write().unregister(pid, key)
    }

    fn process_down(&self, pid: u64) -> usize {
        self.0.write().process_down(pid)
    }

    fn count(&self) -> usize {
        self.0.read().count()
    }
}
