use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::{Hasher, Keys, Registry};

/// A sharded-lock registry as ractor builds one: a `DashMap` of names plus a `DashMap`
/// pid index for exits.
#[derive(Debug, Default)]
pub struct DashMapPeer {
    names: DashMap<u64, (u64, u64), Hasher>,
    pids: DashMap<u64, Keys, Hasher>,
}

impl Registry for DashMapPeer {
    const NAME: &'static str = "dashmap";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        // The entry holds the name's shard lock, which makes the check and the insert
        // atomic. The pid index is updated after it is released: the runtime never
        // registers for a pid while reporting it down, so nothing can slip in between.
        let Entry::Vacant(slot) = self.names.entry(key) else {
            return false;
        };
        slot.insert((pid, value));
        self.pids.entry(pid).or_default().push(key);
        true
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.names.get(&key).map(|entry| *entry)
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        if self
            .names
            .remove_if(&key, |_, &(owner, _)| owner == pid)
            .is_none()
        {
            return false;
        }
        // Only `pid` itself changes its own index entry, so nothing races with this.
        self.pids.remove_if_mut(&pid, |_, keys| {
            keys.retain(|k| *k != key);
            keys.is_empty()
        });
        true
    }

    fn process_down(&self, pid: u64) -> usize {
        let Some((_, keys)) = self.pids.remove(&pid) else {
            return 0;
        };
        keys.iter()
            .filter(|&key| self.names.remove(key).is_some())
            .count()
    }

    fn count(&self) -> usize {
        self.names.len()
    }
}
