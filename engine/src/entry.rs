//! The entry node shared by a registry's name table and its monitor index.

use core::mem::{self, ManuallyDrop};
use core::ptr;

use crate::sync::{AtomicPtr, Ordering};

/// One registration. Written once before it is published and immutable afterwards, except
/// `next`, which only the holder of the pid's monitor lock writes.
///
/// `key` and `value` are `ManuallyDrop` because an update moves the key into the node that
/// replaces this one; which parts are dropped is decided by the function that frees it.
#[repr(C, align(8))] // the table keeps three flag bits in node addresses
pub(crate) struct Entry<K, V, P> {
    pub(crate) key: ManuallyDrop<K>,
    pub(crate) value: ManuallyDrop<V>,
    pub(crate) pid: P,
    /// The next entry of the same pid: the monitor index is a list threaded through the
    /// entries, so watching a pid costs one pointer per entry and one slot per pid.
    pub(crate) next: AtomicPtr<Entry<K, V, P>>,
}

const _: () = assert!(mem::align_of::<Entry<u8, (), ()>>() >= crate::raw::NODE_ALIGN);

impl<K, V, P> Entry<K, V, P> {
    pub(crate) fn boxed(key: K, value: V, pid: P, next: *mut Self) -> *mut Self {
        Box::into_raw(Box::new(Entry {
            key: ManuallyDrop::new(key),
            value: ManuallyDrop::new(value),
            pid,
            next: AtomicPtr::new(next),
        }))
    }

    /// The next entry of the pid's list.
    ///
    /// Acquire: pairs with the Release in `set_next`, so a reader walking the list without
    /// the pid's lock (`keys`) sees the contents of the node it steps to.
    #[inline]
    pub(crate) fn next(&self) -> *mut Self {
        self.next.load(Ordering::Acquire)
    }

    /// Links the next entry; only the holder of the pid's lock calls it. Release: publishes
    /// the linked node to lock-free walkers (pairs with the Acquire in `next`).
    #[inline]
    pub(crate) fn set_next(&self, next: *mut Self) {
        self.next.store(next, Ordering::Release);
    }

    /// Frees a node and drops its key and value.
    ///
    /// # Safety
    ///
    /// `this` comes from `boxed`, is unreachable, and its key was not moved out.
    pub(crate) unsafe fn free(this: *mut Self) {
        // SAFETY: exclusive and owned (caller).
        let mut entry = unsafe { Box::from_raw(this) };
        // SAFETY: dropped exactly once, here; the box is freed right after.
        unsafe {
            ManuallyDrop::drop(&mut entry.key);
            ManuallyDrop::drop(&mut entry.value);
        }
    }

    /// Frees a node whose key was moved into its replacement: drops the value only.
    ///
    /// # Safety
    ///
    /// As for `free`, but the key was moved out.
    pub(crate) unsafe fn free_moved_key(this: *mut Self) {
        // SAFETY: exclusive and owned (caller).
        let mut entry = unsafe { Box::from_raw(this) };
        // SAFETY: the value is dropped exactly once, here; the key belongs to another node.
        unsafe { ManuallyDrop::drop(&mut entry.value) };
    }

    /// Frees a node that was never handed to a reader, returning its key and value.
    ///
    /// # Safety
    ///
    /// `this` comes from `boxed` and no other thread can reach it.
    pub(crate) unsafe fn into_parts(this: *mut Self) -> (K, V) {
        // SAFETY: exclusive and owned (caller).
        let entry = unsafe { Box::from_raw(this) };
        let Entry { key, value, .. } = *entry;
        (
            ManuallyDrop::into_inner(key),
            ManuallyDrop::into_inner(value),
        )
    }

    /// Moves the key and value out of a node that other threads may still be reading
    /// (through the pid only), leaving it to be freed with `free_moved_parts`.
    ///
    /// # Safety
    ///
    /// `this` is live, nobody else moves or drops its key and value, and readers that may
    /// still reach it read only `pid`.
    pub(crate) unsafe fn take_parts(this: *mut Self) -> (K, V) {
        // SAFETY: moved out exactly once (caller); the bytes stay in place for readers.
        unsafe { (ptr::read(&*(*this).key), ptr::read(&*(*this).value)) }
    }

    /// Frees a node whose key and value were moved out.
    ///
    /// # Safety
    ///
    /// `this` comes from `boxed`, is unreachable, and `take_parts` moved its parts out.
    pub(crate) unsafe fn free_moved_parts(this: *mut Self) {
        // SAFETY: owned (caller); `ManuallyDrop` fields are not dropped by the box.
        drop(unsafe { Box::from_raw(this) });
    }
}
