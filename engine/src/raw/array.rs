//! One generation of a partition's table: the control words and the inline slots.
//!
//! ```text
//! ctrl:  [u64; groups]            one word per group: 7 slot bytes + 1 group-state byte
//! slots: [E; (groups + TAIL) * 7] records stored inline, written once
//! ```
//!
//! The control words are a separate, compact array (1.14 bytes per slot), so a probe reads
//! one word that is usually in the last-level cache, and touches a record only when a tag
//! matches: a miss costs no record access, a hit one. Every state change of a group is a
//! CAS (or, by the slot's owner, a `fetch_xor`) on its word, so a reader gets a consistent
//! picture of the group, migration state included, from a single load.
//!
//! A slot byte moves `VACANT → WRITING → tag → TOMB` and is never vacant again in this
//! array. A published record's byte is its tag itself: any value from 4 to 255, so tags
//! carry almost 8 bits of the hash and a probe compares a record's key on a false tag match
//! once in 248 slots, not once in 64 as with a 6-bit tag beside state bits. (Those
//! compares are cache misses at scale: at 1M keys they took a third of the profile of a
//! lookup that misses.) The one state a record has beyond "published" lives in the group
//! byte: `UPDATING` and the slot it names, while an update publishes the record's
//! replacement elsewhere, so at most one update per group is in flight. The group byte's
//! top bit, `OVERFLOW`, says that a record was placed past the group: a reader stops at a
//! full group without it.
//!
//! Write-once slots are what let readers use a record without a lock or a version
//! check: once published, its bytes do not change until the array itself is reclaimed.
//! Probes do not wrap around: `TAIL` spare groups follow the last home group, so probe
//! order is index order, which is what makes `for_each` exact.

#[cfg(not(loom))]
use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr;

use crate::counter::Counter;
use crate::sync::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Slots per group: 7 slot bytes and a state byte fill the 64-bit control word. Under loom
/// two slots make a handful of keys fill a table, so that migrations really run.
#[cfg(not(loom))]
pub(crate) const WIDTH: usize = 7;
#[cfg(loom)]
pub(crate) const WIDTH: usize = 2;

/// Spare groups after the last home group: probes run into them instead of wrapping.
#[cfg(not(loom))]
const TAIL: usize = 8;
#[cfg(loom)]
const TAIL: usize = 1;

// Slot bytes. A published record's byte is its tag, `MIN_TAG` or more.
pub(crate) const VACANT: u8 = 0x00;
pub(crate) const TOMB: u8 = 0x01;
/// Claimed by a writer that is filling the record in; not yet visible.
pub(crate) const WRITING: u8 = 0x02;
/// The least tag: bytes below it are states (3 is unused), so "published" is one mask test.
const MIN_TAG: u8 = 0x04;

// Group state, in the top byte.
/// No slot of the group changes any more (a migration is copying it).
pub(crate) const FROZEN: u64 = 1 << 56;
/// A thread claimed the group's copy.
pub(crate) const MIGRATING: u64 = 1 << 57;
/// Every live record of the group is in the next array.
pub(crate) const MIGRATED: u64 = 1 << 58;
/// The record in the slot that the bits from `UPDATING_SHIFT` name is being replaced: it
/// stays current until its replacement is published elsewhere, and the group cannot be
/// frozen meanwhile.
pub(crate) const UPDATING: u64 = 1 << 59;
/// Where an update's slot index sits (3 bits: `WIDTH` ≤ 8).
const UPDATING_SHIFT: u32 = 60;
/// A record was placed past this group (it was full when its probe came by): a probe that
/// finds the group full goes on only if this is set. Set before that record is published,
/// never cleared in this array (slots are never vacant again, so the group stays full).
pub(crate) const OVERFLOW: u64 = 1 << 63;

const SLOT_BYTES: u64 = (1u64 << (8 * WIDTH)) - 1;
const ONES: u64 = 0x0101_0101_0101_0101 & SLOT_BYTES;
const HIGHS: u64 = ONES << 7;
const LOWS: u64 = ONES * 0x7F;

