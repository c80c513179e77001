//! Growth and compaction: a cooperative, incremental copy into a new array.
//!
//! When a claim pushes an array past 7/8 load, `start_migration` installs a `next` array
//! sized for the live records (twice them, so tombstones are dropped and a table full of
//! removals shrinks back). From then on every writer of the partition, before its own
//! operation, copies a chunk of groups (`help`) and every group of its key's probe sequence
//! (`ensure_copied`), and then works in `next`. Readers never copy and never wait.
//!
//! Copying a group: claim it (MIGRATING), freeze it once no slot is mid-write (one CAS sets
//! FROZEN, after which every writer's CAS on the word fails), copy its current records into
//! `next`, then publish MIGRATED. Records bound for the same home group in `next` are copied
//! together: one CAS claims their slots (the first vacancies of their probe sequence, where
//! one-by-one copies would land) and one `fetch_xor` publishes them, instead of two atomic
//! operations per record. Whoever sees the last group copied makes `next` current
//! and retires the old array through the epoch. No operation waits for more than one group
//! being copied, so tail latency stays flat while a table grows to tens of millions.
//!
//! `reserve` starts a migration on request instead (sized for the records asked for) and
//! finishes it in the calling thread, after finishing any migration already under way.
//!
//! One migration runs at a time: `next` can only start its own once it is current. Sizing
//! makes that the common case (`next` holds at least half the old slots and at most half
//! load of live records, and every write copies `CHUNK` groups), and a writer that finds
//! `next` past its limit anyway (a copier was descheduled under heavy churn) finishes the
//! copy before it writes there.

use core::ptr;

use crossbeam_epoch::Guard;
use crossbeam_utils::Backoff;
use scopeguard::ScopeGuard;

use super::array::{
    busy, current, flip, indices, tag_of, vacant, with_byte, Array, FROZEN, MIGRATED, MIGRATING,
    WIDTH, WRITING,
};
use super::{groups_for, next_of, RawTable, Record};
use crate::reclaim;
use crate::sync::{spin, Ordering};

/// Groups a writer copies per operation while a migration runs.
#[cfg(not(loom))]
const CHUNK: usize = 4;
#[cfg(loom)]
const CHUNK: usize = 1;

