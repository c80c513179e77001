//! Bags: the entries of one key of a duplicate registry, for dispatch that never blocks a
//! writer and O(1) join and leave however hot the key is.
//!
//! A bag is a chain of segments of slots, each half as large again as the one before (up
//! to `MAX_SEGMENT`, 1,024 slots), so a bag's capacity grows by about 1.5× a segment: a
//! bag wastes up to a third of its slots, not half as with doubling, which at the Zipf
//! topic sizes of the scale run is 1.13 slots per entry instead of 1.21. A segment is one
//! allocation, a 16-byte header then its slots. A slot holds one `(pid, value)` entry
//! behind a control word:
//!
//! * `0`: never used, or claimed and being written (its pid is readable once a monitor
//!   names it; see `claim`);
//! * `bag | LIVE`: a published entry. The word names its bag, so the monitor index, which
//!   keeps slot addresses, reaches the bag (and the key) from a slot;
//! * `DEAD`: removed; the value waits for the epoch;
//! * `next | FREE`: on the bag's free list, linked to the next free slot.
//!
//! Slots never move, so a slot's address is its entry's identity for life: the monitor
//! index stores it, and removing an entry is O(1) wherever it sits in a bag of millions.
//! A removed slot's reclamation (dropping the value, pushing the slot on the free list) is
//! deferred through crossbeam-epoch, once its address has left its pid's monitor (the
//! registry retires it after releasing the pid's lock): a thread that pins after the
//! retirement can reach the slot neither through the bag (it is `DEAD`) nor through the
//! monitor. So a dispatcher pinned while it reads a value never sees it overwritten, and
//! the free list (a Treiber stack) has no ABA: a stale pop would need its head to come
//! back while the popper is still pinned, which the epoch forbids.
//!
//! Dispatch walks the chain and calls `f` on each LIVE slot: no lock, no store. An entry is
//! seen at most once because it never moves; entries added during the walk may be seen or
//! not.
//!
//! # Life cycle
//!
//! `live` counts entries plus reservations of registrants about to insert. The remover that
//! takes it to 0 closes the bag (`CLOSED` is final), removes it from its key table and
//! retires it; a registrant that meets a closed bag helps remove it and makes a new one.
//! `refs` counts the table's reference plus one per slot whose reclamation is pending; the
//! last one to let go frees the bag. Memory follows a key's high-water mark until the key
//! empties: slots are reused, segments are freed with the bag.
//!
//! # Stripes
//!
//! Two threads joining and leaving one hot key would otherwise meet on every operation in
//! the bag's `live`, `refs` and free list (and the key the lookup compares sits on the same
//! line). So a bag whose count CAS fails while it holds `STRIPE_AT` (256) entries or more
//! grows stripes: seven more `(live, refs, free)` shares, one cache line each, and threads
//! take stripes in turn (`thread_stripe`). A registrant counts its entry on its stripe and
//! claims a slot from that stripe's free list; the entry's control word names the stripe,
//! so its removal, and later its slot's reclamation, count down and push back on the same
//! stripe whichever thread does them. A thread that only churns its own subscribers then
//! writes only its own line.
//!
//! Closing still turns on the bag's own `live` alone: **a stripe whose count is not 0 holds
//! one of the bag's own counts.** The registrant that finds its stripe at 0 takes one of
//! the bag's (failing if the bag closed) before counting itself on the stripe (and gives it
//! back if another thread counted first, which cannot be the last count); the remover that
//! takes a stripe to 0 gives the stripe's back, closing the bag if that was the last.
//! `refs` is striped the same way, so the bag is freed when its own `refs` reaches 0.
//! Loom model 12 (`loom-tests/tests/striped_bags.rs`) checks both.

use core::alloc::Layout;
use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use core::ptr;

use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;

use crate::reclaim::{add_retired, contain, defer};
use crate::sync::{fence, AtomicPtr, AtomicU32, AtomicUsize, Cell, Ordering};

/// Control word: a published entry (the rest of the word is its bag's address, and the
/// stripe that counts it in `STRIPE_BITS`).
const LIVE: usize = 0b001;
/// Control word: a removed entry (`STRIPE_BITS` still name the stripe that counted it).
const DEAD: usize = 0b010;
/// Control word: a free slot (the rest of the word is the next free slot's address).
const FREE: usize = 0b100;
/// `live`: the bag emptied and is being removed; it takes no more entries.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// Where a live or dead control word keeps its stripe: 0 for the bag's own counters, `i`
/// for `stripes[i - 1]`. A bag is aligned to 64, so its address leaves these bits clear.
const STRIPE_SHIFT: u32 = 3;
const STRIPE_BITS: usize = 0b111 << STRIPE_SHIFT;

/// Stripes of a hot bag (`STRIPE_BITS` can name 7).
#[cfg(not(loom))]
const STRIPES: usize = 7;
#[cfg(loom)]
const STRIPES: usize = 2;

/// A bag is striped when a registrant's CAS on its count fails while it holds at least
/// this many entries: hot keys only, so a striped bag's 7 padded lines cost at most a few
/// bytes an entry.
#[cfg(not(loom))]
const STRIPE_AT: usize = 256;

/// Slots in a bag's first segment. Under loom, tiny segments make a model append some.
#[cfg(not(loom))]
const FIRST_SEGMENT: usize = 4;
#[cfg(loom)]
const FIRST_SEGMENT: usize = 1;

