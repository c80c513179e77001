use flurry::HashMap;
use smallvec::{Array, SmallVec};

use super::{Hasher, Keys, Registry};

/// flurry, a port of Java's `ConcurrentHashMap`, for names and for the pid index.
#[derive(Debug, Default)]
pub struct FlurryPeer {
    names: HashMap<u64, (u64, u64), Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl Registry for FlurryPeer {
    const NAME: &'static str = "flurry";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        if self.names.pin().try_insert(key, (pid, value)).is_err() {
            return false;
        }
        // Only `pid` itself adds to its own index entry, so the two steps cannot race.
        let pids = self.pids.pin();
        if pids
            .compute_if_present(&pid, |_, keys| {
                Some(keys.iter().copied().chain([key]).collect())
            })
            .is_none()
        {
            pids.insert(pid, Keys::from_buf([key]));
        }
        true
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.names.pin().get(&key).copied()
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        // flurry has no remove-if: the check runs under the bin lock of `compute_if_present`,
        // which keeps a non-owner's entry by writing it back unchanged.
        let mut removed = false;
        self.names
            .pin()
            .compute_if_present(&key, |_, &(owner, value)| {
                removed = owner == pid;
                (!removed).then_some((owner, value))
            });
        if removed {
            forget_key(&self.pids, pid, key);
        }
        removed
    }

    fn process_down(&self, pid: u64) -> usize {
        let pids = self.pids.pin();
        let Some(keys) = pids.remove(&pid) else {
            return 0;
        };
        let names = self.names.pin();
        keys.iter()
            .filter(|&key| names.remove(key).is_some())
            .count()
    }

    fn count(&self) -> usize {
        self.names.len()
    }
}

/// Drops `key` from `pid`'s entry in a flurry pid index, and the entry once it is empty.
pub(crate) fn forget_key<A>(pids: &HashMap<u64, SmallVec<A>, Hasher>, pid: u64, key: u64)
where
    A: Array<Item = u64> + Send + Sync + 'static,
{
    pids.pin().compute_if_present(&pid, |_, keys| {
        let rest: SmallVec<A> = keys.iter().copied().filter(|&k| k != key).collect();
        (!rest.is_empty()).then_some(rest)
    });
}
