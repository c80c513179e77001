use regent::{Duplicate, PartitionBy, Pid};

use super::Bags;
use crate::peers::Hasher;

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