/// The tag of `hash`: 8 bits that neither the partition (at most the top 16 bits) nor the
/// home group (bits 3 to 39 at most) uses, moved out of the state values 0 to 3.
#[inline]
pub(crate) fn tag_of(hash: u64) -> u8 {
    let t = (hash >> 40) as u8;
    // 0..4 become 0x80..0x84: those four tags are twice as likely as the others, a false
    // match rate of 1/248 instead of 1/252.
    if t < MIN_TAG {
        t | 0x80
    } else {
        t
    }
}

/// Whether slot byte `b` holds a published record.
#[inline]
pub(crate) fn published(b: u8) -> bool {
    b >= MIN_TAG
}

/// The group-state bits that mark slot `i`'s record as being updated.
#[inline]
pub(crate) fn updating_at(i: usize) -> u64 {
    UPDATING | ((i as u64) << UPDATING_SHIFT)
}

/// The slot whose record is being updated, if any.
#[inline]
pub(crate) fn updating(ctrl: u64) -> Option<usize> {
    (ctrl & UPDATING != 0).then_some(((ctrl >> UPDATING_SHIFT) & 0b111) as usize)
}

/// A mask with the high bit set in every slot byte of `v` that is zero.
#[inline]
fn zero_bytes(v: u64) -> u64 {
    !(((v & LOWS) + LOWS) | v | LOWS) & HIGHS
}

/// Slot bytes holding a current record with `tag`.
#[inline]
pub(crate) fn matches(ctrl: u64, tag: u8) -> u64 {
    // `zero_bytes` looks at slot bytes only, so the group byte needs no mask.
    zero_bytes(ctrl ^ (ONES * u64::from(tag)))
}

/// Slot bytes that are vacant.
#[inline]
pub(crate) fn vacant(ctrl: u64) -> u64 {
    zero_bytes((ctrl & SLOT_BYTES) ^ (ONES * u64::from(VACANT)))
}

/// Slot bytes holding a current record, any tag.
#[inline]
pub(crate) fn current(ctrl: u64) -> u64 {
    // A byte is a state (0 to 3) exactly when its bits from 2 up are clear.
    !zero_bytes(ctrl & (ONES * u64::from(!(MIN_TAG - 1)))) & HIGHS
}

/// Whether a slot of the group is being written (a claim not yet published).
#[inline]
pub(crate) fn writing(ctrl: u64) -> bool {
    zero_bytes((ctrl & SLOT_BYTES) ^ (ONES * u64::from(WRITING))) != 0
}

/// Whether a slot of the group is mid-write (WRITING, or a record UPDATING): the group
/// cannot be frozen, and a writer looking for its key must wait for it.
#[inline]
pub(crate) fn busy(ctrl: u64) -> bool {
    writing(ctrl) || ctrl & UPDATING != 0
}

/// Iterates the slot indices of a byte mask.
#[inline]
pub(crate) fn indices(mut mask: u64) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        if mask == 0 {
            return None;
        }
        let i = mask.trailing_zeros() as usize / 8;
        mask &= mask - 1;
        Some(i)
    })
}

/// `ctrl` with slot byte `i` replaced by `byte`.
#[inline]
pub(crate) fn with_byte(ctrl: u64, i: usize, byte: u8) -> u64 {
    (ctrl & !(0xFF << (8 * i))) | (u64::from(byte) << (8 * i))
}

/// The value to `fetch_xor` into a word to turn slot byte `i` from `from` into `to`.
#[inline]
pub(crate) fn flip(i: usize, from: u8, to: u8) -> u64 {
    u64::from(from ^ to) << (8 * i)
}

#[inline]
pub(crate) fn byte(ctrl: u64, i: usize) -> u8 {
    (ctrl >> (8 * i)) as u8
}

/// One generation of a partition's table.
/// Record storage. Under loom each slot is a loom cell, so that loom checks every read of a
/// record against its write (a publication with too weak an ordering is reported).
#[cfg(not(loom))]
type Cell<E> = MaybeUninit<E>;
#[cfg(loom)]
type Cell<E> = loom::cell::UnsafeCell<MaybeUninit<E>>;