impl<E: Record> RawTable<E> {
    /// The array a writer of `hash` must work in: the newest one, after copying its share of
    /// every migration in between.
    pub(super) fn writable<'g>(
        &self,
        hash: u64,
        rehash: &impl Fn(&E) -> u64,
        guard: &'g Guard,
    ) -> &'g Array<E> {
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
                self.start_migration(next, false);
            }
            array = next;
        }
    }

    /// Makes room when a probe ran off the end of `array` (a cluster filled the tail before
    /// the load limit): migrates it now, finishing its predecessor's copy first if needed.
    pub(super) fn grow_full(&self, array: &Array<E>, rehash: &impl Fn(&E) -> u64, guard: &Guard) {
        let cur = self.current(guard);
        if ptr::eq(cur, array) {
            self.start_migration(array, true);
        } else if ptr::eq(cur.next.load(Ordering::Acquire), array) {
            self.finish_migration(cur, rehash, guard);
            self.start_migration(array, true);
        }
        // Otherwise `array` is stale: the caller retries on the current one.
    }

    /// Copies every group of `hash`'s probe sequence in `array`, up to and including the
    /// first group with a vacancy, so that the key's fate is decided in the next array.
    pub(super) fn ensure_copied(
        &self,
        array: &Array<E>,
        hash: u64,
        rehash: &impl Fn(&E) -> u64,
        guard: &Guard,
    ) {
        for g in array.probe(hash) {
            self.migrate_group(array, g, true, rehash, guard);
            // Relaxed: the group is frozen and MIGRATED; its slot bytes no longer change.
            if vacant(array.ctrl(g).load(Ordering::Relaxed)) != 0 {
                return;
            }
        }
    }

    /// Copies every group not yet copied, waiting for groups other threads are copying, and
    /// makes `array.next` current.
    pub(super) fn finish_migration(
        &self,
        array: &Array<E>,
        rehash: &impl Fn(&E) -> u64,
        guard: &Guard,
    ) {
        for g in 0..array.groups() {
            self.migrate_group(array, g, true, rehash, guard);
        }
        self.promote(array, guard);
    }

    /// Makes room, in the calling thread, for `additional` more records than the table holds
    /// live: finishes any migration under way, then, unless the current array can take that
    /// many more claims within its load limit, migrates into one sized for them at half load
    /// (as `with_capacity` sizes a table) and finishes that too. Other threads keep reading
    /// and writing throughout, and writers help with the copy as with any migration.
    ///
    /// # Panics
    ///
    /// If the array the reservation needs is too large for the address space.
    pub(crate) fn reserve(&self, additional: usize, rehash: &impl Fn(&E) -> u64, guard: &Guard) {
        loop {
            let array = self.current(guard);
            // Acquire: pairs with the Release CAS in `install_next`.
            if !array.next.load(Ordering::Acquire).is_null() {
                self.finish_migration(array, rehash, guard);
                continue;
            }
            // Computed first: it panics on a reservation no array could hold, before the
            // sums below could overflow.
            let len = groups_for(array.live().saturating_add(additional));
            if !array.over_limit(array.used.sum() + additional) {
                return;
            }
            // Another thread may install its own `next` first (a write that passed the load
            // limit): the next round finishes that one and checks again.
            self.install_next(array, len.max(array.len() / 2));
        }
    }

    /// Copies the next unclaimed chunk of groups, if any is left.
    fn help(&self, array: &Array<E>, rehash: &impl Fn(&E) -> u64, guard: &Guard) {
        let start = array.claimed.fetch_add(CHUNK, Ordering::Relaxed);
        for g in start..array.groups().min(start + CHUNK) {
            self.migrate_group(array, g, false, rehash, guard);
        }
    }

    /// Copies group `g` of `array` into `array.next`. If another thread is copying it, waits
    /// for it to finish when `wait`, else returns at once.
    fn migrate_group(
        &self,
        array: &Array<E>,
        g: usize,
        wait: bool,
        rehash: &impl Fn(&E) -> u64,
        guard: &Guard,
    ) {
        let word = array.ctrl(g);
        let backoff = Backoff::new();
        // Acquire: if the group is already MIGRATED, its copies are visible (pairs with the
        // Release below).
        let prev = word.fetch_or(MIGRATING, Ordering::Acquire);
        if prev & MIGRATING != 0 {
            while wait && word.load(Ordering::Acquire) & MIGRATED == 0 {
                spin(&backoff);
            }
            return;
        }
        // Freeze once no slot is mid-write: a claimed slot is published within a few
        // stores, and an UPDATING record is retired as soon as its replacement is out.
        let ctrl = loop {
            let ctrl = word.load(Ordering::Acquire);
            if busy(ctrl) {
                spin(&backoff);
                continue;
            }
            // Acquire: the records of the frozen group are read below. Release: a writer
            // that sees the group frozen retries in `next`, so it must then find `next`
            // installed; this thread saw it installed before it froze anything, and the
            // Release passes that on (with Acquire only, a writer could keep reading a
            // stale `next` of null and retry forever: loom model 16 found that spin).
            if word
                .compare_exchange_weak(ctrl, ctrl | FROZEN, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                break ctrl;
            }
        };
        let next = next_of(array, guard);
        // Hash every record first and start loading its home group in `next`: the loads
        // are independent, so the misses of the records and of their destinations overlap
        // instead of each copy waiting for its own.
        let mut hashes = [0u64; WIDTH];
        let mut homes = [0usize; WIDTH];
        // The slots still to copy, as a byte mask like the control word's.
        let mut left = current(ctrl);
        // `rehash` runs the user's `Hash`. A panic here would leave this group frozen and
        // never MIGRATED, and every later writer of it waiting forever: abort instead.
        let hashing = scopeguard::guard((), |()| hash_panicked());
        for i in indices(left) {
            // SAFETY: a published record of a frozen group; arrays outlive the guard.
            hashes[i] = rehash(unsafe { &*array.record(g, i) });
            homes[i] = next.home(hashes[i]);
            next.prefetch_group(homes[i]);
        }
        ScopeGuard::into_inner(hashing);
        // Records with the same home group in `next` share a probe sequence, and they are
        // copied together. A home is the hash's low bits, so when `next` has twice the
        // groups, a group's records have at most two homes there (a few more if some were
        // displaced from earlier groups).
        let copied = left.count_ones() as usize;
        while left != 0 {
            let home = homes[left.trailing_zeros() as usize / 8];
            let mut batch = [0usize; WIDTH];
            let mut n = 0;
            for i in indices(left) {
                if homes[i] == home {
                    batch[n] = i;
                    n += 1;
                    left &= !(0x80 << (8 * i));
                }
            }
            copy(next, home, &hashes, &batch[..n], |i| array.record(g, i));
        }
        // Once per group, not per record: a sharded count, read only to decide growth.
        next.used.add(copied);
        // Release: publishes the copies; pairs with the Acquire loads that check MIGRATED.
        word.fetch_or(MIGRATED, Ordering::Release);
        // AcqRel: whoever counts the last group must see every other group's copies.
        if array.migrated.fetch_add(1, Ordering::AcqRel) + 1 == array.groups() {
            self.promote(array, guard);
        }
    }

    /// Makes `array.next` current and retires `array`, unless another thread already did.
    fn promote(&self, array: &Array<E>, guard: &Guard) {
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
            // reaches it; threads pinned now are covered by the epoch. Its records live on
            // in `next`, so only the array itself is freed; only the CAS winner retires it.
            unsafe { reclaim::retire(guard, old, array.bytes(), free_array::<E>) };
            // An array is large and retired rarely: hand it to the global queue now rather
            // than leave it in this thread's bag until 64 more deferrals fill it.
            guard.flush();
        }
    }

    /// Starts migrating `array` if it is current and none is under way; `force` even below
    /// the load limit (a probe ran out of tail).
    pub(super) fn start_migration(&self, array: &Array<E>, force: bool) {
        let this = ptr::from_ref(array).cast_mut();
        // Relaxed: both checks only avoid a wasted allocation; the CAS below decides.
        if self.current.load(Ordering::Relaxed) != this
            || !array.next.load(Ordering::Relaxed).is_null()
        {
            return;
        }
        let mut len = groups_for(array.live()).max(array.len() / 2);
        if force {
            len = len.max(array.len() * 2);
        }
        self.install_next(array, len);
    }

    /// Installs a `next` array of `len` home groups behind `array`, unless another thread
    /// installed one first.
    fn install_next(&self, array: &Array<E>, len: usize) {
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

/// Reached only when a panic unwinds out of a migration's hashing: the group being copied
/// is frozen, so none of its writers could ever go on. The process aborts with this
/// message rather than hang those writers silently (the crate docs, "Panics in `Hash` and
/// `Eq`").
#[cold]
fn hash_panicked() -> ! {
    eprintln!(
        "regent: a key's or pid's `Hash` panicked while a table migration was copying it; \
         the group being copied can never be finished, so the process aborts (see regent's \
         docs, \"Panics in `Hash` and `Eq`\")"
    );
    std::process::abort();
}

/// Copies the records `batch` (slot indices of a frozen group, read through `src`, hashed
/// in `hashes`), whose home group in `next` is `home`, into the first vacancies of that
/// group's probe sequence: where copying them one by one would put them, but with one claim
/// and one publication per group they land in, not two per record. No key check: keys are
/// unique in the old array, and nobody writes a key into `next` before its probe sequence
/// is copied.
fn copy<E: Record>(
    next: &Array<E>,
    home: usize,
    hashes: &[u64; WIDTH],
    mut batch: &[usize],
    src: impl Fn(usize) -> *const E,
) {
    if batch.is_empty() {
        return;
    }
    for g in next.probe_from(home) {
        let word = next.ctrl(g);
        loop {
            // Relaxed: the CAS validates the word; `next` has no frozen group yet.
            let ctrl = word.load(Ordering::Relaxed);
            debug_assert!(ctrl & FROZEN == 0, "a migration target is not frozen");
            // The lowest vacancies, one per record, as many as the group has.
            let mut free = vacant(ctrl);
            let mut slots = [0usize; WIDTH];
            let mut claimed = ctrl;
            let mut n = 0;
            while free != 0 && n < batch.len() {
                let i = free.trailing_zeros() as usize / 8;
                free &= free - 1;
                slots[n] = i;
                claimed = with_byte(claimed, i, WRITING);
                n += 1;
            }
            if n == 0 {
                break;
            }
            // Relaxed: a claim publishes nothing; the records are published below.
            if word
                .compare_exchange(ctrl, claimed, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            let mut published = 0;
            for (&i, &s) in slots[..n].iter().zip(batch) {
                // SAFETY: `src(s)` is a published record of a frozen group; slot `i` is ours.
                unsafe { E::migrate(src(s), next.slot(g, i)) };
                published |= flip(i, WRITING, tag_of(hashes[s]));
            }
            // The groups passed on the way here (full, or filled by this batch's first
            // records), as `publish` marks them for a single record.
            next.mark_passed_from(home, g);
            // Release: publishes the copies; pairs with the Acquire loads of the word.
            // `fetch_xor` flips only the claimed bytes, whatever else changed in the group.
            word.fetch_xor(published, Ordering::Release);
            batch = &batch[n..];
            if batch.is_empty() {
                return;
            }
            break;
        }
    }
    unreachable!("a migration target has room for every record it receives");
}

/// # Safety
///
/// `array` must come from `Box::into_raw` and be unreachable.
unsafe fn free_array<E>(array: *mut Array<E>) {
    // SAFETY: guaranteed by the caller.
    drop(unsafe { Box::from_raw(array) });
}