/// The largest segment: past it a hot key grows by segments of this size, which keeps a
/// big bag's unused tail under 1,024 slots.
#[cfg(not(loom))]
const MAX_SEGMENT: usize = 1 << 10;
#[cfg(loom)]
const MAX_SEGMENT: usize = 2;

/// The length of the segment after one of `len` slots.
fn grown_len(len: usize) -> usize {
    (len + len.div_ceil(2)).min(MAX_SEGMENT)
}

/// One entry's place. Aligned to 8 so that its address leaves the monitor index's 3 flag
/// bits clear.
#[repr(align(8))]
pub(crate) struct Slot<V, P> {
    ctrl: AtomicUsize,
    pid: Cell<MaybeUninit<P>>,
    value: Cell<MaybeUninit<V>>,
}

/// A run of slots: this header, then `len` slots in the same allocation. Reached only
/// through raw pointers from [`Segment::alloc`], whose provenance covers the slots.
#[repr(C)]
struct Segment<V, P> {
    next: AtomicPtr<Segment<V, P>>,
    /// Slots handed out; claims past the end overshoot it (by at most one per claiming
    /// thread) and move to the next segment.
    used: AtomicU32,
    len: u32,
    _slots: PhantomData<Slot<V, P>>,
}

/// A bag's counts and free list. Every bag has its own; a hot one adds a stripe per
/// writer thread (see [`Bag`]'s "Stripes").
struct Share<V, P> {
    /// Entries plus reservations counted here (the bag's own: also one per stripe whose
    /// count is not 0; `CLOSED` once the bag emptied).
    live: AtomicUsize,
    /// References that keep the bag allocated (the bag's own: the table's, plus one per
    /// stripe whose count is not 0); the rest are pending reclamations of slots.
    refs: AtomicUsize,
    /// The free list: slots whose removal's epoch passed, linked through their words.
    free: AtomicPtr<Slot<V, P>>,
}

/// A hot bag's stripes, each on its own cache line.
type Stripes<V, P> = [CachePadded<Share<V, P>>; STRIPES];

/// The entries of one key. Aligned to 64: its address, tagged `LIVE` and a stripe, is a
/// control word. With `u64` keys it is one cache line.
#[repr(align(64))]
pub(crate) struct Bag<K, V, P> {
    hash: u64,
    key: K,
    own: Share<V, P>,
    tail: AtomicPtr<Segment<V, P>>,
    head: *mut Segment<V, P>,
    /// Null until the bag turns hot (set once, freed with the bag).
    stripes: AtomicPtr<Stripes<V, P>>,
}

/// A place reserved in a bag (by [`Bag::reserve`] or [`Bag::new`]): the stripe that
/// counts it, and the bytes the bag grew by to stripe itself.
#[derive(Clone, Copy)]
pub(crate) struct Place {
    stripe: usize,
    grown: usize,
}

impl Place {
    /// The creator's reservation in a new bag.
    pub(crate) const FIRST: Place = Place {
        stripe: 0,
        grown: 0,
    };
}

/// What `Bag::remove` left behind.
pub(crate) struct Removed<'g, K, V, P> {
    pub(crate) bag: &'g Bag<K, V, P>,
    /// The bag emptied and closed: the caller removes it from its table and retires it.
    pub(crate) closed: bool,
}

impl<K, V, P: Copy> Bag<K, V, P> {
    /// A bag for `key`, unpublished, holding its creator's reservation for one entry
    /// ([`Place::FIRST`]).
    pub(crate) fn new(hash: u64, key: K) -> *mut Bag<K, V, P> {
        let head = Segment::alloc(FIRST_SEGMENT);
        Box::into_raw(Box::new(Bag {
            hash,
            key,
            own: Share::new(1, 1),
            tail: AtomicPtr::new(head),
            head,
            stripes: AtomicPtr::new(ptr::null_mut()),
        }))
    }

    /// Frees a bag that was never published.
    ///
    /// # Safety
    ///
    /// `bag` came from `new` and no other thread ever saw it.
    pub(crate) unsafe fn discard(bag: *mut Bag<K, V, P>) {
        // SAFETY: as the caller guarantees; it holds no entry. Its key is the caller's.
        contain(|| drop(unsafe { Box::from_raw(bag) }));
    }

    /// The key's hash (its mark), kept so that a migration need not hash the key again.
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    #[inline]
    pub(crate) fn key(&self) -> &K {
        &self.key
    }

    /// Bytes of the bag, its segments and its stripes, for `Stats`: a walk of the chain, so
    /// the registry asks only when a bag comes or goes.
    pub(crate) fn bytes(&self) -> usize {
        let mut bytes = size_of::<Self>();
        if !self.stripes.load(Ordering::Acquire).is_null() {
            bytes += size_of::<Stripes<V, P>>();
        }
        let mut segment = self.head;
        while !segment.is_null() {
            // SAFETY: segments live as long as the bag.
            let s = unsafe { &*segment };
            bytes += Segment::<V, P>::bytes(s.len as usize);
            // Acquire: pairs with the Release CAS that appended the segment.
            segment = s.next.load(Ordering::Acquire);
        }
        bytes
    }