pub(crate) struct Array<E> {
    ctrl: *mut AtomicU64,
    slots: *mut Cell<E>,
    /// Home groups; `len + TAIL` groups exist.
    len: usize,
    /// Slots ever claimed (live + tombstones); growth is decided on this.
    pub(crate) used: Counter,
    /// Tombstones; `used - tombs` sizes the next array.
    pub(crate) tombs: Counter,
    /// The array this one migrates into, once a migration started (null before).
    pub(crate) next: AtomicPtr<Array<E>>,
    /// The next group index a helper claims for copying.
    pub(crate) claimed: AtomicUsize,
    /// Groups whose copy is complete.
    pub(crate) migrated: AtomicUsize,
    _records: PhantomData<E>,
}

impl<E> Array<E> {
    /// An array of `len` home groups (`len` a power of two), all slots vacant.
    pub(crate) fn new(len: usize) -> Array<E> {
        debug_assert!(len.is_power_of_two());
        let groups = len + TAIL;
        Array {
            ctrl: alloc_ctrl(groups),
            slots: alloc_slots::<E>(groups * WIDTH),
            len,
            used: Counter::new(),
            tombs: Counter::new(),
            next: AtomicPtr::new(ptr::null_mut()),
            claimed: AtomicUsize::new(0),
            migrated: AtomicUsize::new(0),
            _records: PhantomData,
        }
    }

    /// Home groups.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// All groups, tail included.
    #[inline]
    pub(crate) fn groups(&self) -> usize {
        self.len + TAIL
    }

    /// Slots that count towards the load limit (the tail is headroom).
    #[inline]
    pub(crate) fn slots(&self) -> usize {
        self.len * WIDTH
    }

    #[inline]
    pub(crate) fn ctrl(&self, g: usize) -> &AtomicU64 {
        debug_assert!(g < self.groups());
        // SAFETY: `g` is in bounds and the words live as long as `self`.
        unsafe { &*self.ctrl.add(g) }
    }

    /// Slot `i` of group `g`, to write a record into (a claimed slot) or to take one out
    /// of (teardown).
    #[inline]
    pub(crate) fn slot(&self, g: usize, i: usize) -> *mut E {
        let cell = self.cell(g, i);
        #[cfg(not(loom))]
        return cell.cast();
        #[cfg(loom)]
        // SAFETY: the cell is in bounds and lives as long as `self`.
        return unsafe { &*cell }.with_mut(|p| p.cast());
    }

    /// The published record in slot `i` of group `g`, to read.
    #[inline]
    pub(crate) fn record(&self, g: usize, i: usize) -> *const E {
        let cell = self.cell(g, i);
        #[cfg(not(loom))]
        return cell.cast_const().cast();
        #[cfg(loom)]
        // SAFETY: the cell is in bounds and lives as long as `self`.
        return unsafe { &*cell }.with(|p| p.cast());
    }

    #[inline]
    fn cell(&self, g: usize, i: usize) -> *mut Cell<E> {
        debug_assert!(g < self.groups() && i < WIDTH);
        // SAFETY: in bounds of the slot allocation.
        unsafe { self.slots.add(g * WIDTH + i) }
    }

    /// `hash`'s home group. Bits 3.. pick it: the low 3 are left to `mark`.
    #[inline]
    pub(crate) fn home(&self, hash: u64) -> usize {
        (hash >> 3) as usize & (self.len - 1)
    }

    /// The groups a probe for `hash` visits, in order: from the home group to the end (the
    /// spare tail groups included), then from the first group back to the home one. Keys
    /// that spill past the tail (many equal hashes: a bad or hostile hasher) wrap around
    /// instead of forcing the table to grow without bound.
    #[inline]
    pub(crate) fn probe(&self, hash: u64) -> Probe {
        self.probe_from(self.home(hash))
    }

    /// The probe sequence of the keys whose home group is `home`.
    #[inline]
    pub(crate) fn probe_from(&self, home: usize) -> Probe {
        Probe {
            next: home,
            end: self.groups(),
            home,
            wrapped: false,
        }
    }

    /// Marks `OVERFLOW` on every group of `hash`'s probe sequence before group `g`, where a
    /// record of `hash` is about to be published: a probe that passes them must not stop
    /// at one because it is full. Most records land in their home group, which this only
    /// compares.
    #[inline]
    pub(crate) fn mark_passed(&self, hash: u64, g: usize) {
        self.mark_passed_from(self.home(hash), g);
    }

