use hashbrown::HashMap;
use parking_lot::RwLock;

use super::{Hasher, Keys, Registry};

/// One lock around both maps: the "one GenServer holding a map" registry.
#[derive(Debug, Default)]
pub struct RwLockPeer(RwLock<Tables>);

#[derive(Debug, Default)]
struct Tables {
    names: HashMap<u64, (u64, u64), Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl Registry for RwLockPeer {
    const NAME: &'static str = "rwlock";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        let mut tables = self.0.write();
        if tables.names.try_insert(key, (pid, value)).is_err() {
            return false;
        }
        tables.pids.entry(pid).or_default().push(key);
        true
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.0.read().names.get(&key).copied()
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        let mut tables = self.0.write();
        if tables
            .names
            .get(&key)
            .is_none_or(|&(owner, _)| owner != pid)
        {
            return false;
        }
        tables.names.remove(&key);
        if let Some(keys) = tables.pids.get_mut(&pid) {
            keys.retain(|k| *k != key);
            if keys.is_empty() {
                tables.pids.remove(&pid);
            }
        }
        true
    }

    fn process_down(&self, pid: u64) -> usize {
        let mut tables = self.0.write();
        let Some(keys) = tables.pids.remove(&pid) else {
            return 0;
        };
        keys.iter()
            .filter(|&key| tables.names.remove(key).is_some())
            .count()
    }

    fn count(&self) -> usize {
        self.0.read().names.len()
    }
}