    /// Reserves a place for one entry, unless the bag has closed.
    pub(crate) fn reserve(&self) -> Option<Place> {
        // Acquire: as in `share`.
        let stripes = self.stripes.load(Ordering::Acquire);
        if stripes.is_null() && !stripe_at_once() {
            let (seen, contended) = take(&self.own.live)?;
            // A collision on a hot bag's count: stripe it for the reservations after this.
            let grown = if turns_hot(seen, contended) {
                self.stripe()
            } else {
                0
            };
            return Some(Place { stripe: 0, grown });
        }
        let grown = if stripes.is_null() { self.stripe() } else { 0 };
        self.reserve_striped(grown)
    }

    /// Gives the bag its stripes (or finds that another thread did). Returns the bytes it
    /// grew by.
    #[cold]
    fn stripe(&self) -> usize {
        let fresh: Box<Stripes<V, P>> =
            Box::new(core::array::from_fn(|_| CachePadded::new(Share::new(0, 0))));
        let fresh = Box::into_raw(fresh);
        // Release: publishes the stripes' initialization; pairs with the Acquire loads in
        // `share` and `reserve`.
        match self.stripes.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => size_of::<Stripes<V, P>>(),
            Err(_) => {
                // SAFETY: never published.
                drop(unsafe { Box::from_raw(fresh) });
                0
            }
        }
    }

    /// Reserves a place on this thread's stripe.
    fn reserve_striped(&self, grown: usize) -> Option<Place> {
        let stripe = thread_stripe();
        // The bag's own `live` alone decides closing: an empty stripe takes one of its
        // counts first (failing if the bag closed), so the bag cannot close while the
        // stripe counts anything.
        count_on_stripe(
            &self.share(stripe).live,
            || take(&self.own.live).is_some(),
            // Relaxed: as in `take`; not the last count (see `count_on_stripe`).
            || {
                self.own.live.fetch_sub(1, Ordering::Relaxed);
            },
        )
        .then_some(Place { stripe, grown })
    }

    /// Writes an entry into a place reserved with `reserve` (or by `new`), unpublished:
    /// readers of the bag skip it until [`publish`](Self::publish). Returns its slot and the
    /// bytes the bag grew by.
    pub(crate) fn claim(&self, place: Place, pid: P, value: V) -> (&Slot<V, P>, usize) {
        let (slot, grown) = match self.pop_any(place.stripe) {
            Some(slot) => (slot, 0),
            None => self.claim_new(),
        };
        // Relaxed: a popped slot's word leaves the free list's `FREE` state, so a stale
        // popper's link check fails at once. Nothing is published by it.
        slot.ctrl.store(0, Ordering::Relaxed);
        // SAFETY: the slot is ours: claimed by one RMW, or popped off a free list after
        // its previous entry's epoch passed. Nobody reads it until it is published, here or
        // through a monitor (which reads only the pid).
        unsafe {
            slot.pid.get_mut().write(MaybeUninit::new(pid));
            slot.value.get_mut().write(MaybeUninit::new(value));
        }
        (slot, grown + place.grown)
    }

    /// Publishes the entry `claim` wrote into `slot` for `place`.
    pub(crate) fn publish(&self, slot: &Slot<V, P>, place: Place) {
        // Release: publishes the entry; pairs with the Acquire loads in `for_each` and
        // `entry`.
        slot.ctrl.store(
            ptr::from_ref(self) as usize | place.stripe << STRIPE_SHIFT | LIVE,
            Ordering::Release,
        );
    }

    /// Pops a free slot: from `stripe`'s list, else from the bag's own, else from another
    /// stripe's, so that a bag's slots follow its high-water mark however its writers
    /// move between threads.
    fn pop_any(&self, stripe: usize) -> Option<&Slot<V, P>> {
        if let Some(slot) = pop_free(&self.share(stripe).free) {
            return Some(slot);
        }
        if stripe == 0 {
            return None;
        }
        pop_free(&self.own.free).or_else(|| {
            (1..=STRIPES)
                .filter(|&other| other != stripe)
                .find_map(|other| pop_free(&self.share(other).free))
        })
    }

    fn claim_new(&self) -> (&Slot<V, P>, usize) {
        let mut grown = 0;
        loop {
            // Acquire: pairs with the Release CAS that made the segment the tail (or the
            // bag's publication), so its slots are initialized.
            let current = self.tail.load(Ordering::Acquire);
            // SAFETY: segments live as long as the bag.
            let segment = unsafe { &*current };
            // Relaxed: the index is ours by the RMW; the entry is published by `ctrl`.
            let i = segment.used.fetch_add(1, Ordering::Relaxed) as usize;
            // SAFETY: as above.
            if let Some(slot) = unsafe { Segment::slots(current) }.get(i) {
                return (slot, grown);
            }
            // Full: append the next segment (or find it appended) and move the tail on.
            // Acquire: pairs with the Release CAS below, so its slots are initialized.
            let mut next = segment.next.load(Ordering::Acquire);
            if next.is_null() {
                let len = grown_len(segment.len as usize);
                let fresh = Segment::alloc(len);
                // Release: publishes the new segment's slots; pairs with the Acquire loads
                // of `next` here and in `for_each`.
                match segment.next.compare_exchange(
                    ptr::null_mut(),
                    fresh,
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        next = fresh;
                        grown += Segment::<V, P>::bytes(len);
                    }
                    Err(theirs) => {
                        // SAFETY: never published.
                        unsafe { Segment::free(fresh) };
                        next = theirs;
                    }
                }
            }
            // Release: pairs with the Acquire load of `tail` above. A failed CAS means
            // another thread moved the tail already.
            let _ = self
                .tail
                .compare_exchange(current, next, Ordering::Release, Ordering::Relaxed);
        }
    }

    /// Removes the entry in `slot`. Its value is dropped, and the slot reused, once the
    /// caller hands it to [`retire_slot`](Self::retire_slot) and the epoch allows. The caller
    /// closes the bag if asked to (see [`Removed`]).
    ///
    /// # Safety
    ///
    /// `slot` holds a live entry that the caller owns (under its pid's lock) and removes
    /// exactly once, then retires once.
    pub(crate) unsafe fn remove(slot: &Slot<V, P>) -> Removed<'_, K, V, P> {
        let ctrl = slot.ctrl.load(Ordering::Relaxed);
        debug_assert_eq!(ctrl & LIVE, LIVE, "the caller owns a live entry");
        // SAFETY: a live slot names its bag, which lives while it holds an entry.
        let bag = unsafe { &*bag_of::<K, V, P>(ctrl) };
        let stripe = (ctrl & STRIPE_BITS) >> STRIPE_SHIFT;
        // Relaxed: a reader that sees DEAD reads nothing; one that still sees LIVE reads a
        // value that stays until the epoch passes. A reader that starts after this call
        // returns is ordered after it by whatever told it so. The stripe stays in the word
        // for `reclaim`.
        slot.ctrl
            .store(DEAD | (ctrl & STRIPE_BITS), Ordering::Relaxed);
        bag.removed(stripe)
    }

    /// Gives back the place of an entry that `claim` wrote into `slot` but that was never
    /// published (its registration panicked in between): the bag is left as `publish` and
    /// `remove` would leave it, but no reader ever saw the entry.
    ///
    /// # Safety
    ///
    /// `slot` and `place` come from one `claim` on this bag, which was not published; the
    /// caller retires the slot once, as after `remove`.
    pub(crate) unsafe fn abandon(&self, slot: &Slot<V, P>, place: Place) -> Removed<'_, K, V, P> {
        // Relaxed: no reader looks at an unpublished slot; `reclaim` reads this word after
        // the epoch, which orders it.
        slot.ctrl
            .store(DEAD | place.stripe << STRIPE_SHIFT, Ordering::Relaxed);
        self.removed(place.stripe)
    }

    /// The end of a removal counted on `stripe`: takes the pending reclamation's reference,
    /// which `retire_slot` hands on, and lets the entry's count go, closing the bag if that
    /// was the last.
    fn removed(&self, stripe: usize) -> Removed<'_, K, V, P> {
        self.hold(stripe);
        Removed {
            bag: self,
            closed: self.leave(stripe),
        }
    }

    /// Takes a reference for a pending reclamation on `stripe`. The caller holds a live
    /// entry, so the bag's own `refs` is at least 1 (the table's).
    fn hold(&self, stripe: usize) {
        // Relaxed: taking a reference needs no ordering (the bag is kept by the caller's
        // entry); letting one go is ordered in `release`.
        let take_own = || {
            self.own.refs.fetch_add(1, Ordering::Relaxed);
        };
        if stripe == 0 {
            take_own();
            return;
        }
        // As in `reserve_striped`: a stripe that counts references holds one of the bag's
        // own, so the bag is not freed while it counts any.
        count_on_stripe(
            &self.share(stripe).refs,
            || {
                take_own();
                true
            },
            // Relaxed: not the last reference (see `count_on_stripe`).
            || {
                self.own.refs.fetch_sub(1, Ordering::Relaxed);
            },
        );
    }

    /// Hands a removed slot to the collector: its value is dropped and the slot goes on its
    /// stripe's free list once every thread pinned now has unpinned.
    ///
    /// # Safety
    ///
    /// `slot` was removed from `bag` by `remove`, once, and is retired once; no thread that
    /// pins from now on can reach it (its address is out of its pid's monitor).
    pub(crate) unsafe fn retire_slot(bag: &Bag<K, V, P>, slot: &Slot<V, P>, guard: &Guard)
    where
        K: 'static,
        V: 'static,
        P: 'static,
    {
        let bag_ptr = SendPtr(ptr::from_ref(bag).cast_mut());
        let slot_ptr = SendPtr(ptr::from_ref(slot).cast_mut());
        add_retired(size_of::<V>() as isize);
        // The closure captures two words: crossbeam-epoch keeps a deferred function of up
        // to three inline and boxes a larger one, an allocation per removal.
        // SAFETY: the closure touches the slot and the bag only; the bag outlives it through
        // the reference `remove` took. It runs once, after every thread pinned now has
        // unpinned.
        unsafe {
            defer(guard, move || {
                let (bag, slot) = (bag_ptr, slot_ptr);
                Bag::reclaim(bag.0, slot.0);
                add_retired(-(size_of::<V>() as isize));
            });
        }
    }

    /// Drops one from `stripe`'s count, and from the bag's own if that emptied the stripe;
    /// closes the bag if that emptied it. Returns whether we closed.
    fn leave(&self, stripe: usize) -> bool {
        // AcqRel, and Acquire on the closing CAS: whoever closes the bag measures it
        // (`bytes`, for the registry's `bag_bytes`), so it must see every segment that the
        // entries' claims appended. Each leave releases what its entry's claim did (or, for
        // a removal by another thread, what that thread saw under the pid's lock), and the
        // counts are changed by RMWs only, so the closer's acquire reads the end of every
        // earlier leave's release sequence. (Found by loom model 17: a registration given
        // back after its claim appended a segment, then the last leave in another thread
        // read the segment list without it, and 136 bytes stayed counted for good.)
        if stripe != 0 && self.share(stripe).live.fetch_sub(1, Ordering::AcqRel) != 1 {
            return false;
        }
        self.own.live.fetch_sub(1, Ordering::AcqRel) == 1
            && self
                .own
                .live
                .compare_exchange(0, CLOSED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }

    /// Drops a removed slot's value and puts the slot on its stripe's free list.
    ///
    /// # Safety
    ///
    /// Runs once per removal, after no reader can still see the slot's value.
    unsafe fn reclaim(bag: *mut Bag<K, V, P>, slot: *mut Slot<V, P>) {
        // SAFETY: the bag is alive (`refs` counts this reclamation); the slot is DEAD and
        // no reader holds its value any more.
        unsafe {
            let slot = &*slot;
            // Relaxed: the word `remove` stored (DEAD and the stripe), which nobody has
            // changed since; the epoch orders this after it.
            let stripe = (slot.ctrl.load(Ordering::Relaxed) & STRIPE_BITS) >> STRIPE_SHIFT;
            drop_value(slot);
            push_free(&(*bag).share(stripe).free, slot);
            Bag::release_on(bag, stripe);
        }
    }

    /// Hands the table's reference to the collector, once the bag left its table.
    ///
    /// # Safety
    ///
    /// The bag was closed by the caller (`Removed::closed`) and removed from its table; no
    /// thread pinned from now on can reach it.
    pub(crate) unsafe fn retire(bag: &Bag<K, V, P>, guard: &Guard)
    where
        K: 'static,
        V: 'static,
        P: 'static,
    {
        let bytes = bag.bytes();
        add_retired(bytes as isize);
        let bag = SendPtr(ptr::from_ref(bag).cast_mut());
        // SAFETY: as the caller guarantees; the bag's contents are `Send` (the registry's
        // bounds), so it may be freed on another thread.
        unsafe {
            defer(guard, move || {
                let bag = bag;
                Bag::release(bag.0);
                add_retired(-(bytes as isize));
            });
        }
    }

    /// Calls `f` with each live entry, in slot order. Returns how many it saw.
    #[inline]
    pub(crate) fn for_each<'g>(&'g self, guard: &'g Guard, mut f: impl FnMut(P, &'g V)) -> usize {
        let mut seen = 0;
        self.for_each_segment(guard, |slots| seen += Slot::for_each(slots, &mut f));
        seen
    }

    /// Calls `f` with the handed-out slots of each segment, in order: the pieces a parallel
    /// dispatch splits among its workers.
    #[inline]
    pub(crate) fn for_each_segment<'g>(
        &'g self,
        _guard: &'g Guard,
        mut f: impl FnMut(&'g [Slot<V, P>]),
    ) {
        let mut segment = self.head;
        while !segment.is_null() {
            // SAFETY: segments live as long as the bag, which the guard keeps.
            let s = unsafe { &*segment };
            let used = (s.used.load(Ordering::Relaxed) as usize).min(s.len as usize);
            // SAFETY: as above.
            f(&unsafe { Segment::slots(segment) }[..used]);
            // Acquire: pairs with the Release CAS that appended the segment.
            segment = s.next.load(Ordering::Acquire);
        }
    }
}