    /// [`mark_passed`](Self::mark_passed) for the keys whose home group is `home`.
    #[inline]
    pub(crate) fn mark_passed_from(&self, home: usize, g: usize) {
        // Most records land in their home group: nothing was passed.
        if g == home {
            return;
        }
        for p in self.probe_from(home) {
            if p == g {
                return;
            }
            let word = self.ctrl(p);
            // Relaxed: the record's publication, later in this thread, is what a reader
            // synchronizes with; a reader that reads this word before the bit lands stops
            // here before the record exists (see `find_each`).
            if word.load(Ordering::Relaxed) & OVERFLOW == 0 {
                word.fetch_or(OVERFLOW, Ordering::Relaxed);
            }
        }
    }

    /// Claims vacant slot `i` of group `g`, seen in `ctrl`: false if the word changed
    /// meanwhile (another claim, a removal, a freeze).
    #[inline]
    pub(crate) fn try_claim(&self, g: usize, i: usize, ctrl: u64) -> bool {
        // Relaxed: a claim publishes nothing; the record is published by `publish`.
        self.ctrl(g)
            .compare_exchange(
                ctrl,
                with_byte(ctrl, i, WRITING),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Starts loading `hash`'s home group (control word and first records) into the cache,
    /// so that the record access that follows a tag match overlaps the control word's miss.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        self.prefetch_group(self.home(hash));
    }

    /// Starts loading group `g`'s control word and first records.
    #[inline]
    pub(crate) fn prefetch_group(&self, g: usize) {
        prefetch(ptr::from_ref(self.ctrl(g)));
        let first = self.cell(g, 0).cast_const();
        prefetch(first);
        // A group's records span up to three cache lines; most hits are in the first two.
        prefetch(first.cast::<u8>().wrapping_add(64));
    }

    /// Whether `used` claimed slots pass the 7/8 load limit.
    #[inline]
    pub(crate) fn over_limit(&self, used: usize) -> bool {
        used * 8 > self.slots() * 7
    }

    /// Live records (claimed slots less tombstones), exact when no write is in flight.
    pub(crate) fn live(&self) -> usize {
        self.used.sum().saturating_sub(self.tombs.sum())
    }

    /// Heap bytes this array holds.
    pub(crate) fn bytes(&self) -> usize {
        let groups = self.groups();
        groups * 8 + groups * WIDTH * core::mem::size_of::<E>() + core::mem::size_of::<Self>()
    }
}

impl<E> Drop for Array<E> {
    fn drop(&mut self) {
        let groups = self.groups();
        // SAFETY: both allocations come from `new` with these sizes and are freed only
        // here. Records are not dropped: the owner moved or dropped each one already.
        unsafe {
            free_ctrl(self.ctrl, groups);
            free_slots(self.slots, groups * WIDTH);
        }
    }
}

/// Control words start zeroed: every slot vacant, no group state. Large arrays come
/// straight from the OS as untouched zero pages, so growth pays no O(n) initialization.
#[cfg(not(loom))]
fn alloc_ctrl(groups: usize) -> *mut AtomicU64 {
    let layout = Layout::array::<AtomicU64>(groups).expect("table too large");
    // An all-zero `AtomicU64` is valid.
    super::allocate(layout, true).cast::<AtomicU64>()
}

/// Loom atomics are not plain memory: build each word.
#[cfg(loom)]
fn alloc_ctrl(groups: usize) -> *mut AtomicU64 {
    let words: Box<[AtomicU64]> = (0..groups).map(|_| AtomicU64::new(0)).collect();
    Box::into_raw(words).cast()
}

/// # Safety
///
/// `ptr` comes from `alloc_ctrl(groups)` and is not used afterwards.
#[cfg(not(loom))]
unsafe fn free_ctrl(ptr: *mut AtomicU64, groups: usize) {
    let layout = Layout::array::<AtomicU64>(groups).expect("allocated with this layout");
    // SAFETY: as the caller guarantees; atomics need no drop.
    unsafe { std::alloc::dealloc(ptr.cast(), layout) }
}

/// # Safety
///
/// `ptr` comes from `alloc_ctrl(groups)` and is not used afterwards.
#[cfg(loom)]
unsafe fn free_ctrl(ptr: *mut AtomicU64, groups: usize) {
    // SAFETY: the boxed slice `alloc_ctrl` leaked.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, groups)) });
}

/// Uninitialized record storage: a slot is written before its byte is published.
fn alloc_slots<E>(n: usize) -> *mut Cell<E> {
    #[cfg(not(loom))]
    let cells = Box::<[E]>::new_uninit_slice(n);
    #[cfg(loom)]
    let cells: Box<[Cell<E>]> = (0..n).map(|_| Cell::new(MaybeUninit::uninit())).collect();
    Box::into_raw(cells).cast()
}

/// # Safety
///
/// `ptr` comes from `alloc_slots(n)` and is not used afterwards.
unsafe fn free_slots<E>(ptr: *mut Cell<E>, n: usize) {
    // SAFETY: the boxed slice `alloc_slots` leaked; `MaybeUninit` drops nothing.
    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, n)) });
}

