//! Duplicate registries (bags) behind one adapter trait: regent partitioned by key and by
//! pid, and the bags a Rust runtime would otherwise build (a dashmap of per-key maps, an
//! `RwLock` around two hashbrown maps). All hash with foldhash.

use std::sync::RwLock;

use dashmap::DashMap;
use hashbrown::HashMap;
use regent::{Duplicate, PartitionBy, Pid};
use smallvec::SmallVec;

use crate::peers::Hasher;

/// A duplicate registry as a runtime drives it: pids, keys and values are `u64`s.
pub trait Bags: Default + Send + Sync {
    /// Short name used in tables and JSON.
    const NAME: &'static str;

    /// Adds `(pid, value)` under `key`.
    fn join(&self, pid: u64, key: u64, value: u64);

    /// Removes every entry of `pid` under `key`; returns how many.
    fn leave(&self, pid: u64, key: u64) -> usize;

    /// Calls `f(pid, value)` for each entry of `key`; returns how many.
    fn dispatch(&self, key: u64, f: impl FnMut(u64, u64)) -> usize;

    /// Removes every entry of `pid`; returns how many.
    fn down(&self, pid: u64) -> usize;

    /// Frees retired memory before a live-bytes reading.
    fn quiesce(&self) {}
}

/// regent, `PartitionBy::Key` (`BY_PID = false`) or `PartitionBy::Pid`.
#[derive(Debug)]
pub struct RegentBags<const BY_PID: bool>(Duplicate<u64, u64, Pid, Hasher>);

impl<const BY_PID: bool> Default for RegentBags<BY_PID> {
    fn default() -> Self {
        let by = if BY_PID {
            PartitionBy::Pid
        } else {
            PartitionBy::Key
        };
        RegentBags(
            Duplicate::builder()
                .partition_by(by)
                .hasher(Hasher::default())
                .build(),
        )
    }
}

impl<const BY_PID: bool> Bags for RegentBags<BY_PID> {
    const NAME: &'static str = if BY_PID {
        "regent (by pid)"
    } else {
        "regent (by key)"
    };

    fn join(&self, pid: u64, key: u64, value: u64) {
        self.0.register(Pid::new(pid), key, value);
    }

    fn leave(&self, pid: u64, key: u64) -> usize {
        self.0.unregister(Pid::new(pid), &key)
    }

    fn dispatch(&self, key: u64, mut f: impl FnMut(u64, u64)) -> usize {
        self.0.dispatch(&key, |pid, &value| f(pid.get(), value))
    }

    fn down(&self, pid: u64) -> usize {
        self.0.process_down(Pid::new(pid))
    }

    fn quiesce(&self) {
        crate::peers::reclaim_until(|| self.0.stats().retired_bytes == 0);
    }
}

impl<const BY_PID: bool> RegentBags<BY_PID> {
    /// `dispatch` split over `workers` threads.
    pub fn dispatch_parallel(
        &self,
        key: u64,
        workers: usize,
        f: impl Fn(u64, u64) + Sync,
    ) -> usize {
        self.0
            .dispatch_parallel(&key, workers, |pid, &value| f(pid.get(), value))
    }
}

/// A key's entries: by pid, the values it joined with (usually one).
type Members = HashMap<u64, SmallVec<[u64; 1]>, Hasher>;

/// The bag most Rust actor frameworks would write: a `DashMap` of per-key member maps plus
/// a `DashMap` pid index for exits. A dispatch holds the key's shard read lock, so writers
/// of that shard wait for it.
#[derive(Debug, Default)]
pub struct DashMapBags {
    topics: DashMap<u64, Members, Hasher>,
    pids: DashMap<u64, SmallVec<[u64; 2]>, Hasher>,
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
            .map_or(0, |members| each(&members, &mut f))
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

/// The keys a pid joined (with repeats), for exits.
type PidIndex = HashMap<u64, SmallVec<[u64; 2]>, Hasher>;

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

fn leave_topic(members: &mut Option<impl std::ops::DerefMut<Target = Members>>, pid: u64) -> usize {
    members
        .as_mut()
        .and_then(|m| m.remove(&pid))
        .map_or(0, |values| values.len())
}

fn each(members: &Members, f: &mut impl FnMut(u64, u64)) -> usize {
    let mut n = 0;
    for (&pid, values) in members {
        for &value in values {
            f(pid, value);
            n += 1;
        }
    }
    n
}
