//! Per-record locks: the monitor index serializes each pid's changes on a word inside the
//! pid's record.
//!
//! A lockable record carries an atomic word whose low bits are `LOCKED` and `FROZEN`; the
//! rest is the record's own data, which only the lock holder changes. Readers never look
//! at the lock. A migration does not wait for a holder: it sets `FROZEN` on the word and
//! copies it, lock bit and all, so the holder's next CAS fails and it follows its record
//! into the next array (`Locked::relocate`).

use crossbeam_epoch::Guard;
use crossbeam_utils::Backoff;

use super::array::{byte, flip, indices, published, tag_of, updating, Array, FROZEN, TOMB};
use super::{next_of, probe, publish, Probe, RawTable, Record};
use crate::sync::{spin, AtomicU64, Ordering};

/// The word is locked.
pub(crate) const LOCKED: u64 = 0b01;
/// The record was copied to the next array: the word no longer changes here.
pub(crate) const W_FROZEN: u64 = 0b10;
/// The bits of the word that are the lock's, not the record's data.
pub(crate) const WORD_FLAGS: u64 = LOCKED | W_FROZEN;

/// A record's lock word.
pub(crate) trait LockWord {
    fn word(&self) -> &AtomicU64;

    /// The data bits, for lock-free readers. Acquire: pairs with the Release with which
    /// the holder stored them, so what they point to is visible.
    #[inline]
    fn data(&self) -> u64 {
        self.word().load(Ordering::Acquire) & !WORD_FLAGS
    }

    /// [`data`](Self::data), `SeqCst`: for a reader that must see the data in one total
    /// order with other `SeqCst` operations (pairs with `Locked::set_data_seq_cst`).
    #[inline]
    fn data_seq_cst(&self) -> u64 {
        self.word().load(Ordering::SeqCst) & !WORD_FLAGS
    }
}

/// A record with a lock word.
pub(crate) trait Lockable: Record + LockWord {
    /// Whether two records are the same entity (the same pid).
    fn same(&self, other: &Self) -> bool;
}

impl<E: Lockable> RawTable<E> {
    /// Locks the current record `eq` accepts; if there is none and `fresh` is given, inserts
    /// `fresh` (whose word must carry `LOCKED`) and returns it locked. `None`: no record and
    /// no `fresh`.
    ///
    /// The holder must not call `lock` for the same record again before the guard drops.
    pub(crate) fn lock<'t, 'g, R: Fn(&E) -> u64>(
        &'t self,
        hash: u64,
        eq: impl Fn(&E) -> bool,
        mut fresh: Option<E>,
        rehash: &'t R,
        guard: &'g Guard,
    ) -> Option<Locked<'t, 'g, E, R>> {
        let backoff = Backoff::new();
        // The record is read right after its control word: overlap the two misses.
        self.prefetch(hash, guard);
        loop {
            let array = self.writable(hash, rehash, guard);
            match probe(array, hash, &eq) {
                Probe::Found { g, i } => {
                    // SAFETY: published records outlive the guard.
                    let record = unsafe { &*array.record(g, i) };
                    // Acquire: a frozen word sends us to the next array, which the Release
                    // that froze it makes visible.
                    let word = record.word().load(Ordering::Acquire);
                    if word & LOCKED != 0 {
                        spin(&backoff);
                        continue;
                    }
                    if word & W_FROZEN != 0 {
                        continue;
                    }
                    // Acquire: pairs with the Release that unlocked, so the previous
                    // holder's changes (and the data they point to) are visible.
                    if record
                        .word()
                        .compare_exchange(word, word | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Some(Locked::new(
                            self, array, g, i, hash, word, false, rehash, guard,
                        ));
                    }
                }
                Probe::Vacant { g, i, ctrl } => {
                    let record = fresh.take()?;
                    if !self.claim(array, g, i, ctrl) {
                        fresh = Some(record);
                        continue;
                    }
                    // Relaxed: we own the unpublished record.
                    let word = record.word().load(Ordering::Relaxed) & !LOCKED;
                    // SAFETY: the slot is claimed by us and unwritten.
                    unsafe { array.slot(g, i).write(record) };
                    publish(array, g, i, hash);
                    return Some(Locked::new(
                        self, array, g, i, hash, word, true, rehash, guard,
                    ));
                }
                Probe::Moved => {}
                Probe::Full => self.grow_full(array, rehash, guard),
            }
        }
    }
}

/// A locked record. Dropping it unlocks (also on unwind), storing its current data, unless
/// `remove_now` removed the record.
pub(crate) struct Locked<'t, 'g, E: Lockable, R: Fn(&E) -> u64> {
    table: &'t RawTable<E>,
    array: &'g Array<E>,
    g: usize,
    i: usize,
    hash: u64,
    /// The data bits the word holds now (stored with LOCKED while we hold it).
    data: u64,
    fresh: bool,
    /// Already tombstoned by `remove_now`: dropping does nothing.
    removed: bool,
    rehash: &'t R,
    guard: &'g Guard,
}

