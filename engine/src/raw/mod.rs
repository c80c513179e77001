//! The partition table: an open-addressing hash table of node pointers with lock-free reads,
//! CAS insert-if-absent, and cooperative incremental migration.
//!
//! * `array.rs`: the layout (cache-line groups, slot states, tags).
//! * `migrate.rs`: growth and compaction, copied group by group by the writers.
//! * this file: the probe loops (`find`, `insert`, `remove`, `replace`, `lock`).
//!
//! # Why pointers to nodes
//!
//! Entries live in heap nodes and slots hold pointers. A node is written once before it is
//! published and never mutated afterwards (an update publishes a new node), so a reader
//! needs no lock and no seqlock retry: pin, load, compare. The price is one allocation per
//! entry; the gain is that the same node is shared by the name table and the monitor index
//! (it carries the link of its pid's list), so a registration costs one node and two
//! 8-byte slots. Inline entries would need either a per-slot version check on every read or
//! a copy per index. See `docs/table.md` for the memory arithmetic.
//!
//! # Linearizability during a migration
//!
//! A writer never writes into an old array once a migration started: it first copies every
//! group of its key's probe sequence (`ensure_copied`), then works in the new array. A
//! reader never waits: a frozen slot whose group is not yet MIGRATED still holds the truth
//! (nothing can change the key elsewhere until the group is copied), and once the group is
//! MIGRATED the reader moves on to the next array.

mod array;
mod migrate;

use core::ptr;

use crossbeam_epoch::Guard;

pub(crate) use self::array::NODE_ALIGN;
use self::array::{has, node_of, tag_at, tag_of, tomb, with, Array, Group, Slot, LOCKED, WIDTH};
use crate::sync::{spin, AtomicPtr, Ordering};

/// Initial size in groups. Tables start small and grow; `capacity` pre-sizes them.
#[cfg(not(loom))]
const MIN_GROUPS: usize = 4;
#[cfg(loom)]
const MIN_GROUPS: usize = 1;

/// One partition's table of `N` nodes.
pub(crate) struct RawTable<N> {
    current: AtomicPtr<Array<N>>,
}

/// Where a writer's probe for a key ended.
enum Probe<'g, N> {
    /// A live slot whose node matched (`word` as loaded, flags included).
    Found {
        slot: &'g AtomicPtr<N>,
        word: *mut N,
    },
    /// No match; the first vacant slot of the sequence.
    Vacant { group: &'g Group<N>, index: usize },
    /// A slot of the sequence is frozen: a migration started, retry in the next array.
    Moved,
}

impl<N> RawTable<N> {
    /// A table sized for `capacity` entries without growing.
    pub(crate) fn with_capacity(capacity: usize) -> RawTable<N> {
        let array = Box::new(Array::new(groups_for(capacity)));
        RawTable {
            current: AtomicPtr::new(Box::into_raw(array)),
        }
    }

