use scc::HashMap;

use super::{each, Bags, Keys, Members};
use crate::peers::Hasher;

/// scc's bucket-locked `HashMap` of per-key member maps plus an scc pid index: the
/// [`DashMapBags`](super::DashMapBags) design with a lock per bucket instead of per shard. A
/// leave removes the pid and, if that empties the topic, the topic under one bucket lock; a
/// dispatch holds the bucket's shared lock, so writers of that bucket wait for it.
#[derive(Debug, Default)]
pub struct SccBags {
    topics: HashMap<u64, Members, Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl SccBags {
    /// Removes `pid`'s entries under `key`, and the topic if that empties it.
    fn leave_topic(&self, pid: u64, key: u64) -> usize {
        let Some(mut members) = self.topics.get_sync(&key) else {
            return 0;
        };
        let removed = members
            .get_mut()
            .remove(&pid)
            .map_or(0, |values| values.len());
        if members.get().is_empty() {
            let _ = members.remove();
        }
        removed
    }
}

impl Bags for SccBags {
    const NAME: &'static str = "scc";

    fn join(&self, pid: u64, key: u64, value: u64) {
        self.topics
            .entry_sync(key)
            .or_default()
            .get_mut()
            .entry(pid)
            .or_default()
            .push(value);
        self.pids.entry_sync(pid).or_default().get_mut().push(key);
    }

    fn leave(&self, pid: u64, key: u64) -> usize {
        let removed = self.leave_topic(pid, key);
        if removed > 0 {
            self.pids.remove_if_sync(&pid, |keys| {
                keys.retain(|k| *k != key);
                keys.is_empty()
            });
        }
        removed
    }

    fn dispatch(&self, key: u64, mut f: impl FnMut(u64, u64)) -> usize {
        self.topics
            .read_sync(&key, |_, members| each(members, &mut f))
            .unwrap_or(0)
    }

    fn down(&self, pid: u64) -> usize {
        let Some((_, keys)) = self.pids.remove_sync(&pid) else {
            return 0;
        };
        keys.iter().map(|&key| self.leave_topic(pid, key)).sum()
    }
}
