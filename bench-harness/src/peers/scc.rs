use scc::{HashIndex, HashMap};

use super::{Hasher, Keys, Registry};

/// scc's read-optimized `HashIndex` for names (lookups take no lock) and its `HashMap` for
/// the pid index, which is only ever written.
#[derive(Debug, Default)]
pub struct SccPeer {
    names: HashIndex<u64, (u64, u64), Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl Registry for SccPeer {
    const NAME: &'static str = "scc";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        // `insert_sync` is register-if-absent under the key's bucket lock. The pid index is
        // updated after it: the runtime never registers for a pid while reporting it down.
        if self.names.insert_sync(key, (pid, value)).is_err() {
            return false;
        }
        self.pids.entry_sync(pid).or_default().push(key);
        true
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.names.peek_with(&key, |_, &entry| entry)
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        if !self.names.remove_if_sync(&key, |&(owner, _)| owner == pid) {
            return false;
        }
        // Only `pid` itself changes its own index entry, so nothing races with this.
        self.pids.remove_if_sync(&pid, |keys| {
            keys.retain(|k| *k != key);
            keys.is_empty()
        });
        true
    }

    fn process_down(&self, pid: u64) -> usize {
        let Some((_, keys)) = self.pids.remove_sync(&pid) else {
            return 0;
        };
        keys.iter()
            .filter(|&key| self.names.remove_sync(key))
            .count()
    }

    fn count(&self) -> usize {
        self.names.len()
    }
}
