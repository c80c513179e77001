use papaya::HashMap;
use smallvec::{Array, SmallVec};

use super::{Hasher, Keys, Registry};

/// papaya's lock-free map for names and for the pid index. An index entry is replaced
/// whole on change (papaya values are immutable once published).
#[derive(Debug, Default)]
pub struct PapayaPeer {
    names: HashMap<u64, (u64, u64), Hasher>,
    pids: HashMap<u64, Keys, Hasher>,
}

impl Registry for PapayaPeer {
    const NAME: &'static str = "papaya";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        if self.names.pin().try_insert(key, (pid, value)).is_err() {
            return false;
        }
        self.pids.pin().update_or_insert_with(
            pid,
            |keys| keys.iter().copied().chain([key]).collect(),
            || Keys::from_buf([key]),
        );
        true
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.names.pin().get(&key).copied()
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        let names = self.names.pin();
        if !matches!(
            names.remove_if(&key, |_, &(owner, _)| owner == pid),
            Ok(Some(_))
        ) {
            return false;
        }
        forget_key(&self.pids, pid, key);
        true
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

/// Drops `key` from `pid`'s entry in a papaya pid index, and the entry once it is empty.
///
/// Two steps, a remove-if then an update, not one `compute` returning
/// `Operation::Remove`: papaya 0.2.5 slows down quadratically under insert/remove churn
/// done that way. Only `pid` itself changes its entry (the runtime rule), so nothing slips
/// in between.
pub(crate) fn forget_key<A>(pids: &HashMap<u64, SmallVec<A>, Hasher>, pid: u64, key: u64)
where
    A: Array<Item = u64> + Send + Sync,
{
    let pids = pids.pin();
    if pids
        .remove_if(&pid, |_, keys| keys.iter().all(|&k| k == key))
        .is_err()
    {
        pids.update(pid, |keys| {
            keys.iter().copied().filter(|&k| k != key).collect()
        });
    }
}
