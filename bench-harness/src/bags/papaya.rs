use papaya::HashMap;

use super::{each, Bags, Keys, Values};
use crate::peers::papaya::forget_key;
use crate::peers::Hasher;

/// papaya's lock-free map of per-key papaya member maps plus a papaya pid index. Values
/// are immutable once published, so a join replaces its pid's value list and index entry
/// whole. Empty topics are kept: a join holding a topic's member map could race its
/// removal and land in a detached map.
#[derive(Debug, Default)]
pub struct PapayaBags {
    topics: HashMap<u64, HashMap<u64, Values, Hasher>, Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl PapayaBags {
    /// Removes `pid`'s entries under `key`; the topic stays, if empty.
    fn leave_topic(&self, pid: u64, key: u64) -> usize {
        let topics = self.topics.pin();
        topics.get(&key).map_or(0, |members| {
            members.pin().remove(&pid).map_or(0, |values| values.len())
        })
    }
}

impl Bags for PapayaBags {
    const NAME: &'static str = "papaya";

    fn join(&self, pid: u64, key: u64, value: u64) {
        let topics = self.topics.pin();
        topics
            .get_or_insert_with(key, HashMap::default)
            .pin()
            .update_or_insert_with(
                pid,
                |values| values.iter().copied().chain([value]).collect(),
                || Values::from_buf([value]),
            );
        self.pids.pin().update_or_insert_with(
            pid,
            |keys| keys.iter().copied().chain([key]).collect(),
            || Keys::from_slice(&[key]),
        );
    }

    fn leave(&self, pid: u64, key: u64) -> usize {
        let removed = self.leave_topic(pid, key);
        if removed > 0 {
            forget_key(&self.pids, pid, key);
        }
        removed
    }

    fn dispatch(&self, key: u64, mut f: impl FnMut(u64, u64)) -> usize {
        let topics = self.topics.pin();
        topics
            .get(&key)
            .map_or(0, |members| each(&members.pin(), &mut f))
    }

    fn down(&self, pid: u64) -> usize {
        let pids = self.pids.pin();
        let Some(keys) = pids.remove(&pid) else {
            return 0;
        };
        keys.iter().map(|&key| self.leave_topic(pid, key)).sum()
    }
}