impl<K, V, P> Bag<K, V, P> {
    /// Lets go of a pending reclamation's reference on `stripe`.
    ///
    /// # Safety
    ///
    /// As [`release`](Self::release), for a reference `hold` took on `stripe`.
    unsafe fn release_on(bag: *mut Bag<K, V, P>, stripe: usize) {
        if stripe != 0 {
            // SAFETY: we hold a reference, so the bag is allocated.
            let share = unsafe { &*bag }.share(stripe);
            // AcqRel: our uses of the bag happen before this stripe's last release, which
            // hands them on to the bag's own count below.
            if share.refs.fetch_sub(1, Ordering::AcqRel) != 1 {
                return;
            }
        }
        // SAFETY: the stripe emptied: its reference on the bag's own count is ours now.
        unsafe { Bag::release(bag) };
    }

    /// Lets go of one of the bag's own references; the last one frees the bag.
    ///
    /// # Safety
    ///
    /// The caller holds one of `own.refs` and uses `bag` no more.
    unsafe fn release(bag: *mut Bag<K, V, P>) {
        // Release: our uses of the bag happen before its free; pairs with the fence below.
        // SAFETY: we hold a reference.
        if unsafe { &*bag }.own.refs.fetch_sub(1, Ordering::Release) == 1 {
            // Acquire: pairs with every other holder's Release decrement.
            fence(Ordering::Acquire);
            // SAFETY: the last reference: nobody can reach the bag any more. Its live
            // values were dropped by their removal or by `drop_entries`. The key is the
            // user's: its drop is contained.
            contain(|| drop(unsafe { Box::from_raw(bag) }));
        }
    }