// SAFETY: an array holds atomics and records that the owning table shares between threads
// only when the record type is Send + Sync (the registries' bounds).
unsafe impl<E: Send + Sync> Send for Array<E> {}
// SAFETY: as above; shared mutation goes through the control words and the record's own
// atomics.
unsafe impl<E: Send + Sync> Sync for Array<E> {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn byte_masks() {
        let tag = 0x95;
        let mut c = 0u64;
        c = with_byte(c, 0, tag);
        c = with_byte(c, 1, TOMB);
        c = with_byte(c, 2, tag);
        c = with_byte(c, 3, MIN_TAG);
        c = with_byte(c, 4, WRITING);
        c |= FROZEN | MIGRATED | updating_at(2);
        assert_eq!(indices(matches(c, tag)).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(indices(vacant(c)).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(indices(current(c)).collect::<Vec<_>>(), [0, 2, 3]);
        assert_eq!(updating(c), Some(2));
        assert!(busy(c));
        assert!(busy(with_byte(c, 4, TOMB)));
        assert!(!busy(with_byte(c, 4, TOMB) ^ updating_at(2)));
        assert_eq!(updating(c ^ updating_at(2)), None);
        assert_eq!(byte(c ^ flip(4, WRITING, 0xFF), 4), 0xFF);
        // The group byte never matches, and no state byte is current.
        assert_eq!(matches(!SLOT_BYTES, 0xFF), 0);
        for state in [VACANT, TOMB, WRITING, 3] {
            assert_eq!(current(ONES * u64::from(state)), 0);
        }
        assert_eq!(current(ONES * u64::from(MIN_TAG)), HIGHS);
        assert_eq!(vacant(!SLOT_BYTES), HIGHS);
    }

    #[test]
    fn tags_are_never_states() {
        for t in 0..=u8::MAX {
            let tag = tag_of(u64::from(t) << 40);
            assert!(published(tag), "tag {tag:#x} of {t:#x} reads as a state");
            assert_eq!(tag, if t < MIN_TAG { t | 0x80 } else { t });
            // The partition's and home group's bits do not change it.
            assert_eq!(
                tag_of((u64::from(t) << 40) | 0xFFFF_0000_0000_0000 | 0xFF_FFFF_FFF8),
                tag
            );
        }
    }
}

/// The groups of a probe sequence (see `Array::probe`).
pub(crate) struct Probe {
    next: usize,
    end: usize,
    home: usize,
    wrapped: bool,
}

impl Iterator for Probe {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.next == self.end {
            if self.wrapped || self.home == 0 {
                return None;
            }
            self.wrapped = true;
            self.next = 0;
            self.end = self.home;
        }
        let g = self.next;
        self.next += 1;
        Some(g)
    }
}

/// A hint to bring the line holding `p` into the cache. Never faults; a no-op where the
/// target has no prefetch instruction.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse", not(loom)))]
    // SAFETY: a prefetch is a hint: it neither faults nor has any visible effect, whatever
    // the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse", not(loom))))]
    let _ = p;
}
