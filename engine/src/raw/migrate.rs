//! Growth and compaction: a cooperative, incremental copy into a new array.
//!
//! When a claim pushes an array past 7/8 load, `start_migration` installs a `next` array
//! sized for the live entries (twice them, so tombstones are dropped and a table full of
//! removals shrinks back). From then on every writer of the partition, before its own
//! operation, copies a chunk of groups (`help`) and every group of its key's probe sequence
//! (`ensure_copied`), and then works in `next`. Readers never copy and never wait.
//!
//! Copying a group: claim it (MIGRATING), freeze each slot (set FROZEN by CAS, so no writer
//! can change it in the old array any more), copy its live words into `next`, then publish
//! MIGRATED. The writer that completes the last group makes `next` current and retires the
//! old array through the epoch. No operation waits for more than one group being copied, so
//! tail latency stays flat while a table grows from empty to tens of millions of entries.
//!
//! One migration runs at a time: `next` can only start its own once it is current. Sizing
//! makes that the common case (`next` holds at least half the old slots and at most half load
//! of live entries, and every write copies `CHUNK` groups), and a writer that finds `next`
//! past its limit anyway (a copier was descheduled under heavy churn) finishes the copy
//! before it writes there.

use core::ptr;

use crossbeam_epoch::Guard;

use super::array::{has, with, Array, Slot, FROZEN, MIGRATED, MIGRATING};
use super::{groups_for, next_of, RawTable};
use crate::reclaim;
use crate::sync::{spin, Ordering};

/// Groups a writer copies per operation while a migration runs.
#[cfg(not(loom))]
const CHUNK: usize = 4;
#[cfg(loom)]
const CHUNK: usize = 1;

