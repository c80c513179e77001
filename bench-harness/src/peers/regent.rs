use std::thread;
use std::time::{Duration, Instant};

use regent::{Pid, Unique};

use super::{Hasher, Registry};

/// regent's lock-free unique registry.
#[derive(Debug)]
pub struct RegentPeer(Unique<u64, u64, Pid, Hasher>);

impl RegentPeer {
    /// A registry with `partitions` partitions, or regent's default (one per core).
    #[must_use]
    pub fn new(partitions: Option<usize>) -> Self {
        let builder = Unique::<u64, u64, Pid>::builder();
        let builder = match partitions {
            Some(n) => builder.partitions(n),
            None => builder,
        };
        Self(builder.hasher(Hasher::default()).build())
    }

    /// The registry itself, for the figures the adapter trait does not cover.
    #[must_use]
    pub fn inner(&self) -> &Unique<u64, u64, Pid, Hasher> {
        &self.0
    }
}

impl Default for RegentPeer {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Registry for RegentPeer {
    const NAME: &'static str = "regent";

    fn register(&self, pid: u64, key: u64, value: u64) -> bool {
        self.0.register(Pid::new(pid), key, value).is_ok()
    }

    fn lookup(&self, key: u64) -> Option<(u64, u64)> {
        self.0.lookup(&key).map(|(pid, value)| (pid.get(), value))
    }

    fn unregister(&self, pid: u64, key: u64) -> bool {
        self.0.unregister(Pid::new(pid), &key)
    }

    fn process_down(&self, pid: u64) -> usize {
        self.0.process_down(Pid::new(pid))
    }

    fn count(&self) -> usize {
        self.0.count()
    }

    /// Waits until no registry in the process has retired bytes left to free.
    fn quiesce(&self) {
        reclaim_until(|| self.0.stats().retired_bytes == 0);
    }
}

/// Drives epoch reclamation until `done()` holds, giving up after a few seconds so that a
/// reclamation bug shows as garbage in the figures instead of a hang.
pub fn reclaim_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() && Instant::now() < deadline {
        regent::reclaim();
        thread::sleep(Duration::from_millis(1));
    }
}
