//! The records the registries keep: entries and bags by key, and monitors by pid.

use core::marker::PhantomData;
use core::mem::{size_of, ManuallyDrop, MaybeUninit};
use core::ops::Deref;
use core::ptr;

use crossbeam_epoch::Guard;

use crate::raw::{Bag, LockWord, Lockable, Record, Slot};
use crate::sync::{AtomicU64, Ordering};

/// One registration, stored inline in the name table.
pub(crate) struct Entry<K, V, P> {
    pub(crate) key: K,
    pub(crate) pid: P,
    pub(crate) value: Value<V>,
}

/// A unique registration's value, stored so that moving its entry is safe.
///
/// A table's growth moves entries by a bitwise copy while readers may still be using the
/// old copy: a `send` through a `Mailbox` value, a listener, a selector. For a value that
/// never changes through `&V` the two copies are the same value. One that does, and owns
/// memory (a `Mutex<Vec<M>>` mailbox that reallocates on a push), would have its copies
/// free memory the other still points to. So a value with drop glue (and room for a
/// pointer) lives in a box of its own, and entries move only the pointer: every copy
/// reaches the one value. Plain values (integers, ids, `Copy` handles) stay inline, at no
/// cost. What no type check can catch is documented on [`Unique`](crate::Unique): state
/// without drop glue changed through `&V` (a bare atomic) may lose changes made during a
/// move.
pub(crate) struct Value<V> {
    /// The value itself, or (boxed) a pointer to it in the first bytes.
    repr: MaybeUninit<V>,
}

impl<V> Value<V> {
    /// Whether values of this type live in a box.
    const BOXED: bool = core::mem::needs_drop::<V>() && size_of::<V>() >= size_of::<*mut V>();

    /// Whether dropping a `Value` does anything (its `Drop` impl makes the type's own
    /// `needs_drop` true even for plain values).
    pub(crate) const NEEDS_DROP: bool = core::mem::needs_drop::<V>();

    pub(crate) fn new(value: V) -> Self {
        let mut repr = MaybeUninit::<V>::uninit();
        if Self::BOXED {
            let boxed = Box::into_raw(Box::new(value));
            // SAFETY: `repr` has room for a pointer (`BOXED`); unaligned, as `V`'s
            // alignment may be smaller than a pointer's.
            unsafe { repr.as_mut_ptr().cast::<*mut V>().write_unaligned(boxed) };
        } else {
            repr.write(value);
        }
        Value { repr }
    }

    /// The box's pointer (only when `BOXED`).
    #[inline]
    fn boxed(&self) -> *mut V {
        debug_assert!(Self::BOXED);
        // SAFETY: `new` wrote a pointer there.
        unsafe { self.repr.as_ptr().cast::<*mut V>().read_unaligned() }
    }

    /// Takes the value out.
    pub(crate) fn into_inner(self) -> V {
        let this = ManuallyDrop::new(self);
        if Self::BOXED {
            // SAFETY: the box is ours, and `this` is not dropped.
            *unsafe { Box::from_raw(this.boxed()) }
        } else {
            // SAFETY: initialized by `new`; `this` is not dropped.
            unsafe { this.repr.assume_init_read() }
        }
    }
}

impl<V> Deref for Value<V> {
    type Target = V;

    #[inline]
    fn deref(&self) -> &V {
        if Self::BOXED {
            // SAFETY: the box lives as long as `self` (it is freed by `drop`).
            unsafe { &*self.boxed() }
        } else {
            // SAFETY: initialized by `new`.
            unsafe { self.repr.assume_init_ref() }
        }
    }
}

impl<V> Drop for Value<V> {
    fn drop(&mut self) {
        if Self::BOXED {
            // SAFETY: the box is ours and freed once, here.
            drop(unsafe { Box::from_raw(self.boxed()) });
        } else {
            // SAFETY: initialized by `new`, dropped once, here.
            unsafe { self.repr.assume_init_drop() };
        }
    }
}

impl<K, V, P> Entry<K, V, P> {
    pub(crate) fn new(key: K, pid: P, value: V) -> Self {
        Entry {
            key,
            pid,
            value: Value::new(value),
        }
    }

    /// Whether dropping an entry does anything.
    pub(crate) const NEEDS_DROP: bool = core::mem::needs_drop::<K>()
        || core::mem::needs_drop::<V>()
        || core::mem::needs_drop::<P>();
}

// SAFETY: an entry does not change once published (a boxed value moves as its pointer,
// so the copies share it), so a bitwise copy is the same entry; the copy left in the old
// array is never dropped (its array is freed without its records).
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
}

