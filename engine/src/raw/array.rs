//! One generation of a partition's table: cache-line groups of slots and the slot states.
//!
//! A group is one cache line: a 64-bit header (a 1-byte tag per slot, the group's migration
//! state in the top byte) and seven slots, each a tagged pointer to a heap node:
//!
//! ```text
//! header: [tag0 .. tag6 | state]   slots: [*N; 7]
//! slot word: null = vacant · TOMB = removed · ptr = live · | FROZEN (copied out) · | LOCKED
//! ```
//!
//! A slot is claimed once (vacant → live, by CAS) and never becomes vacant again: a removed
//! entry leaves a tombstone until the next migration drops it. That one rule is what makes
//! lock-free insert-if-absent work with linear probing: every writer of a key scans the same
//! sequence and races for the same first vacant slot, so two writers of one key always meet.
//! Tags are hints written after the claim; a reader that sees a zero tag loads the slot.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr;

use crate::counter::Counter;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Slots per group: seven 8-byte slots and the 8-byte header fill one cache line. Under loom,
/// two slots make a handful of keys fill a table so that migrations really run.
#[cfg(not(loom))]
pub(crate) const WIDTH: usize = 7;
#[cfg(loom)]
pub(crate) const WIDTH: usize = 2;

/// The slot's entry was copied to the next array (or is being copied); writers go there.
pub(crate) const FROZEN: usize = 0b001;
/// The entry was removed. Stored without a pointer.
pub(crate) const TOMB: usize = 0b010;
/// A per-slot lock (the monitor index locks a pid's slot while it edits the pid's list).
pub(crate) const LOCKED: usize = 0b100;
const FLAGS: usize = FROZEN | TOMB | LOCKED;

/// Group state, in the header's top byte: a thread has claimed the group's migration.
pub(crate) const MIGRATING: u64 = 1 << 56;
/// Every live entry of the group is in the next array.
pub(crate) const MIGRATED: u64 = 1 << 57;

/// Node types stored in a table must leave the three flag bits of their address free.
pub(crate) const NODE_ALIGN: usize = 8;

#[inline]
pub(crate) fn node_of<N>(word: *mut N) -> *mut N {
    word.map_addr(|a| a & !FLAGS)
}

#[inline]
pub(crate) fn has<N>(word: *mut N, flag: usize) -> bool {
    word.addr() & flag != 0
}

#[inline]
pub(crate) fn with<N>(word: *mut N, flag: usize) -> *mut N {
    word.map_addr(|a| a | flag)
}

#[inline]
pub(crate) fn tomb<N>() -> *mut N {
    ptr::without_provenance_mut(TOMB)
}

/// What a slot holds, with the flags that matter to a reader separated out.
pub(crate) enum Slot<N> {
    /// Never claimed. `frozen` vacancies end a probe in the old array of a migration.
    Vacant {
        frozen: bool,
    },
    Tomb,
    Live {
        node: *mut N,
        frozen: bool,
    },
}

impl<N> Slot<N> {
    #[inline]
    pub(crate) fn decode(word: *mut N) -> Slot<N> {
        let node = node_of(word);
        let frozen = has(word, FROZEN);
        if !node.is_null() {
            Slot::Live { node, frozen }
        } else if has(word, TOMB) {
            Slot::Tomb
        } else {
            Slot::Vacant { frozen }
        }
    }
}

/// The tag of a hash: 8 bits that neither the partition (top bits) nor the home group (low
/// bits) use, never 0 (0 means "not written yet").
#[inline]
pub(crate) fn tag_of(hash: u64) -> u8 {
    ((hash >> 48) as u8).max(1)
}

#[inline]
pub(crate) fn tag_at(header: u64, i: usize) -> u8 {
    (header >> (8 * i)) as u8
}

#[repr(C, align(64))]
pub(crate) struct Group<N> {
    pub(crate) header: AtomicU64,
    pub(crate) slots: [AtomicPtr<N>; WIDTH],
}

impl<N> Group<N> {
    /// The group's state bits (Acquire: pairs with the Release `fetch_or(MIGRATED)` in
    /// `migrate_group`, so a reader that sees MIGRATED also sees the copies).
    #[inline]
    pub(crate) fn migrated(&self) -> bool {
        self.header.load(Ordering::Acquire) & MIGRATED != 0
    }

    /// Publishes slot `i`'s tag after its claim. Relaxed: the tag is only a hint, and the
    /// byte was 0, so OR-ing it in cannot disturb another slot's tag or the state byte.
    #[inline]
    pub(crate) fn set_tag(&self, i: usize, tag: u8) {
        self.header
            .fetch_or(u64::from(tag) << (8 * i), Ordering::Relaxed);
    }
}