impl<'t, 'g, E: Lockable, R: Fn(&E) -> u64> Locked<'t, 'g, E, R> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        table: &'t RawTable<E>,
        array: &'g Array<E>,
        g: usize,
        i: usize,
        hash: u64,
        word: u64,
        fresh: bool,
        rehash: &'t R,
        guard: &'g Guard,
    ) -> Self {
        Locked {
            table,
            array,
            g,
            i,
            hash,
            data: word & !WORD_FLAGS,
            fresh,
            removed: false,
            rehash,
            guard,
        }
    }

    /// The record's data bits.
    #[inline]
    pub(crate) fn data(&self) -> u64 {
        self.data
    }

    /// Whether the record was inserted by this `lock` call.
    #[inline]
    pub(crate) fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// The locked record.
    #[inline]
    pub(crate) fn record(&self) -> &'g E {
        // SAFETY: published records outlive the guard.
        unsafe { &*self.array.record(self.g, self.i) }
    }

    /// Replaces the record's data bits (their low two bits must be clear).
    pub(crate) fn set_data(&mut self, data: u64) {
        self.set_data_ordered(data, Ordering::Release);
    }

    /// [`set_data`](Self::set_data), with `SeqCst` instead of Release when the new data is
    /// a state that lock-free readers must see in one total order with other `SeqCst`
    /// operations (a unique registry's exit marking its pid down).
    pub(crate) fn set_data_seq_cst(&mut self, data: u64) {
        self.set_data_ordered(data, Ordering::SeqCst);
    }

    fn set_data_ordered(&mut self, data: u64, order: Ordering) {
        debug_assert_eq!(data & WORD_FLAGS, 0);
        debug_assert!(!self.removed, "the record was removed");
        self.store(data | LOCKED, order);
        self.data = data;
    }

    /// Removes the record now, keeping it locked (waiters find its dead slot locked and
    /// probe again): from here on no thread that pins can reach its data, so what the
    /// data points to may be retired.
    pub(crate) fn remove_now(&mut self) {
        debug_assert!(!self.removed, "removed once");
        self.remove();
        self.removed = true;
    }

    /// Replaces our locked word by `word`, following the record into the next array if a
    /// migration copied it meanwhile.
    fn store(&mut self, word: u64, order: Ordering) {
        loop {
            // `order`, Release or stronger: publishes the holder's changes with the word;
            // pairs with the Acquire CAS in `lock` and the Acquire loads of lock-free readers
            // of the data. Acquire on failure: the word was frozen, and `relocate` needs the
            // next array it saw.
            if self
                .record()
                .word()
                .compare_exchange(self.data | LOCKED, word, order, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
            // Only a migration changes a locked word: it froze and copied it.
            self.relocate();
        }
    }

    /// Finds our record again in the next array once the migration copied it.
    fn relocate(&mut self) {
        let (table, hash, rehash, guard) = (self.table, self.hash, self.rehash, self.guard);
        table.ensure_copied(self.array, hash, rehash, guard);
        let next = next_of(self.array, guard);
        let old = self.record();
        let tag = tag_of(hash);
        for g in next.probe(hash) {
            // Acquire: the copy was published with Release.
            let ctrl = next.ctrl(g).load(Ordering::Acquire);
            for i in indices(super::array::matches(ctrl, tag)) {
                // SAFETY: published records outlive the guard.
                if unsafe { &*next.record(g, i) }.same(old) {
                    self.array = next;
                    self.g = g;
                    self.i = i;
                    return;
                }
            }
        }
        unreachable!("a migration copies a locked record to the next array");
    }

    /// Tombstones the record (its lock bit stays set in the dead slot, so waiters re-probe).
    fn remove(&mut self) {
        loop {
            let word = self.array.ctrl(self.g);
            // Acquire: a frozen group sends us to the next array, which the Release that
            // froze it makes visible (`relocate` may copy groups into it itself).
            let ctrl = word.load(Ordering::Acquire);
            if ctrl & FROZEN != 0 {
                // Copied (or being copied) with the lock held: remove the copy instead.
                self.relocate();
                continue;
            }
            let b = byte(ctrl, self.i);
            debug_assert!(published(b) && updating(ctrl).is_none());
            // Release: orders the holder's changes before the removal.
            if word
                .compare_exchange(
                    ctrl,
                    ctrl ^ flip(self.i, b, TOMB),
                    Ordering::Release,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                self.array.tombs.add(1);
                return;
            }
        }
    }
}

impl<E: Lockable, R: Fn(&E) -> u64> Drop for Locked<'_, '_, E, R> {
    fn drop(&mut self) {
        if !self.removed {
            self.store(self.data, Ordering::Release);
        }
    }
}