// SAFETY: the copy carries the same pid and the word as it was when frozen; the frozen
// word makes the lock holder move to the copy before changing anything.
unsafe impl<P: Copy> Record for Monitor<P> {
    unsafe fn migrate(src: *const Self, dst: *mut Self) {
        // SAFETY: the caller passes a published record.
        let src = unsafe { &*src };
        // Acquire: the holder's data (a list it points to) must be visible to the copy's
        // readers, which synchronize with the copy's publication. Release: a locker that
        // sees the word frozen retries in the next array, which this thread saw installed
        // (as the group's freeze in `migrate_group` does for writers).
        let word = src.word.fetch_or(crate::raw::W_FROZEN, Ordering::AcqRel);
        // SAFETY: the caller passes a claimed, unwritten slot.
        unsafe {
            dst.write(Monitor {
                pid: src.pid,
                word: AtomicU64::new(word),
            })
        };
    }
}

impl<P> LockWord for Monitor<P> {
    fn word(&self) -> &AtomicU64 {
        &self.word
    }
}

impl<P: Copy + Eq> Lockable for Monitor<P> {
    fn same(&self, other: &Self) -> bool {
        self.pid == other.pid
    }
}

/// A monitored pid of a duplicate registry: its record in the monitor index, one word.
///
/// The word holds the lock bits and, above them, the address of the pid's one slot or a
/// pointer to its list of slot addresses (`monitor` module docs). The pid itself is not
/// stored: every slot the word reaches holds it, so the record is half a [`Monitor`]'s
/// size (8 bytes for a `u64` pid instead of 16), which at millions of pids is about a
/// quarter of a duplicate entry's memory. The price is a read of the slot when a probe's
/// tag matches; `process_down` and `keys` read that slot next anyway.
///
/// A record is only ever published with a slot in it (`Duplicate::register` claims the
/// slot first), and the slots a monitor reaches are reclaimed only after it no longer
/// reaches them (the registry retires them after the pid's lock is released, and
/// [`monitor::clear`](crate::monitor::clear) removes the record before it retires a list).
/// So the pid read through a record under a guard is the record's own.
pub(crate) struct SlotMonitor<P> {
    word: AtomicU64,
    _pid: PhantomData<P>,
}

impl<P: Copy> SlotMonitor<P> {
    /// A monitor for a pid's first entry, in `slot` (whose pid is written), locked by its
    /// creator.
    pub(crate) fn locked(slot: u64) -> Self {
        debug_assert_ne!(slot, 0);
        SlotMonitor {
            word: AtomicU64::new(slot | crate::raw::LOCKED),
            _pid: PhantomData,
        }
    }

    /// The pid, read from the first slot the record reaches.
    #[inline]
    pub(crate) fn pid<V>(&self, guard: &Guard) -> P {
        // SAFETY: read under `guard`; see the type's docs for why the slot is the pid's.
        unsafe { Slot::<V, P>::pid_at(crate::monitor::first_mark(self.data(), guard), guard) }
    }
}

// SAFETY: the copy carries the word as it was when frozen (and so the same slots); the
// frozen word makes the lock holder move to the copy before changing anything.
unsafe impl<P> Record for SlotMonitor<P> {
    unsafe fn migrate(src: *const Self, dst: *mut Self) {
        // SAFETY: the caller passes a published record.
        let src = unsafe { &*src };
        // AcqRel: as in `Monitor`'s migration.
        let word = src.word.fetch_or(crate::raw::W_FROZEN, Ordering::AcqRel);
        // SAFETY: the caller passes a claimed, unwritten slot.
        unsafe {
            dst.write(SlotMonitor {
                word: AtomicU64::new(word),
                _pid: PhantomData,
            })
        };
    }
}

impl<P> LockWord for SlotMonitor<P> {
    fn word(&self) -> &AtomicU64 {
        &self.word
    }
}

impl<P> Lockable for SlotMonitor<P> {
    /// Two records are the same pid's when they reach the same slots: no two monitors ever
    /// share a slot or a list, and only the lock holder changes the word.
    fn same(&self, other: &Self) -> bool {
        self.data() == other.data()
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

#[cfg(all(test, not(loom)))]
mod tests {
    use core::mem::size_of;

    use super::{Entry, Value};
    use crate::Pid;

    #[test]
    fn plain_values_stay_inline_at_their_own_size() {
        const { assert!(!Value::<u64>::BOXED && !Value::<()>::BOXED && !Value::<u16>::BOXED) };
        assert_eq!(size_of::<Value<u64>>(), 8);
        assert_eq!(size_of::<Value<()>>(), 0);
        // The record every benchmark and memory bar measures.
        assert_eq!(size_of::<Entry<u64, u64, Pid>>(), 24);
    }

    #[test]
    fn values_with_drop_glue_are_boxed_and_reach_one_value() {
        const { assert!(Value::<String>::BOXED && Value::<Vec<u8>>::BOXED) };
        let value = Value::new(String::from("mailbox"));
        // A bitwise copy, as a table's migration makes, points at the same value.
        // SAFETY: the copy is only read, and forgotten before `value` drops.
        let copy = core::mem::ManuallyDrop::new(unsafe { core::ptr::read(&value) });
        assert!(core::ptr::eq(&**copy, &*value));
        assert_eq!(value.into_inner(), "mailbox");
    }
}