/// One generation of a partition's table.
pub(crate) struct Array<N> {
    groups: *mut Group<N>,
    len: usize,
    /// Slots ever claimed (live + tombstones); growth is decided on this.
    pub(crate) used: Counter,
    /// Tombstones left by removals; `used - tombs` is the live count the next size is
    /// computed from.
    pub(crate) tombs: Counter,
    /// The array this one migrates into, once a migration started (null before).
    pub(crate) next: AtomicPtr<Array<N>>,
    /// The next group index a helper claims for copying.
    pub(crate) claimed: AtomicUsize,
    /// Groups whose copy is complete; the thread that completes the last one promotes `next`.
    pub(crate) migrated: AtomicUsize,
    _nodes: PhantomData<*mut N>,
}

impl<N> Array<N> {
    /// An array of `len` groups (`len` a power of two), all slots vacant.
    pub(crate) fn new(len: usize) -> Array<N> {
        debug_assert!(len.is_power_of_two());
        Array {
            groups: alloc_groups(len),
            len,
            used: Counter::new(),
            tombs: Counter::new(),
            next: AtomicPtr::new(ptr::null_mut()),
            claimed: AtomicUsize::new(0),
            migrated: AtomicUsize::new(0),
            _nodes: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn groups(&self) -> &[Group<N>] {
        // SAFETY: `groups` points to `len` initialized groups owned by `self` (alloc_groups).
        unsafe { core::slice::from_raw_parts(self.groups, self.len) }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn slots(&self) -> usize {
        self.len * WIDTH
    }

    /// Heap bytes this array holds.
    pub(crate) fn bytes(&self) -> usize {
        self.len * core::mem::size_of::<Group<N>>() + core::mem::size_of::<Self>()
    }

    /// The probe sequence of `hash`: every group once, starting at the home group.
    #[inline]
    pub(crate) fn probe(&self, hash: u64) -> impl Iterator<Item = (usize, &Group<N>)> + '_ {
        let mask = self.len - 1;
        let home = hash as usize & mask;
        let groups = self.groups();
        (0..self.len).map(move |step| {
            let g = (home + step) & mask;
            (g, &groups[g])
        })
    }

    /// Whether claiming one more slot would pass the 7/8 load limit.
    #[inline]
    pub(crate) fn over_limit(&self, used: usize) -> bool {
        used * 8 > self.slots() * 7
    }

    /// Live entries (claimed slots less tombstones), exact when no write is in flight.
    pub(crate) fn live(&self) -> usize {
        self.used.sum().saturating_sub(self.tombs.sum())
    }
}

impl<N> Drop for Array<N> {
    fn drop(&mut self) {
        // SAFETY: `groups` came from `alloc_groups(self.len)` and is freed only here.
        unsafe { free_groups(self.groups, self.len) }
    }
}

fn layout<N>(len: usize) -> Layout {
    Layout::array::<Group<N>>(len).expect("table size overflows the address space")
}

/// Allocates `len` vacant groups. An all-zero group is a valid vacant group (zero atomics,
/// null slots), so a fresh array costs a zeroed allocation: large ones come straight from
/// the OS as untouched pages, and growth pays no O(n) initialization up front.
#[cfg(not(loom))]
fn alloc_groups<N>(len: usize) -> *mut Group<N> {
    let layout = layout::<N>(len);
    // SAFETY: `layout` has non-zero size (len >= 1, groups are 64 bytes).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Group<N>>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    ptr
}

/// Loom atomics are not plain memory: build each group.
#[cfg(loom)]
fn alloc_groups<N>(len: usize) -> *mut Group<N> {
    let groups: Box<[Group<N>]> = (0..len)
        .map(|_| Group {
            header: AtomicU64::new(0),
            slots: core::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        })
        .collect();
    Box::into_raw(groups).cast::<Group<N>>()
}

/// # Safety
///
/// `ptr` must come from `alloc_groups(len)` and not be used afterwards.
#[cfg(not(loom))]
unsafe fn free_groups<N>(ptr: *mut Group<N>, len: usize) {
    // SAFETY: allocated by `alloc_zeroed` with this layout (caller); atomics need no drop.
    unsafe { std::alloc::dealloc(ptr.cast(), layout::<N>(len)) }
}

/// # Safety
///
/// `ptr` must come from `alloc_groups(len)` and not be used afterwards.
#[cfg(loom)]
unsafe fn free_groups<N>(ptr: *mut Group<N>, len: usize) {
    // SAFETY: the caller passes the boxed slice `alloc_groups` leaked.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, len)) });
}

// SAFETY: an array holds atomics and pointers to nodes that the owning table shares between
// threads only when the node types are Send + Sync (enforced by the registries' bounds).
unsafe impl<N: Send + Sync> Send for Array<N> {}
// SAFETY: as above; all shared mutation goes through atomics.
unsafe impl<N: Send + Sync> Sync for Array<N> {}