    /// The share with index `stripe`, before the registry's bounds are known.
    #[inline]
    fn share(&self, stripe: usize) -> &Share<V, P> {
        if stripe == 0 {
            return &self.own;
        }
        // Acquire: pairs with the Release CAS in `stripe`, so the stripes are initialized.
        let stripes = self.stripes.load(Ordering::Acquire);
        assert!(
            !stripes.is_null(),
            "a stripe is named only once the bag has them"
        );
        // SAFETY: set once and freed with the bag, which the caller keeps.
        unsafe { &(*stripes)[stripe - 1] }
    }

    /// Drops every live entry's value and lets go of the table's reference: the registry is
    /// being dropped.
    ///
    /// # Safety
    ///
    /// No other thread can reach the bag, except pending reclamations of removed slots.
    pub(crate) unsafe fn drop_entries(bag: *mut Bag<K, V, P>) {
        // SAFETY: as the caller guarantees.
        let b = unsafe { &*bag };
        let mut segment = b.head;
        while !segment.is_null() {
            // SAFETY: as above.
            let s = unsafe { &*segment };
            // SAFETY: as above.
            for slot in unsafe { Segment::slots(segment) } {
                if slot.ctrl.load(Ordering::Relaxed) & LIVE != 0 {
                    // SAFETY: a live value is dropped once: here, never by a reclamation.
                    unsafe { drop_value(slot) };
                    slot.ctrl.store(DEAD, Ordering::Relaxed);
                }
            }
            segment = s.next.load(Ordering::Relaxed);
        }
        // SAFETY: the table's reference, given up once.
        unsafe { Bag::release(bag) };
    }
}