    /// The current array.
    #[inline]
    fn current<'g>(&self, _guard: &'g Guard) -> &'g Array<N> {
        // Acquire: pairs with the Release CAS in `promote` (and the initial publication),
        // so the array's groups are visible.
        let array = self.current.load(Ordering::Acquire);
        // SAFETY: the current array is never null, and an array replaced by a migration is
        // retired through the epoch, so it outlives `_guard`.
        unsafe { &*array }
    }

    /// Finds the live node with hash `hash` for which `eq` holds. Lock-free: loads only.
    pub(crate) fn find<'g>(
        &self,
        hash: u64,
        eq: impl Fn(&N) -> bool,
        guard: &'g Guard,
    ) -> Option<&'g N> {
        let tag = tag_of(hash);
        let mut array = self.current(guard);
        'array: loop {
            for (_, group) in array.probe(hash) {
                // Relaxed: tags are hints; the slot load below is what synchronizes.
                let header = group.header.load(Ordering::Relaxed);
                for (i, slot) in group.slots.iter().enumerate() {
                    let t = tag_at(header, i);
                    if t != 0 && t != tag {
                        continue;
                    }
                    // Acquire: pairs with the Release CAS that published the node.
                    match Slot::decode(slot.load(Ordering::Acquire)) {
                        Slot::Tomb => {}
                        Slot::Vacant { frozen } => {
                            if frozen && group.migrated() {
                                array = next_of(array, guard);
                                continue 'array;
                            }
                            return None;
                        }
                        Slot::Live { node, frozen } => {
                            // SAFETY: a node reachable from a slot is freed only through the
                            // epoch after it is unlinked, so it outlives `guard`.
                            let node = unsafe { &*node };
                            if !eq(node) {
                                continue;
                            }
                            // A frozen entry is current until its group is MIGRATED: no
                            // writer touches the key in the next array before that.
                            if frozen && group.migrated() {
                                array = next_of(array, guard);
                                continue 'array;
                            }
                            return Some(node);
                        }
                    }
                }
            }
            return None;
        }
    }

    /// Inserts `node` unless a live node matches `eq`; on conflict returns that node.
    ///
    /// # Safety
    ///
    /// `node` must be a valid, uniquely owned node aligned to `NODE_ALIGN`, with
    /// `hash == rehash(node)` and `eq(node)`. On `Ok` the table owns it.
    pub(crate) unsafe fn insert<'g>(
        &self,
        hash: u64,
        node: *mut N,
        eq: impl Fn(&N) -> bool,
        rehash: &impl Fn(&N) -> u64,
        guard: &'g Guard,
    ) -> Result<(), &'g N> {
        loop {
            let array = self.writable(hash, rehash, guard);
            match probe(array, hash, &eq, guard) {
                Probe::Found { word, .. } => {
                    // SAFETY: a live node outlives the guard (see `find`).
                    return Err(unsafe { &*node_of(word) });
                }
                Probe::Vacant { group, index } => {
                    if self.claim(array, group, index, hash, node) {
                        return Ok(());
                    }
                }
                Probe::Moved => {}
            }
        }
    }

    /// Removes the slot that holds exactly `target`. Returns whether it was found.
    pub(crate) fn remove(
        &self,
        hash: u64,
        target: *const N,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
    ) -> bool {
        self.swap(hash, target, tomb(), rehash, guard)
    }

    /// Replaces the live `old` node by `new` in its slot. Returns whether `old` was found.
    pub(crate) fn replace(
        &self,
        hash: u64,
        old: *const N,
        new: *mut N,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
    ) -> bool {
        self.swap(hash, old, new, rehash, guard)
    }

    fn swap(
        &self,
        hash: u64,
        target: *const N,
        new: *mut N,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
    ) -> bool {
        let eq = |n: &N| ptr::eq(n, target);
        loop {
            let array = self.writable(hash, rehash, guard);
            match probe(array, hash, &eq, guard) {
                Probe::Found { slot, word } => {
                    debug_assert!(!has(word, LOCKED), "swap on a locked slot");
                    // AcqRel: Release publishes `new`'s contents to readers (pairs with
                    // their Acquire slot load); Acquire orders after the old node's writes.
                    if slot
                        .compare_exchange(word, new, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        if new == tomb() {
                            array.tombs.add(1);
                        }
                        return true;
                    }
                    // Frozen under us: retry in the next array.
                }
                Probe::Vacant { .. } => return false,
                Probe::Moved => {}
            }
        }
    }

    /// Locks the slot of the live node matching `eq`, or, if there is none and `fresh` is
    /// given, claims a vacant slot for `fresh` and locks it. `None`: no match, no `fresh`.
    ///
    /// While a slot is locked only its holder changes it (migrations copy it, lock and all),
    /// so the holder may edit what hangs off the node without further synchronization.
    ///
    /// # Safety
    ///
    /// As for `insert`, for `fresh`. The lock must not already be held by this thread.
    pub(crate) unsafe fn lock<'t, 'g, R: Fn(&N) -> u64>(
        &'t self,
        hash: u64,
        eq: impl Fn(&N) -> bool,
        fresh: Option<*mut N>,
        rehash: &'t R,
        guard: &'g Guard,
    ) -> Option<Locked<'t, 'g, N, R>> {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            let array = self.writable(hash, rehash, guard);
            match probe(array, hash, &eq, guard) {
                Probe::Found { slot, word } => {
                    if has(word, LOCKED) {
                        spin(&backoff);
                        continue;
                    }
                    // Acquire: pairs with the Release store in `Locked::unlock`, so the
                    // previous holder's edits of the node's list are visible.
                    if slot
                        .compare_exchange(
                            word,
                            with(word, LOCKED),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        return Some(Locked {
                            table: self,
                            array,
                            slot,
                            hash,
                            stored: node_of(word),
                            emptied: false,
                            rehash,
                            guard,
                        });
                    }
                }
                Probe::Vacant { group, index } => {
                    let fresh = fresh?;
                    if self.claim(array, group, index, hash, with(fresh, LOCKED)) {
                        return Some(Locked {
                            table: self,
                            array,
                            slot: &group.slots[index],
                            hash,
                            stored: fresh,
                            emptied: false,
                            rehash,
                            guard,
                        });
                    }
                }
                Probe::Moved => {}
            }
        }
    }

    /// Claims the vacant `group.slots[index]` for `word`, then counts it and grows the table
    /// if it passed its load limit. Returns false if another writer claimed it first.
    fn claim(
        &self,
        array: &Array<N>,
        group: &Group<N>,
        index: usize,
        hash: u64,
        word: *mut N,
    ) -> bool {
        // Release: publishes the node's contents; pairs with the Acquire slot loads of
        // readers and writers.
        if group.slots[index]
            .compare_exchange(ptr::null_mut(), word, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        group.set_tag(index, tag_of(hash));
        let used = array.used.add(1);
        // Small tables check the exact sum; large ones only every 64 claims of a shard, a
        // lag far below their 1/8 headroom.
        if array.slots() < 1 << 15 || used % 64 == 0 {
            let used = array.used.sum();
            if array.over_limit(used) {
                self.start_migration(array);
            }
        }
        true
    }

    /// Visits every live node once: the weakly consistent iteration behind `select`.
    ///
    /// Entries present for the whole walk are visited exactly once; entries added or removed
    /// during it may or may not be. An entry removed before the walk starts is never visited.
    ///
    /// A migration already under way is finished first (the walk is O(n) anyway), so the
    /// walk starts on an array with no `next`. If a migration starts during the walk, an
    /// entry found frozen in a copied group is carried over and visited in the next array;
    /// every other entry of the next array was either visited here before its group froze
    /// or was inserted during the walk.
    pub(crate) fn for_each(
        &self,
        rehash: &impl Fn(&N) -> u64,
        guard: &Guard,
        mut f: impl FnMut(&N),
    ) {
        let mut array = self.current(guard);
        // Acquire: pairs with the Release CAS in `start_migration`.
        while !array.next.load(Ordering::Acquire).is_null() {
            self.finish_migration(array, rehash, guard);
            array = next_of(array, guard);
        }
        let mut carried: Option<std::collections::HashSet<*const N, foldhash::fast::RandomState>> =
            None;
        loop {
            let mut carry = std::collections::HashSet::with_hasher(Default::default());
            for group in array.groups() {
                for slot in &group.slots {
                    // Acquire: pairs with the Release CAS that published the node.
                    let Slot::Live { node, frozen } = Slot::decode(slot.load(Ordering::Acquire))
                    else {
                        continue;
                    };
                    if carried
                        .as_ref()
                        .is_some_and(|c| !c.contains(&node.cast_const()))
                    {
                        continue;
                    }
                    if frozen && group.migrated() {
                        carry.insert(node.cast_const());
                        continue;
                    }
                    // SAFETY: live nodes outlive the guard (see `find`).
                    f(unsafe { &*node });
                }
            }
            if carry.is_empty() {
                return;
            }
            array = next_of(array, guard);
            carried = Some(carry);
        }
    }

    /// Slots in the current array.
    pub(crate) fn capacity(&self, guard: &Guard) -> usize {
        self.current(guard).slots()
    }

    /// Bytes of the current array and of the one it migrates into, if any; and whether a
    /// migration is under way.
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

    /// Calls `f` with every live node, each once, for tearing the table down.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(*mut N)) {
        // SAFETY: `&mut self` means no other thread is inside the table.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        let mut array = self.current(guard);
        loop {
            for group in array.groups() {
                // With no thread in flight a group is either untouched or fully copied.
                if group.migrated() {
                    continue;
                }
                for slot in &group.slots {
                    if let Slot::Live { node, .. } = Slot::decode(slot.load(Ordering::Relaxed)) {
                        f(node);
                    }
                }
            }
            let next = array.next.load(Ordering::Relaxed);
            if next.is_null() {
                return;
            }
            // SAFETY: `next` is owned by the table until dropped.
            array = unsafe { &*next };
        }
    }
}

