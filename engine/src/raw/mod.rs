//! The partition table: open addressing over inline, write-once records, with lock-free
//! reads, CAS claims, and cooperative incremental migration.
//!
//! * `array.rs`: the layout (control words, slot bytes, tags).
//! * `migrate.rs`: growth and compaction, copied group by group by the writers.
//! * `lock.rs`: per-record locks for the monitor index.
//! * `bag.rs`: the entries of one key of a duplicate registry (segments of stable slots).
//! * this file: the probe loops (`find`, `insert`, `remove`, `update`, `for_each`).
//!
//! # Protocol
//!
//! A writer claims the first vacant slot of its key's probe sequence by CAS on the group's
//! control word (`VACANT → WRITING`), writes the record, and publishes it with a Release
//! `fetch_xor` (`WRITING → tag`). Every writer of a key scans the same sequence and
//! waits out `WRITING` slots on it, so two registrations of one key always meet: insert-if-
//! absent is atomic. Readers skip `WRITING` slots and never wait.
//!
//! Before publishing past its home group, a writer marks each full group it passed
//! `OVERFLOW` (once set, for the array's life). A reader stops at the first group with a
//! vacancy, as writers do, or at a full group without the mark: no record lies past it.
//! At 10M keys a miss visited 1.44 groups on average; with the mark, a simulation of the
//! probe puts it at 1.25 (`docs/table.md` has what that measured as).
//!
//! Removal CASes `tag → TOMB`; the record's bytes stay in place for readers that already
//! matched it, and its drop is deferred through the epoch. An update publishes the new record
//! in the first vacant slot (always later in probe order than the old one) while the old one
//! is marked `UPDATING` (in its group's state byte), then retires the old one: readers see
//! the old or the new record.
//!
//! # Linearizability during a migration
//!
//! A writer never writes into an array once its `next` exists: it first copies every group
//! of its key's probe sequence, then works in `next`. A reader never waits: a frozen group
//! that is not yet MIGRATED still holds the truth (nothing changes the key elsewhere before
//! that). A MIGRATED group's records are stale copies whose originals in `next` may since
//! have been removed and what they point to reclaimed, so a reader does not even compare
//! them: it finishes the sequence in this array (its later groups may not be copied yet)
//! and then probes `next` (loom model 13, `migrated_groups.rs`).

mod array;
mod bag;
mod lock;
mod migrate;

use core::alloc::Layout;
use core::ptr;

use crossbeam_epoch::Guard;
use crossbeam_utils::{Backoff, CachePadded};

use self::array::{
    byte, current, flip, indices, matches, published, tag_of, updating, updating_at, vacant,
    with_byte, Array, FROZEN, MIGRATED, OVERFLOW, TOMB, UPDATING, WIDTH, WRITING,
};
#[cfg(loom)]
pub use self::bag::stripe_every_bag;
pub(crate) use self::bag::{Bag, Place, Removed, Slot};
pub(crate) use self::lock::{LockWord, Lockable, Locked, LOCKED, W_FROZEN};
use crate::sync::{spin, AtomicPtr, AtomicUsize, Ordering};

/// Initial size in groups. Tables start small and grow; `capacity` pre-sizes them.
#[cfg(not(loom))]
const MIN_GROUPS: usize = 4;
#[cfg(loom)]
const MIN_GROUPS: usize = 1;

/// A record type a table can hold.
///
/// # Safety
///
/// `migrate` must leave `dst` holding a record that `eq` and `rehash` treat as `src`, and
/// must not invalidate `src` for readers still looking at it.
pub(crate) unsafe trait Record: Sized {
    /// Copies the record of a frozen slot into a claimed slot of the next array. The copy
    /// left behind is never dropped.
    ///
    /// # Safety
    ///
    /// `src` is a published record in a frozen group; `dst` is a claimed, unwritten slot.
    unsafe fn migrate(src: *const Self, dst: *mut Self);
}

/// One partition's table of `E` records.
pub(crate) struct RawTable<E> {
    current: AtomicPtr<Array<E>>,
    /// Updates started and finished: `for_each` learns whether one overlapped its walk.
    /// Padded away from `current`, which every reader loads.
    updates: CachePadded<[AtomicUsize; 2]>,
}