impl<V, P: Copy> Slot<V, P> {
    /// Calls `f` with each live entry of `slots` (from `Bag::for_each_segment`, under the
    /// same guard). Returns how many it saw.
    #[inline]
    pub(crate) fn for_each<'g>(slots: &'g [Slot<V, P>], mut f: impl FnMut(P, &'g V)) -> usize {
        let mut seen = 0;
        for slot in slots {
            if let Some((pid, value)) = slot.read() {
                f(pid, value);
                seen += 1;
            }
        }
        seen
    }

    /// The value of a slot this thread just published (`Bag::publish`).
    #[inline]
    pub(crate) fn value(&self) -> &V {
        // SAFETY: written before `insert` published it; it stays at least until the epoch
        // passes after a removal, and the caller is still pinned.
        unsafe { (*self.value.get()).assume_init_ref() }
    }

    /// The slot's entry, if live.
    #[inline]
    fn read(&self) -> Option<(P, &V)> {
        // Acquire: pairs with the Release in `Bag::publish`, so the entry is written.
        if self.ctrl.load(Ordering::Acquire) & LIVE == 0 {
            return None;
        }
        // SAFETY: a live slot's entry is written and stays until the epoch passes after its
        // removal; the caller is pinned.
        unsafe {
            Some((
                (*self.pid.get()).assume_init(),
                (*self.value.get()).assume_init_ref(),
            ))
        }
    }

    /// The bag and entry of a live slot.
    ///
    /// # Safety
    ///
    /// `slot` is a slot address read from a monitor under `guard`.
    #[inline]
    pub(crate) unsafe fn entry<K>(slot: u64, _guard: &Guard) -> Option<(&Bag<K, V, P>, P, &V)> {
        // SAFETY: a slot a monitor named lives until the epoch passes (see `Bag::retire_slot`).
        let slot = unsafe { &*(slot as usize as *const Slot<V, P>) };
        // Acquire: pairs with the Release in `Bag::publish`.
        let ctrl = slot.ctrl.load(Ordering::Acquire);
        if ctrl & LIVE == 0 {
            return None;
        }
        // SAFETY: a live slot names its bag; both stay until the epoch passes.
        let bag = unsafe { &*bag_of::<K, V, P>(ctrl) };
        let (pid, value) = slot.read()?;
        Some((bag, pid, value))
    }

    /// The pid written into the slot at `address`, whatever the slot's state: a slot keeps
    /// its pid until it is claimed again, which waits for the epoch after its removal.
    ///
    /// # Safety
    ///
    /// `address` is a slot address read from a monitor under `guard` (see `SlotMonitor`).
    #[inline]
    pub(crate) unsafe fn pid_at(address: u64, _guard: &Guard) -> P {
        // SAFETY: as the caller guarantees: the slot is allocated and its pid written (by
        // `claim`, before the monitor that named it was published).
        unsafe { (*(*(address as usize as *const Slot<V, P>)).pid.get()).assume_init() }
    }

    /// The slot at `address` (a monitor's mark).
    ///
    /// # Safety
    ///
    /// As `entry`, and the slot is live.
    #[inline]
    pub(crate) unsafe fn at(address: u64, _guard: &Guard) -> &Slot<V, P> {
        // SAFETY: as the caller guarantees.
        unsafe { &*(address as usize as *const Slot<V, P>) }
    }

    /// The slot's address, as the monitor index stores it.
    #[inline]
    pub(crate) fn address(&self) -> u64 {
        ptr::from_ref(self) as usize as u64
    }
}