impl<N> Drop for RawTable<N> {
    fn drop(&mut self) {
        // Frees the arrays only: nodes belong to the registry, which drains them first.
        let mut array = *self.current.get_mut();
        while !array.is_null() {
            // SAFETY: the table owns its current array and the one it migrates into; no
            // other thread can reach them once the table is dropped.
            let boxed = unsafe { Box::from_raw(array) };
            array = boxed.next.load(Ordering::Relaxed);
        }
    }
}

/// The probe a writer runs: the live node matching `eq`, else the first vacant slot.
fn probe<'g, N>(
    array: &'g Array<N>,
    hash: u64,
    eq: &impl Fn(&N) -> bool,
    _guard: &'g Guard,
) -> Probe<'g, N> {
    let tag = tag_of(hash);
    for (_, group) in array.probe(hash) {
        // Relaxed: tags are hints; the slot loads synchronize.
        let header = group.header.load(Ordering::Relaxed);
        for (index, slot) in group.slots.iter().enumerate() {
            let t = tag_at(header, index);
            if t != 0 && t != tag {
                continue;
            }
            // Acquire: pairs with the Release CAS that published the node.
            let word = slot.load(Ordering::Acquire);
            match Slot::decode(word) {
                Slot::Tomb => {}
                Slot::Vacant { frozen: true } | Slot::Live { frozen: true, .. } => {
                    return Probe::Moved
                }
                Slot::Vacant { frozen: false } => return Probe::Vacant { group, index },
                Slot::Live {
                    node,
                    frozen: false,
                } => {
                    // SAFETY: live nodes outlive the guard (see `find`).
                    if eq(unsafe { &*node }) {
                        return Probe::Found { slot, word };
                    }
                }
            }
        }
    }
    unreachable!("a table never fills: it migrates at 7/8 load")
}