/// Where a writer's probe for a key ended.
enum Probe {
    /// A current record matched, at group `g`, slot `i`.
    Found { g: usize, i: usize },
    /// No match; the first vacant slot, and the control word it was seen in.
    Vacant { g: usize, i: usize, ctrl: u64 },
    /// A group of the sequence is frozen: retry in the next array.
    Moved,
    /// The sequence ran off the end of the array without a vacancy.
    Full,
}

impl<E> RawTable<E> {
    /// A table sized for `capacity` records without growing.
    pub(crate) fn with_capacity(capacity: usize) -> RawTable<E> {
        let array = Box::new(Array::new(groups_for(capacity)));
        RawTable {
            current: AtomicPtr::new(Box::into_raw(array)),
            updates: CachePadded::new([AtomicUsize::new(0), AtomicUsize::new(0)]),
        }
    }

    /// The current array.
    #[inline]
    fn current<'g>(&self, _guard: &'g Guard) -> &'g Array<E> {
        // Acquire: pairs with the Release CAS in `promote` (and the initial publication).
        let array = self.current.load(Ordering::Acquire);
        // SAFETY: the current array is never null; a replaced array is retired through the
        // epoch, so it outlives `_guard`.
        unsafe { &*array }
    }

    /// Starts loading `hash`'s home group into the cache ahead of an operation on it.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64, guard: &Guard) {
        // Loom models the protocol, not the cache: no load of `current` for it to explore.
        #[cfg(not(loom))]
        self.current(guard).prefetch(hash);
        #[cfg(loom)]
        let _ = (hash, guard);
    }

    /// Slots ever claimed in the current array (live records and tombstones).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn claimed(&self, guard: &Guard) -> usize {
        self.current(guard).used.sum()
    }

    /// Slots in the current array.
    pub(crate) fn capacity(&self, guard: &Guard) -> usize {
        self.current(guard).slots()
    }

    /// Bytes of the current array and of the one it migrates into, and whether a migration
    /// is under way.
    pub(crate) fn bytes(&self, guard: &Guard) -> (usize, bool) {
        let array = self.current(guard);
        // Acquire: pairs with the Release CAS that installed `next`.
        let next = array.next.load(Ordering::Acquire);
        if next.is_null() {
            (array.bytes(), false)
        } else {
            // SAFETY: `next` becomes current before `array` is retired, so it outlives guard.
            (array.bytes() + unsafe { &*next }.bytes(), true)
        }
    }

    /// Calls `f` with every current record, each once, for tearing the table down.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(*mut E)) {
        // Relaxed: `&mut self` excludes every other thread.
        let mut array = self.current.load(Ordering::Relaxed);
        while !array.is_null() {
            // SAFETY: `&mut self`: no other thread is inside; the table owns its arrays.
            let a = unsafe { &*array };
            for g in 0..a.groups() {
                let ctrl = a.ctrl(g).load(Ordering::Relaxed);
                // With no thread in flight a group is either untouched or fully copied.
                if ctrl & MIGRATED == 0 {
                    indices(current(ctrl)).for_each(|i| f(a.slot(g, i)));
                }
            }
            array = a.next.load(Ordering::Relaxed);
        }
    }
}

impl<E: Record> RawTable<E> {
    /// Finds the current record with hash `hash` for which `eq` holds. Loads only.
    #[inline]
    pub(crate) fn find<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g E>
    where
        E: 'g,
    {
        self.start(hash, guard).find(hash, eq, guard)
    }

    /// Calls `f` with each current record of `hash`'s probe sequence that `eq` accepts, in
    /// probe order, until `f` returns false. Loads only; never waits.
    ///
    /// A record can be passed twice: when the probe meets a copied group it restarts in the
    /// next array, where records it already passed may be again, and an update shows its
    /// old and new record until it completes. Callers that take more than one record dedupe.
    #[inline]
    pub(crate) fn find_each<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        guard: &'g Guard,
        f: impl FnMut(&'g E) -> bool,
    ) where
        E: 'g,
    {
        self.start(hash, guard).find_each(hash, eq, guard, f);
    }