impl<V, P> Segment<V, P> {
    fn alloc(len: usize) -> *mut Segment<V, P> {
        let layout = Self::layout(len);
        let segment = super::allocate(layout, false).cast::<Segment<V, P>>();
        let header = Segment {
            next: AtomicPtr::new(ptr::null_mut()),
            used: AtomicU32::new(0),
            len: u32::try_from(len).expect("a segment holds at most MAX_SEGMENT slots"),
            _slots: PhantomData,
        };
        // SAFETY: freshly allocated for the header and `len` slots; each is written once.
        unsafe {
            ptr::write(segment, header);
            let first = Self::first(segment).cast_mut();
            for at in 0..len {
                ptr::write(
                    first.add(at),
                    Slot {
                        ctrl: AtomicUsize::new(0),
                        pid: Cell::new(MaybeUninit::uninit()),
                        value: Cell::new(MaybeUninit::uninit()),
                    },
                );
            }
        }
        segment
    }

    /// The slots of `segment`.
    ///
    /// # Safety
    ///
    /// `segment` came from [`alloc`](Self::alloc) and is not freed during `'a`.
    unsafe fn slots<'a>(segment: *const Segment<V, P>) -> &'a [Slot<V, P>] {
        // SAFETY: as the caller guarantees; `len` initialized slots follow the header.
        unsafe { core::slice::from_raw_parts(Self::first(segment), (*segment).len as usize) }
    }

    /// Frees `segment` and its slots (whose values were dropped already or never written:
    /// slots hold `MaybeUninit`).
    ///
    /// # Safety
    ///
    /// `segment` came from [`alloc`](Self::alloc), and no thread can reach it any more.
    unsafe fn free(segment: *mut Segment<V, P>) {
        // SAFETY: as the caller guarantees: each slot and the header are dropped once
        // (loom's atomics and cells have destructors), then the allocation is freed.
        unsafe {
            let len = (*segment).len as usize;
            let first = Self::first(segment).cast_mut();
            for at in 0..len {
                ptr::drop_in_place(first.add(at));
            }
            ptr::drop_in_place(segment);
            std::alloc::dealloc(segment.cast::<u8>(), Self::layout(len));
        }
    }

    /// The first slot, after the header.
    fn first(segment: *const Segment<V, P>) -> *const Slot<V, P> {
        // In bounds of the allocation (`layout`); keeps the pointer's provenance.
        segment
            .cast::<u8>()
            .wrapping_add(Self::slots_offset())
            .cast::<Slot<V, P>>()
    }

    fn slots_offset() -> usize {
        Layout::new::<Self>()
            .extend(Layout::new::<Slot<V, P>>())
            .expect("a header and a slot fit in memory")
            .1
    }

    fn layout(len: usize) -> Layout {
        let slots = Layout::array::<Slot<V, P>>(len).expect("a segment fits in memory");
        let (layout, _) = Layout::new::<Self>()
            .extend(slots)
            .expect("a segment fits in memory");
        layout.pad_to_align()
    }

    fn bytes(len: usize) -> usize {
        Self::layout(len).size()
    }
}

impl<K, V, P> Drop for Bag<K, V, P> {
    fn drop(&mut self) {
        let stripes = self.stripes.load(Ordering::Relaxed);
        if !stripes.is_null() {
            // SAFETY: set once by `stripe`, from a `Box`; freed once, here.
            drop(unsafe { Box::from_raw(stripes) });
        }
        // Frees the segments; their values were dropped already (slots hold `MaybeUninit`).
        let mut segment = self.head;
        while !segment.is_null() {
            // SAFETY: the bag owns its chain; nothing else can reach it any more.
            let next = unsafe { &*segment }.next.load(Ordering::Relaxed);
            // SAFETY: as above; freed once, here.
            unsafe { Segment::free(segment) };
            segment = next;
        }
    }
}

// SAFETY: a slot's cells are written only by the thread that owns the slot (claimed or
// popped, not yet published) and read only after the Acquire of its publication.
unsafe impl<V: Send + Sync, P: Send + Sync> Sync for Slot<V, P> {}
// SAFETY: as above.
unsafe impl<V: Send + Sync, P: Send + Sync> Send for Slot<V, P> {}

