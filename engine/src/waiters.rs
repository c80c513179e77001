//! `await_registered`: waiting for a name without polling.
//!
//! A waiter counts itself in, then checks for the name and sleeps on a condition variable
//! (or a tokio `Notify`) until a registration wakes it. A registration checks the count
//! after publishing its entry and wakes waiters only if there are some. The two checks are
//! a Dekker pair: the entry's publication is a SeqCst RMW (`raw::publish`) followed by a
//! SeqCst load of the count; the waiter's increment is followed by a SeqCst fence before
//! its lookup. So the waiter sees the entry or the registrant sees the waiter, never
//! neither, and the registration path pays no fence.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

// std atomics even under loom: loom does not model SeqCst fences, and this wake-up is
// checked by the tests instead (`unique_surface.rs`).
use crate::sync::stats::{fence, AtomicUsize, Ordering};

#[derive(Default)]
pub(crate) struct Waiters {
    count: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl Waiters {
    /// Called after every registration: wakes the waiters, if any.
    #[inline]
    pub(crate) fn notify(&self) {
        // SeqCst: after the SeqCst publication of the entry; pairs with the fence in
        // `enter` (see the module docs).
        if self.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        // Taking the lock orders the wake after a waiter's check-then-sleep.
        drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.notify_all();
        #[cfg(feature = "tokio")]
        self.notify.notify_waiters();
    }

    /// Waits until `found` returns something or `timeout` passes.
    pub(crate) fn wait<T>(
        &self,
        timeout: Duration,
        mut found: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        if let Some(t) = found() {
            return Some(t);
        }
        let deadline = Instant::now().checked_add(timeout);
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let _in = self.enter();
        loop {
            if let Some(t) = found() {
                return Some(t);
            }
            let left = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::MAX,
            };
            held = self
                .wake
                .wait_timeout(held, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// `wait` for async callers.
    #[cfg(feature = "tokio")]
    pub(crate) async fn wait_async<T>(
        &self,
        timeout: Duration,
        mut found: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        if let Some(t) = found() {
            return Some(t);
        }
        let _in = self.enter();
        let wait = async {
            loop {
                let notified = self.notify.notified();
                tokio::pin!(notified);
                // Registered as a waiter before the check: a wake after it is not lost.
                notified.as_mut().enable();
                if let Some(t) = found() {
                    return t;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }

    fn enter(&self) -> Entered<'_> {
        // SeqCst, then a SeqCst fence before the waiter's check: pairs with the SeqCst
        // publication and load in `notify`.
        self.count.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Entered(&self.count)
    }
}

/// A waiter counted in; counted out when dropped (also on timeout or cancellation).
struct Entered<'a>(&'a AtomicUsize);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