    /// Starts a lookup of `hash`: loads the current array and prefetches the home group,
    /// for a [`Started::find`] some keys later (a batch overlaps its keys' misses so).
    #[inline]
    pub(crate) fn start<'g>(&self, hash: u64, guard: &'g Guard) -> Started<'g, E> {
        let array = self.current(guard);
        array.prefetch(hash);
        Started { array }
    }

    /// Inserts `record` unless a current record is `same` as it; on conflict hands the
    /// record back with the one that holds its place.
    pub(crate) fn insert<'g>(
        &self,
        hash: u64,
        record: E,
        same: impl Fn(&E, &E) -> bool,
        rehash: &impl Fn(&E) -> u64,
        guard: &'g Guard,
    ) -> Result<&'g E, (E, &'g E)> {
        loop {
            let array = self.writable(hash, rehash, guard);
            match probe(array, hash, &|e| same(e, &record)) {
                Probe::Found { g, i } => {
                    // SAFETY: published records outlive the guard (see `find_each`).
                    return Err((record, unsafe { &*array.record(g, i) }));
                }
                Probe::Vacant { g, i, ctrl } => {
                    if self.claim(array, g, i, ctrl) {
                        // SAFETY: the slot is claimed by us and unwritten.
                        unsafe { array.slot(g, i).write(record) };
                        publish(array, g, i, hash);
                        // SAFETY: just published.
                        return Ok(unsafe { &*array.record(g, i) });
                    }
                }
                Probe::Moved => {}
                Probe::Full => self.grow_full(array, rehash, guard),
            }
        }
    }

    /// Tombstones the first current record of `hash`'s sequence that `eq` accepts and
    /// returns it. Its bytes stay readable under `guard`; the caller retires it.
    pub(crate) fn remove<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        rehash: &impl Fn(&E) -> u64,
        guard: &'g Guard,
    ) -> Option<&'g E> {
        let backoff = Backoff::new();
        loop {
            let array = self.writable(hash, rehash, guard);
            match probe(array, hash, &eq) {
                Probe::Found { g, i } => {
                    let word = array.ctrl(g);
                    let ctrl = word.load(Ordering::Relaxed);
                    if ctrl & FROZEN != 0 {
                        continue;
                    }
                    if updating(ctrl) == Some(i) {
                        // Its owner is publishing a replacement: wait for the outcome.
                        spin(&backoff);
                        continue;
                    }
                    // Release: orders the removal after whatever the remover did before;
                    // readers that see TOMB skip the record.
                    if word
                        .compare_exchange(
                            ctrl,
                            with_byte(ctrl, i, TOMB),
                            Ordering::Release,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        array.tombs.add(1);
                        // SAFETY: published records outlive the guard.
                        return Some(unsafe { &*array.record(g, i) });
                    }
                }
                Probe::Vacant { .. } | Probe::Full => return None,
                Probe::Moved => {}
            }
        }
    }

    /// Replaces the first current record that `eq` accepts by `make(old)`, published in a
    /// new slot before the old one is retired. Returns `(new, old)`; the old record's bytes
    /// stay readable under `guard` and the caller retires what `make` did not move out.
    ///
    /// `make` runs once, after a slot was claimed for its result; it must not panic.
    pub(crate) fn update<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        make: impl FnOnce(&E) -> E,
        rehash: &impl Fn(&E) -> u64,
        guard: &'g Guard,
    ) -> Option<(&'g E, &'g E)> {
        // SeqCst: `for_each` must see this count before any slot this update changes.
        self.updates[0].fetch_add(1, Ordering::SeqCst);
        let backoff = Backoff::new();
        let mut make = Some(make);
        let result = loop {
            let array = self.writable(hash, rehash, guard);
            let (g0, i0) = match probe(array, hash, &eq) {
                Probe::Found { g, i } => (g, i),
                Probe::Vacant { .. } | Probe::Full => break None,
                Probe::Moved => continue,
            };
            // Mark the old record UPDATING: it stays current, and its group cannot be
            // frozen until the replacement is published. The group byte has room for one
            // update at a time: another one in the group (which never waits while it holds
            // the mark) is waited out.
            let word = array.ctrl(g0);
            let ctrl = word.load(Ordering::Relaxed);
            let tag = byte(ctrl, i0);
            if ctrl & FROZEN != 0 || !published(tag) {
                continue;
            }
            if ctrl & UPDATING != 0 {
                spin(&backoff);
                continue;
            }
            if word
                .compare_exchange(
                    ctrl,
                    ctrl | updating_at(i0),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue;
            }
            match self.claim_first_vacant(array, hash) {
                Ok((g, i)) => {
                    // SAFETY: published records outlive the guard.
                    let old = unsafe { &*array.record(g0, i0) };
                    let make = make.take().expect("a replacement is made once");
                    // SAFETY: the slot is claimed by us and unwritten.
                    unsafe { array.slot(g, i).write(make(old)) };
                    publish(array, g, i, hash);
                    // Release: the replacement is visible before the old record goes.
                    word.fetch_xor(flip(i0, tag, TOMB) | updating_at(i0), Ordering::Release);
                    array.tombs.add(1);
                    // SAFETY: just published.
                    break Some((unsafe { &*array.record(g, i) }, old));
                }
                Err(full) => {
                    // A group ahead is frozen (or there is no room): undo and retry in the
                    // array the migration leads to.
                    word.fetch_xor(updating_at(i0), Ordering::Relaxed);
                    if full {
                        self.grow_full(array, rehash, guard);
                    }
                }
            }
        };
        // SeqCst: pairs with `for_each`'s reads of the counts.
        self.updates[1].fetch_add(1, Ordering::SeqCst);
        result
    }

    /// Claims the first vacant slot of `hash`'s sequence. `Err(true)`: none left;
    /// `Err(false)`: a frozen group is in the way.
    fn claim_first_vacant(&self, array: &Array<E>, hash: u64) -> Result<(usize, usize), bool> {
        for g in array.probe(hash) {
            loop {
                // Relaxed: the CAS below validates the word.
                let ctrl = array.ctrl(g).load(Ordering::Relaxed);
                if ctrl & FROZEN != 0 {
                    return Err(false);
                }
                let Some(i) = indices(vacant(ctrl)).next() else {
                    break;
                };
                if self.claim(array, g, i, ctrl) {
                    return Ok((g, i));
                }
            }
        }
        Err(true)
    }

    /// Claims vacant slot `i` of group `g`, seen in `ctrl`, then counts it and starts a
    /// migration if the array passed its load limit. False if the word changed meanwhile.
    fn claim(&self, array: &Array<E>, g: usize, i: usize, ctrl: u64) -> bool {
        if !array.try_claim(g, i, ctrl) {
            return false;
        }
        let used = array.used.add(1);
        // Small tables check the exact sum; large ones every 64 claims of a shard, a lag far
        // below their 1/8 headroom.
        if (array.slots() < 1 << 15 || used % 64 == 0) && array.over_limit(array.used.sum()) {
            self.start_migration(array, false);
        }
        true
    }

    /// Collects every current record, each once: the weakly consistent walk behind `select`.
    ///
    /// Records present for the whole walk are collected exactly once, records added or
    /// removed during it may or may not be, and a record removed before it starts never is.
    /// A migration under way is finished first; one that starts during the walk changes
    /// nothing, since the walk reads the array it started on (frozen groups included) and
    /// removals after a copy happen during the walk.
    ///
    /// The one exception is an update during the walk: the replacement lands later in
    /// index order, so the walk may collect both records (never neither). The second value
    /// says whether an update overlapped the walk; the caller then dedupes by key.
    pub(crate) fn for_each<'g>(
        &self,
        rehash: &impl Fn(&E) -> u64,
        guard: &'g Guard,
        out: &mut Vec<&'g E>,
    ) -> bool {
        let mut array = self.current(guard);
        // Acquire: pairs with the Release CAS in `start_migration`.
        while !array.next.load(Ordering::Acquire).is_null() {
            self.finish_migration(array, rehash, guard);
            array = next_of(array, guard);
        }
        // SeqCst: together with the updates' SeqCst increments, a walk that read any slot
        // an update changed sees that update counted.
        let started = self.updates[0].load(Ordering::SeqCst);
        let overlapped = self.updates[1].load(Ordering::SeqCst) != started;
        for g in 0..array.groups() {
            // Acquire: pairs with the Release that published each record.
            let ctrl = array.ctrl(g).load(Ordering::Acquire);
            for i in indices(current(ctrl)) {
                // SAFETY: published records outlive the guard.
                out.push(unsafe { &*array.record(g, i) });
            }
        }
        overlapped || self.updates[0].load(Ordering::SeqCst) != started
    }
}