impl<V, P> Share<V, P> {
    fn new(live: usize, refs: usize) -> Self {
        Share {
            live: AtomicUsize::new(live),
            refs: AtomicUsize::new(refs),
            free: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// The bag a live or dead control word names.
#[inline]
fn bag_of<K, V, P>(ctrl: usize) -> *const Bag<K, V, P> {
    (ctrl & !(STRIPE_BITS | LIVE | DEAD)) as *const Bag<K, V, P>
}

/// Adds one to a bag's own `live` unless the bag has closed. Returns the count it added
/// to and whether it lost a CAS on the way (another writer collided).
fn take(live: &AtomicUsize) -> Option<(usize, bool)> {
    let mut n = live.load(Ordering::Relaxed);
    let mut contended = false;
    loop {
        if n & CLOSED != 0 {
            return None;
        }
        // Relaxed: the count only decides who closes the bag (one RMW order decides); the
        // bag's memory is kept by the epoch, and entries are published by `ctrl`.
        match live.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some((n, contended)),
            Err(now) => {
                contended = true;
                n = now;
            }
        }
    }
}

/// Adds one to a stripe's `count` (its `live` or its `refs`), keeping the rule that a
/// stripe whose count is not 0 holds one count of the bag's own: at 0, it first calls
/// `take_own` for the stripe (false: the bag closed, and nothing is counted). If another
/// thread counted on the stripe meanwhile, the stripe holds that thread's own count
/// already, so ours goes back through `give_back`, which cannot be the last of the bag's:
/// the stripe's stays while ours is counted. Returns whether it counted.
fn count_on_stripe(count: &AtomicUsize, take_own: impl Fn() -> bool, give_back: impl Fn()) -> bool {
    // Relaxed: one RMW order per counter decides (see `take`).
    let mut n = count.load(Ordering::Relaxed);
    let mut holding = false;
    loop {
        if n == 0 && !holding {
            if !take_own() {
                return false;
            }
            holding = true;
        }
        match count.compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                if holding && n != 0 {
                    give_back();
                }
                return true;
            }
            Err(now) => n = now,
        }
    }
}

/// Whether a registrant that counted on an unstriped bag holding `seen` (after losing a
/// CAS on it, if `contended`) stripes it.
#[cfg(not(loom))]
#[inline]
fn turns_hot(seen: usize, contended: bool) -> bool {
    contended && seen >= STRIPE_AT
}

/// Under loom only [`stripe_every_bag`] stripes bags.
#[cfg(loom)]
fn turns_hot(_seen: usize, _contended: bool) -> bool {
    false
}

/// Whether a bag is striped at its first reservation after its creator's: never, outside
/// loom.
#[cfg(not(loom))]
#[inline]
fn stripe_at_once() -> bool {
    false
}

/// Under loom a model chooses: [`stripe_every_bag`] stripes a bag at its second
/// reservation, so the models explore stripes without needing contention to find them.
#[cfg(loom)]
fn stripe_at_once() -> bool {
    STRIPE_EVERY_BAG.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(loom)]
static STRIPE_EVERY_BAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Under loom: whether every bag is striped at its second reservation (for the models of
/// striped bags; a process-wide switch, so a model binary sets it in every test).
#[cfg(loom)]
pub fn stripe_every_bag(on: bool) {
    STRIPE_EVERY_BAG.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The stripe this thread reserves on in a striped bag: threads take stripes in turn, so
/// up to `STRIPES` writer threads never share one.
#[cfg(not(loom))]
#[inline]
fn thread_stripe() -> usize {
    crate::sync::thread_shard() % STRIPES + 1
}

/// Under loom, from the model's thread index (deterministic across executions).
#[cfg(loom)]
fn thread_stripe() -> usize {
    let id = format!("{:?}", loom::thread::current().id());
    let index: usize = id
        .trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .expect("loom's ThreadId prints as ThreadId(n)");
    index % STRIPES + 1
}

fn pop_free<V, P>(free: &AtomicPtr<Slot<V, P>>) -> Option<&Slot<V, P>> {
    // Acquire: pairs with the Release CAS in `push_free`, so the head's link is visible.
    let mut head = free.load(Ordering::Acquire);
    loop {
        if head.is_null() {
            return None;
        }
        // SAFETY: slots live as long as their bag, which the caller's guard keeps.
        let slot = unsafe { &*head };
        let link = slot.ctrl.load(Ordering::Relaxed);
        if link & FREE == 0 {
            // Popped and reused since we read the head: it is not the head any more.
            head = free.load(Ordering::Acquire);
            continue;
        }
        let next = (link & !FREE) as *mut Slot<V, P>;
        // Acquire: as the load above, for the new head's link. The CAS cannot succeed with
        // a stale `next`: `head` cannot be popped, reused, removed and pushed again while
        // this thread is pinned.
        match free.compare_exchange_weak(head, next, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => return Some(slot),
            Err(now) => head = now,
        }
    }
}

/// Drops the value in `slot`. A panic of the value's `Drop` is caught and counted
/// (`reclaim::contain`): a reclamation runs in whatever thread collects garbage.
///
/// # Safety
///
/// The slot holds a value that nobody reads any more; it is dropped once, here.
unsafe fn drop_value<V, P>(slot: &Slot<V, P>) {
    // Taken even for a value without drop glue: under loom this is the write that a racing
    // reader of the value is checked against.
    let value = slot.value.get_mut();
    if core::mem::needs_drop::<V>() {
        // SAFETY: as the caller guarantees.
        contain(|| unsafe { (*value).assume_init_drop() });
    }
}

fn push_free<V, P>(free: &AtomicPtr<Slot<V, P>>, slot: &Slot<V, P>) {
    let mut head = free.load(Ordering::Relaxed);
    loop {
        slot.ctrl.store(head as usize | FREE, Ordering::Relaxed);
        // Release: publishes the link and the dropped value's slot; pairs with the Acquire
        // loads in `pop_free`.
        match free.compare_exchange_weak(
            head,
            ptr::from_ref(slot).cast_mut(),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

struct SendPtr<T>(*mut T);
// SAFETY: only carries the pointer to the thread that runs a deferred reclamation; the
// registry's bounds make the pointee's contents `Send`.
unsafe impl<T> Send for SendPtr<T> {}