fn next_of<'g, N>(array: &Array<N>, _guard: &'g Guard) -> &'g Array<N> {
    // Acquire: pairs with the Release CAS in `start_migration` that installed `next`.
    let next = array.next.load(Ordering::Acquire);
    debug_assert!(!next.is_null(), "a frozen slot implies a next array");
    // SAFETY: a frozen slot means `next` was installed; it becomes current before `array`
    // is retired and is itself retired only after that, through the epoch.
    unsafe { &*next }
}

/// Groups for `capacity` entries at no more than half load.
fn groups_for(capacity: usize) -> usize {
    capacity
        .saturating_mul(2)
        .div_ceil(WIDTH)
        .next_power_of_two()
        .max(MIN_GROUPS)
}

/// A locked slot: the pid's monitor-list head while the holder edits the list.
///
/// Dropping it unlocks (also on unwind), storing the current head, or a tombstone when the
/// list became empty.
pub(crate) struct Locked<'t, 'g, N, R: Fn(&N) -> u64> {
    table: &'t RawTable<N>,
    array: &'g Array<N>,
    slot: &'g AtomicPtr<N>,
    hash: u64,
    /// The node the slot holds (with LOCKED) right now.
    stored: *mut N,
    /// The list emptied: unlocking leaves a tombstone.
    emptied: bool,
    rehash: &'t R,
    guard: &'g Guard,
}

impl<N, R: Fn(&N) -> u64> Locked<'_, '_, N, R> {
    /// The head of the list (null once emptied).
    #[inline]
    pub(crate) fn head(&self) -> *mut N {
        if self.emptied {
            ptr::null_mut()
        } else {
            self.stored
        }
    }

    /// Makes `head` the list's head; null empties the list (the slot goes when unlocked).
    pub(crate) fn set_head(&mut self, head: *mut N) {
        if head.is_null() {
            self.emptied = true;
        } else {
            self.emptied = false;
            self.store(with(head, LOCKED));
            self.stored = head;
        }
    }

    /// Replaces our locked word by `word`, following the slot into the next array if a
    /// migration copied it meanwhile.
    fn store(&mut self, word: *mut N) {
        loop {
            // Release: publishes the holder's edits (list links, new head) with the word;
            // pairs with the Acquire CAS in `lock` and the Acquire loads of readers.
            let locked = with(self.stored, LOCKED);
            if self
                .slot
                .compare_exchange(locked, word, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
            // Only a migration changes a locked slot: it froze it and copies it as is.
            self.relocate();
        }
    }

    /// Finds our locked word again in the next array once the migration copied it.
    fn relocate(&mut self) {
        let (table, hash, rehash, guard) = (self.table, self.hash, self.rehash, self.guard);
        table.ensure_copied(self.array, hash, rehash, guard);
        let next = next_of(self.array, guard);
        let locked = with(self.stored, LOCKED);
        for (_, group) in next.probe(hash) {
            for slot in &group.slots {
                // Relaxed: the copy was published by the group's MIGRATED flag, which
                // `ensure_copied` observed with Acquire.
                let word = slot.load(Ordering::Relaxed);
                if node_of(word) == self.stored && has(word, LOCKED) {
                    debug_assert_eq!(word.map_addr(|a| a & !array::FROZEN), locked);
                    self.array = next;
                    self.slot = slot;
                    return;
                }
            }
        }
        unreachable!("a migration copies a locked slot to the next array");
    }
}

impl<N, R: Fn(&N) -> u64> Drop for Locked<'_, '_, N, R> {
    fn drop(&mut self) {
        if self.emptied {
            self.store(tomb());
            self.array.tombs.add(1);
        } else {
            self.store(self.stored);
        }
    }
}