impl<E> Drop for RawTable<E> {
    fn drop(&mut self) {
        // Frees the arrays only: the registry drained the records first.
        // Relaxed: `&mut self` excludes every other thread.
        let mut array = self.current.load(Ordering::Relaxed);
        while !array.is_null() {
            // SAFETY: the table owns its current array and the one it migrates into.
            let boxed = unsafe { Box::from_raw(array) };
            array = boxed.next.load(Ordering::Relaxed);
        }
    }
}

/// A lookup begun by [`RawTable::start`]: the array that was current then, its home group
/// on the way into the cache. Finishing it under the same guard is exactly a `find` whose
/// reader paused after loading the current array: a migration since then is met and
/// followed as by any reader (`find_each`'s protocol), so the result is as current.
pub(crate) struct Started<'g, E> {
    array: &'g Array<E>,
}

// Not derived: that would ask `E: Copy`. It is a shared reference.
impl<E> Clone for Started<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Started<'_, E> {}

impl<'g, E: Record> Started<'g, E> {
    /// [`RawTable::find`], begun by [`RawTable::start`] under `guard`.
    #[inline]
    pub(crate) fn find(
        self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g E> {
        let mut found = None;
        self.find_each(hash, eq, guard, |record| {
            found = Some(record);
            false
        });
        found
    }

    /// [`RawTable::find_each`], begun by [`RawTable::start`] under `guard`.
    #[inline]
    fn find_each(
        self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        guard: &'g Guard,
        mut f: impl FnMut(&'g E) -> bool,
    ) {
        let tag = tag_of(hash);
        let mut array = self.array;
        'array: loop {
            // Whether a group of the sequence was MIGRATED: its records are in `next`.
            let mut moved = false;
            for g in array.probe(hash) {
                // Acquire: pairs with the Release `fetch_xor` that published each record, so
                // a matched record is fully written, and with the Release that set MIGRATED.
                let ctrl = array.ctrl(g).load(Ordering::Acquire);
                if ctrl & MIGRATED == 0 {
                    for i in indices(matches(ctrl, tag)) {
                        // The group was not MIGRATED when we loaded its word, after pinning:
                        // the record was current, so what it points to outlives `guard` too.
                        // SAFETY: a published record stays until its array is reclaimed.
                        let record = unsafe { &*array.record(g, i) };
                        if eq(record) && !f(record) {
                            return;
                        }
                    }
                } else {
                    // Not even `eq` may look at a MIGRATED group's records: their copies in
                    // `next` are the truth, and may since have been removed and what they
                    // point to (a bag, a key's heap bytes, a monitor's slots) reclaimed by a
                    // thread that pinned before us while we pinned after. The later groups
                    // of the sequence may still be uncopied, and hold the truth for their
                    // records, so the probe goes on here before it moves to `next`.
                    moved = true;
                }
                // A vacancy ends the sequence, and so does a full group that no record
                // was ever placed past.
                if vacant(ctrl) != 0 || ctrl & OVERFLOW == 0 {
                    if moved {
                        array = next_of(array, guard);
                        continue 'array;
                    }
                    return;
                }
            }
            // The whole sequence is full: a writer that found it so forced a migration and
            // placed the key in `next`, after copying this sequence (its groups are the
            // truth no longer), so the key may be there. (`moved` implies a `next`.)
            // Acquire: pairs with the Release CAS in `start_migration` that installed `next`.
            if !array.next.load(Ordering::Acquire).is_null() {
                array = next_of(array, guard);
                continue 'array;
            }
            return;
        }
    }
}

/// The probe a writer runs: the current record `eq` accepts, else the first vacant slot.
/// Waits out WRITING slots on the way: one of them may be the same key.
fn probe<E>(array: &Array<E>, hash: u64, eq: &impl Fn(&E) -> bool) -> Probe {
    let tag = tag_of(hash);
    let backoff = Backoff::new();
    for g in array.probe(hash) {
        let ctrl = loop {
            // Acquire: pairs with the Release that published each record.
            let ctrl = array.ctrl(g).load(Ordering::Acquire);
            if ctrl & FROZEN != 0 {
                return Probe::Moved;
            }
            for i in indices(matches(ctrl, tag)) {
                // SAFETY: published records outlive the caller's guard.
                if eq(unsafe { &*array.record(g, i) }) {
                    return Probe::Found { g, i };
                }
            }
            if !array::writing(ctrl) {
                break ctrl;
            }
            spin(&backoff);
        };
        if let Some(i) = indices(vacant(ctrl)).next() {
            return Probe::Vacant { g, i, ctrl };
        }
    }
    Probe::Full
}

/// Publishes the record just written into claimed slot `i` of group `g`.
#[inline]
fn publish<E>(array: &Array<E>, g: usize, i: usize, hash: u64) {
    // The groups the probe passed first, so that no reader stops short of the record.
    array.mark_passed(hash, g);
    // Release: publishes the record's bytes; pairs with the Acquire loads of the word.
    // SeqCst on top: the registrant's half of `await_registered`'s Dekker pair (the SeqCst
    // load in `Waiters::notify` follows it), so a registration needs no fence of its own.
    // On x86 it is the same locked instruction as Release.
    // `fetch_xor` flips only this slot's byte, whatever else changed in the group.
    array
        .ctrl(g)
        .fetch_xor(flip(i, WRITING, tag_of(hash)), Ordering::SeqCst);
}

fn next_of<'g, E>(array: &Array<E>, _guard: &'g Guard) -> &'g Array<E> {
    // Acquire: pairs with the Release CAS in `start_migration` that installed `next`.
    let next = array.next.load(Ordering::Acquire);
    debug_assert!(!next.is_null(), "a frozen group implies a next array");
    // SAFETY: `next` becomes current before `array` is retired and is itself retired only
    // after that, through the epoch.
    unsafe { &*next }
}