impl<N> RawTable<N> {
    /// The array a writer of `hash` must work in: the newest one, after copying its share of
    /// every migration in between.
    pub(super) fn writable<'g>(
        &self,
        hash: u64,
        rehash: &impl Fn(&N) -> u64,
        guard: &'g Guard,
    ) -> &'g Array<N> {
        let mut array = self.current(guard);
        loop {
            // Acquire: pairs with the Release CAS in `start_migration`.
            if array.next.load(Ordering::Acquire).is_null() {
                return array;
            }
            self.help(array, rehash, guard);
            self.ensure_copied(array, hash, rehash, guard);
            let next = next_of(array, guard);
            // `next` cannot migrate before it is current. If it filled up while a copier of
            // `array` was descheduled (churn fills a table with tombstones), finish the copy
            // so that `next` becomes current, and migrate it in turn.
            if next.over_limit(next.used.sum()) {
                self.finish_migration(array, rehash, guard);
                self.start_migration(next);
            }
            array = next;
        }
    }

    /// Copies every group of `hash`'s probe sequence in `array`, up to and including the
    /// first group with a vacancy, so that the key's fate is decided in the next array.
    pub(super) fn ensure_copied(
        &self,
        array: &Array<N>,
        hash: u64,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
    ) {
        for (g, group) in array.probe(hash) {
            self.migrate_group(array, g, true, rehash, guard);
            // Relaxed: the group is frozen and MIGRATED, its slots no longer change.
            let vacancy = group
                .slots
                .iter()
                .any(|s| matches!(Slot::decode(s.load(Ordering::Relaxed)), Slot::Vacant { .. }));
            if vacancy {
                return;
            }
        }
    }

    /// Copies every group of `array` not yet copied, waiting for groups other threads are
    /// copying, so that `array.next` is current when this returns.
    pub(super) fn finish_migration(
        &self,
        array: &Array<N>,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
    ) {
        for g in 0..array.len() {
            self.migrate_group(array, g, true, rehash, guard);
        }
        self.promote(array, guard);
    }

    /// Copies the next unclaimed chunk of groups, if any is left.
    fn help(&self, array: &Array<N>, rehash: &impl Fn(&N) -> u64, guard: &Guard) {
        let start = array.claimed.fetch_add(CHUNK, Ordering::Relaxed);
        for g in start..array.len().min(start + CHUNK) {
            self.migrate_group(array, g, false, rehash, guard);
        }
    }

    /// Copies group `g` of `array` into `array.next`. If another thread is copying it, waits
    /// for it to finish when `wait`, else returns at once.
    fn migrate_group(
        &self,
        array: &Array<N>,
        g: usize,
        wait: bool,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
    ) {
        let group = &array.groups()[g];
        // Acquire: if already MIGRATED, the copies are visible (pairs with Release below).
        let prev = group.header.fetch_or(MIGRATING, Ordering::Acquire);
        if prev & MIGRATING != 0 {
            let backoff = crossbeam_utils::Backoff::new();
            while wait && !group.migrated() {
                spin(&backoff);
            }
            return;
        }
        let next = next_of(array, guard);
        for slot in &group.slots {
            let mut word = slot.load(Ordering::Relaxed);
            // Acquire: the node's contents are read below to rehash it; pairs with the
            // Release CAS that published it.
            while let Err(now) = slot.compare_exchange_weak(
                word,
                with(word, FROZEN),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                word = now;
            }
            debug_assert!(!has(word, FROZEN), "a group is frozen by its claimant only");
            if let Slot::Live { node, .. } = Slot::decode(word) {
                // SAFETY: the node is live (frozen before anyone could remove it), and
                // nodes outlive the guard.
                let hash = rehash(unsafe { &*node });
                copy(next, hash, word);
            }
        }
        // Release: publishes the copies; pairs with the Acquire in `Group::migrated`.
        group.header.fetch_or(MIGRATED, Ordering::Release);
        // AcqRel: the last copier must see every other copier's MIGRATED before promoting.
        if array.migrated.fetch_add(1, Ordering::AcqRel) + 1 == array.len() {
            self.promote(array, guard);
        }
    }

    /// Makes `array.next` current and retires `array`, unless another thread already did.
    /// Called by the copier of the last group and by `finish_migration`, so no thread waits
    /// on a descheduled last copier.
    fn promote(&self, array: &Array<N>, guard: &Guard) {
        let old = ptr::from_ref(array).cast_mut();
        let next = next_of(array, guard);
        // Release: publishes the next array as current; pairs with the Acquire in `current`.
        let swapped = self.current.compare_exchange(
            old,
            ptr::from_ref(next).cast_mut(),
            Ordering::Release,
            Ordering::Relaxed,
        );
        if swapped.is_ok() {
            // SAFETY: `array` is no longer current, so no thread that pins from now on
            // reaches it; threads pinned now are covered by the epoch. Its nodes live on in
            // `next`, so only the array itself is freed; only the CAS winner retires it.
            unsafe { reclaim::retire(guard, old, array.bytes(), free_array::<N>) };
        }
    }

    /// Starts migrating `array` if it is the current array and none is under way.
    pub(super) fn start_migration(&self, array: &Array<N>) {
        let this = ptr::from_ref(array).cast_mut();
        // Relaxed is enough for both checks: they only avoid a wasted allocation; the CAS
        // below decides.
        if self.current.load(Ordering::Relaxed) != this
            || !array.next.load(Ordering::Relaxed).is_null()
        {
            return;
        }
        let len = groups_for(array.live()).max(array.len() / 2);
        let next = Box::into_raw(Box::new(Array::new(len)));
        // Release: publishes the new array's initialization; pairs with the Acquire loads
        // of `next` by writers and readers.
        if array
            .next
            .compare_exchange(ptr::null_mut(), next, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: `next` was never published.
            drop(unsafe { Box::from_raw(next) });
        }
    }
}

/// Puts `word` into the first vacancy of `hash`'s probe sequence in `next`. No key check:
/// keys are unique in the old array and nobody writes a key into `next` before its probe
/// sequence is copied.
fn copy<N>(next: &Array<N>, hash: u64, word: *mut N) {
    for (_, group) in next.probe(hash) {
        for (i, slot) in group.slots.iter().enumerate() {
            // Release: publishes the node to readers of `next`.
            if slot
                .compare_exchange(ptr::null_mut(), word, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                group.set_tag(i, super::array::tag_of(hash));
                next.used.add(1);
                return;
            }
        }
    }
    unreachable!("a migration target never fills before the copy completes");
}

/// # Safety
///
/// `array` must come from `Box::into_raw` and be unreachable.
unsafe fn free_array<N>(array: *mut Array<N>) {
    // SAFETY: guaranteed by the caller.
    drop(unsafe { Box::from_raw(array) });
}
