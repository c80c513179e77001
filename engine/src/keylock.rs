//! `lock(key, f)`: per-key mutual exclusion in a namespace of its own (Elixir 1.18's
//! `Registry.lock/3`).
//!
//! Each locked key has a ticket queue: a caller takes the next ticket and waits until it is
//! served, so waiters enter in arrival order (FIFO). The holder's turn ends when `f`
//! returns or unwinds; the key's queue is dropped when nobody holds or waits for it. No
//! user code runs under the internal mutex, so a panicking `f` poisons nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

pub(crate) struct KeyLocks<K> {
    queues: Mutex<HashMap<K, Queue>>,
}

#[derive(Default)]
struct Queue {
    /// The next ticket handed out.
    next: u64,
    /// The ticket whose holder may run.
    served: u64,
    turn: Arc<Condvar>,
}

impl<K> Default for KeyLocks<K> {
    fn default() -> Self {
        KeyLocks {
            queues: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> KeyLocks<K> {
    pub(crate) fn with<R>(&self, key: K, f: impl FnOnce() -> R) -> R {
        let mut queues = self.queues();
        let queue = queues.entry(key.clone()).or_default();
        let (ticket, turn) = (queue.next, queue.turn.clone());
        queue.next += 1;
        while queues[&key].served != ticket {
            queues = turn.wait(queues).unwrap_or_else(PoisonError::into_inner);
        }
        drop(queues);
        let _turn = Turn { locks: self, key };
        f()
    }

    fn queues(&self) -> MutexGuard<'_, HashMap<K, Queue>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The holder's turn: passed on when dropped, also while unwinding.
struct Turn<'a, K: Hash + Eq + Clone> {
    locks: &'a KeyLocks<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        let mut queues = self.locks.queues();
        let queue = queues.get_mut(&self.key).expect("a held key has a queue");
        queue.served += 1;
        if queue.served == queue.next {
            queues.remove(&self.key);
        } else {
            queue.turn.notify_all();
        }
    }
}
