use hashbrown::HashMap;
use parking_lot::RwLock;

use super::{Hasher, Keys, Registry};

/// One lock around both maps: the "one GenServer holding a map" registry.
#[derive(Debug, Default)]
pub struct RwLockPeer(RwLock<Tables>);

/// A registry's two maps with no synchronization at all: what [`RwLockPeer`] guards with
/// its lock, and what each thread of the [`floor`](crate::floor) owns alone.
#[derive(Debug, Default)]
pub struct Tables {
    names: HashMap<u64, (u64, u64), Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl Tables {
    /// Registers `key` to `pid` unless it is taken. Returns whether it did.
    pub fn register(&mut self, pid: u64, key: u64, value: u64) -> bool {
        if self.names.try_insert(key, (pid, value)).is_err() {
            return false;
        }
        self.pids.entry(pid).or_default().push(key);
        true
    }

    /// The owner and value registered under `key`.
    #[must_use]
    pub fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.names.get(&key).copied()
    }

    /// Removes `key` if `pid` holds it. Returns whether it did.
    pub fn unregister(&mut self, pid: u64, key: u64) -> bool {
        if self.names.get(&key).is_none_or(|&(owner, _)| owner != pid) {
            return false;
        }
        self.names.remove(&key);
        if let Some(keys) = self.pids.get_mut(&pid) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                self.pids.remove(&pid);
            }
        }
        true
    }

    /// Removes every key `pid` holds. Returns how many.
    pub fn process_down(&mut self, pid: u64) -> usize {
        let Some(keys) = self.pids.remove(&pid) else {
            return 0;
        };
        keys.iter()
            .filter(|&key| self.names.remove(key).is_some())
            .count()
    }

    /// Live entries.
    #[must_use]
    pub fn count(&self) -> usize {
        self.names.len()
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