/// Home groups for `capacity` records at no more than half load.
///
/// # Panics
///
/// If so many groups would not fit in the address space (the allocation panics or aborts
/// anyway; this keeps the arithmetic from wrapping to a tiny table first).
fn groups_for(capacity: usize) -> usize {
    let groups = capacity.saturating_mul(2).div_ceil(WIDTH);
    assert!(
        groups <= isize::MAX as usize / 8 / (WIDTH + 1),
        "capacity overflow: a table for {capacity} records does not fit in memory"
    );
    groups.next_power_of_two().max(MIN_GROUPS)
}

/// Allocates `layout`, zeroed if asked, or aborts through `handle_alloc_error` as `Box`
/// does. The engine's hand-laid-out allocations (control words, bag segments, key lists)
/// all come from here.
pub(crate) fn allocate(layout: Layout, zeroed: bool) -> *mut u8 {
    assert_ne!(layout.size(), 0, "a zero-sized allocation");
    // SAFETY: the layout has a non-zero size, checked above.
    let ptr = unsafe {
        if zeroed {
            std::alloc::alloc_zeroed(layout)
        } else {
            std::alloc::alloc(layout)
        }
    };
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    ptr
}

/// The part of a hash the tables use: they ignore its low 3 bits, so a record's hash can
/// be stored with flags in them (the monitor index does) and still find the record.
#[inline]
pub(crate) fn mark(hash: u64) -> u64 {
    hash & !0b111
}

/// Moves a removed record's contents to the collector, to be dropped once no reader can
/// still be looking at them.
///
/// # Safety
///
/// `record` was removed (its slot is no longer current) and nothing else drops it; its type
/// is `Send + 'static` in all but name (the registries' bounds). `needs_drop` is whether
/// dropping it does anything (a type's own `needs_drop` is true for wrappers with a `Drop`
/// impl that do nothing for some contents, such as `entry::Value`).
pub(crate) unsafe fn retire_record<E>(guard: &Guard, record: &E, needs_drop: bool) {
    if needs_drop {
        // SAFETY: moved out exactly once (caller); the bytes stay for readers.
        let moved = unsafe { ptr::read(record) };
        // SAFETY: see `reclaim::defer_drop`.
        unsafe { crate::reclaim::defer_drop(guard, moved) };
    }
}
