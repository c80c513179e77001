//! The records the registries keep: entries and bags by key, and monitors by pid.

use core::ptr;

use crate::raw::{Bag, Lockable, Record, WORD_FLAGS};
use crate::sync::{AtomicU64, Ordering};

/// One registration, stored inline in the name table.
pub(crate) struct Entry<K, V, P> {
    pub(crate) key: K,
    pub(crate) pid: P,
    pub(crate) value: V,
}

// SAFETY: entries are immutable once published, so a bitwise copy is the same entry; the
// copy left in the old array is never dropped (its array is freed without its records).
unsafe impl<K, V, P> Record for Entry<K, V, P> {
    unsafe fn migrate(src: *const Self, dst: *mut Self) {
        // SAFETY: the caller passes a published record and a claimed slot.
        unsafe { ptr::copy_nonoverlapping(src, dst, 1) }
    }
}

/// A monitored pid: its record in the monitor index. The word holds the lock bits and,
/// above them, either the mark of the pid's one key or a pointer to its list of marks
/// (`monitor` module docs).
pub(crate) struct Monitor<P> {
    pub(crate) pid: P,
    word: AtomicU64,
}

impl<P> Monitor<P> {
    /// A monitor for a pid's first key, locked by its creator.
    pub(crate) fn locked(pid: P, data: u64) -> Self {
        Monitor {
            pid,
            word: AtomicU64::new(data | crate::raw::LOCKED),
        }
    }

    /// The data bits (for lock-free readers). Acquire: pairs with the Release with which
    /// the holder stored them, so a list they point to is visible.
    pub(crate) fn data(&self) -> u64 {
        self.word.load(Ordering::Acquire) & !WORD_FLAGS
    }
}

// SAFETY: the copy carries the same pid and the word as it was when frozen; the frozen
// word makes the lock holder move to the copy before changing anything.
unsafe impl<P: Copy> Record for Monitor<P> {
    unsafe fn migrate(src: *const Self, dst: *mut Self) {
        // SAFETY: the caller passes a published record.
        let src = unsafe { &*src };
        // Acquire: the holder's data (a list it points to) must be visible to the copy's
        // readers, which synchronize with the copy's publication.
        let word = src.word.fetch_or(crate::raw::W_FROZEN, Ordering::Acquire);
        // SAFETY: the caller passes a claimed, unwritten slot.
        unsafe {
            dst.write(Monitor {
                pid: src.pid,
                word: AtomicU64::new(word),
            })
        };
    }
}

impl<P: Copy + Eq> Lockable for Monitor<P> {
    fn word(&self) -> &AtomicU64 {
        &self.word
    }

    fn same(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}

/// A duplicate registry's key: a pointer to the key's bag, inline in the key table.
pub(crate) struct BagRef<K, V, P>(pub(crate) *mut Bag<K, V, P>);

impl<K, V, P> BagRef<K, V, P> {
    /// The bag. Tables hand out records only under a guard, and a bag is retired through
    /// the epoch after leaving its table, so it outlives the record's borrow.
    #[inline]
    pub(crate) fn bag(&self) -> &Bag<K, V, P> {
        // SAFETY: see above.
        unsafe { &*self.0 }
    }
}

// SAFETY: the copy is the same pointer; the old record is never dropped (records are freed
// with their array, and a `BagRef` owns nothing by itself).
unsafe impl<K, V, P> Record for BagRef<K, V, P> {
    unsafe fn migrate(src: *const Self, dst: *mut Self) {
        // SAFETY: the caller passes a published record and a claimed slot.
        unsafe { dst.write(BagRef((*src).0)) }
    }
}

// SAFETY: a bag holds keys, values and pids, which the registry requires to be `Send` and
// `Sync`; all its shared mutation goes through atomics.
unsafe impl<K: Send + Sync, V: Send + Sync, P: Send + Sync> Send for BagRef<K, V, P> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync, P: Send + Sync> Sync for BagRef<K, V, P> {}
