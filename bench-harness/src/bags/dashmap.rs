use dashmap::DashMap;

use super::{each, leave_topic, Bags, Keys, Members};
use crate::peers::Hasher;

/// The bag most Rust actor frameworks would write: a `DashMap` of per-key member maps plus
/// a `DashMap` pid index for exits. A dispatch holds the key's shard read lock, so writers
/// of that shard wait for it.
#[derive(Debug, Default)]
pub struct DashMapBags {
    topics: DashMap<u64, Members, Hasher>,
    pids: DashMap<u64, Keys, Hasher>,
}

impl Bags for DashMapBags {
    const NAME: &'static str = "dashmap";

    fn join(&self, pid: u64, key: u64, value: u64) {
        self.topics
            .entry(key)
            .or_default()
            .entry(pid)
            .or_default()
            .push(value);
        self.pids.entry(pid).or_default().push(key);
    }

    fn leave(&self, pid: u64, key: u64) -> usize {
        let removed = leave_topic(&mut self.topics.get_mut(&key), pid);
        if removed > 0 {
            self.topics.remove_if(&key, |_, members| members.is_empty());
            if let Some(mut keys) = self.pids.get_mut(&pid) {
                keys.retain(|k| *k != key);
            }
            self.pids.remove_if(&pid, |_, keys| keys.is_empty());
        }
        removed
    }

    fn dispatch(&self, key: u64, mut f: impl FnMut(u64, u64)) -> usize {
        self.topics
            .get(&key)
            .map_or(0, |members| each(&*members, &mut f))
    }

    fn down(&self, pid: u64) -> usize {
        let Some((_, keys)) = self.pids.remove(&pid) else {
            return 0;
        };
        let mut removed = 0;
        for key in keys {
            removed += leave_topic(&mut self.topics.get_mut(&key), pid);
            self.topics.remove_if(&key, |_, members| members.is_empty());
        }
        removed
    }
}
