use std::sync::RwLock;

use hashbrown::HashMap;

use super::{each, leave_topic, Bags, Keys, Members};
use crate::peers::Hasher;

type PidIndex = HashMap<u64, Keys, Hasher>;

/// One lock around both maps: "a GenServer holding a map".
#[derive(Debug, Default)]
pub struct RwLockBags(RwLock<(HashMap<u64, Members, Hasher>, PidIndex)>);

impl Bags for RwLockBags {
    const NAME: &'static str = "rwlock";

    fn join(&self, pid: u64, key: u64, value: u64) {
        let mut maps = self.0.write().expect("no panics under the lock");
        maps.0
            .entry(key)
            .or_default()
            .entry(pid)
            .or_default()
            .push(value);
        maps.1.entry(pid).or_default().push(key);
    }

    fn leave(&self, pid: u64, key: u64) -> usize {
        let mut maps = self.0.write().expect("no panics under the lock");
        let (topics, pids) = &mut *maps;
        let removed = leave_topic(&mut topics.get_mut(&key), pid);
        if removed > 0 {
            if topics.get(&key).is_some_and(HashMap::is_empty) {
                topics.remove(&key);
            }
            if let Some(keys) = pids.get_mut(&pid) {
                keys.retain(|k| *k != key);
                if keys.is_empty() {
                    pids.remove(&pid);
                }
            }
        }
        removed
    }

    fn dispatch(&self, key: u64, mut f: impl FnMut(u64, u64)) -> usize {
        let maps = self.0.read().expect("no panics under the lock");
        maps.0.get(&key).map_or(0, |members| each(members, &mut f))
    }

    fn down(&self, pid: u64) -> usize {
        let mut maps = self.0.write().expect("no panics under the lock");
        let (topics, pids) = &mut *maps;
        let Some(keys) = pids.remove(&pid) else {
            return 0;
        };
        let mut removed = 0;
        for key in keys {
            removed += leave_topic(&mut topics.get_mut(&key), pid);
            if topics.get(&key).is_some_and(HashMap::is_empty) {
                topics.remove(&key);
            }
        }
        removed
    }
}
