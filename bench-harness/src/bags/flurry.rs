use flurry::HashMap;
use smallvec::SmallVec;

use super::{each, Bags, Keys, Values};
use crate::peers::flurry::forget_key;
use crate::peers::Hasher;

/// flurry (a port of Java's `ConcurrentHashMap`) of per-key flurry member maps plus a flurry
/// pid index. Values are immutable once published, so a join replaces its pid's value list
/// and index entry whole under the bin lock. Empty topics are kept, for the reason given at
/// [`PapayaBags`](super::PapayaBags).
#[derive(Debug, Default)]
pub struct FlurryBags {
    topics: HashMap<u64, HashMap<u64, Values, Hasher>, Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl FlurryBags {
    /// Removes `pid`'s entries under `key`; the topic stays, if empty.
    fn leave_topic(&self, pid: u64, key: u64) -> usize {
        let topics = self.topics.pin();
        topics.get(&key).map_or(0, |members| {
            members.pin().remove(&pid).map_or(0, |values| values.len())
        })
    }
}

/// Appends `item` to `key`'s list: flurry has no upsert, so a replace under the bin lock if
/// present, else an insert-if-absent, until one of them lands.
fn flurry_push<A>(map: &HashMap<u64, SmallVec<A>, Hasher>, key: u64, item: u64)
where
    A: smallvec::Array<Item = u64> + Send + Sync,
{
    let map = map.pin();
    loop {
        let appended = map.compute_if_present(&key, |_, items| {
            Some(items.iter().copied().chain([item]).collect())
        });
        if appended.is_some() || map.try_insert(key, [item].into_iter().collect()).is_ok() {
            return;
        }
    }
}

impl Bags for FlurryBags {
    const NAME: &'static str = "flurry";

    fn join(&self, pid: u64, key: u64, value: u64) {
        let topics = self.topics.pin();
        let members = match topics.get(&key) {
            Some(members) => members,
            None => topics
                .try_insert(key, HashMap::default())
                .unwrap_or_else(|taken| taken.current),
        };
        flurry_push(members, pid, value);
        flurry_push(&self.pids, pid, key);
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
