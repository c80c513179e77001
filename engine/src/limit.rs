//! `max_entries`: places under a limit, and a gate that makes the count exact when it
//! matters.
//!
//! A registration reserves a place (one `fetch_add` on `reserved`) before its entry goes
//! into the table, and gives it back if the key turns out to be taken; a removal gives its
//! place back after its entry has left the table. So `reserved` never falls below the
//! entries in the table, and the table never holds more than `max`. But `reserved` also
//! counts operations still in flight, so a failed reservation alone does not prove that
//! the table is full: a removal may have taken its entry out (and a lookup seen it gone)
//! without having given the place back yet, or a registration that will end `Taken` may
//! hold the last place for a moment. Refusing then would be a spurious `Full`.
//!
//! The gate settles it. Every registration (from reservation to insert or give-back) and
//! every removal (from before its first entry leaves to after the places are given back)
//! holds a shared pass on one stripe of the gate, chosen by thread. A registration whose
//! reservation fails drops its pass and takes the whole gate exclusively: then nothing is
//! in flight and `reserved` is exactly the number of entries in the table, so the answer
//! it reads there (full, or a place taken and the entry inserted under the gate) is the
//! registry's state at that instant. The locks are writer-preferring, so a refused
//! registration waits only for the operations already in flight, never for a stream of
//! new ones. Registries without a limit have no gate and pay nothing.

use crossbeam_utils::CachePadded;

use crate::sync::{thread_shard, AtomicUsize, Ordering, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Stripes of the gate: enough that scheduler threads rarely share one.
#[cfg(not(loom))]
const STRIPES: usize = 8;
#[cfg(loom)]
const STRIPES: usize = 2;

/// The entry limit of a registry.
pub(crate) struct Limit {
    max: usize,
    /// Entries in the table plus registrations and removals in flight (see the module docs).
    reserved: AtomicUsize,
    gate: Box<[CachePadded<RwLock<()>>; STRIPES]>,
}

/// A shared pass through the gate: held by a removal until it has given its places back.
pub(crate) struct Pass<'a>(#[allow(dead_code)] RwLockReadGuard<'a, ()>);

/// A place reserved for one registration. Dropped without [`Place::keep`], it goes back to
/// the limit (a key found taken, or a panic in the caller's `Hash` or `Eq`); either way the
/// registration's pass is dropped after the place is settled.
pub(crate) struct Place<'a> {
    limit: &'a Limit,
    kept: bool,
    _hold: Hold<'a>,
}

/// How a registration holds the gate: shared after a reservation that succeeded at once,
/// exclusive after one that needed the exact count.
enum Hold<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] [RwLockWriteGuard<'a, ()>; STRIPES]),
}

impl Limit {
    pub(crate) fn new(max: usize) -> Limit {
        Limit {
            max,
            reserved: AtomicUsize::new(0),
            gate: Box::new(core::array::from_fn(|_| CachePadded::new(RwLock::new(())))),
        }
    }

    /// A pass for a removal: take it before the first entry leaves the table and drop it
    /// after [`release`](Self::release).
    pub(crate) fn pass(&self) -> Pass<'_> {
        Pass(self.shared())
    }

    /// Reserves a place for a registration, or returns `None` if the registry held `max`
    /// entries at some instant during this call.
    pub(crate) fn place(&self) -> Option<Place<'_>> {
        let shared = self.shared();
        if self.take() {
            return Some(self.hold(Hold::Shared(shared)));
        }
        drop(shared);
        // Every stripe, in order (so two refused registrations cannot deadlock): once held,
        // no registration or removal is in flight, and `reserved` counts the table exactly.
        let all = core::array::from_fn(|i| {
            self.gate[i]
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        self.take().then(|| self.hold(Hold::Exclusive(all)))
    }

    /// Gives back the places of `n` entries that have left the table.
    pub(crate) fn release(&self, n: usize) {
        // Relaxed: a count, not a publication; the gate orders it for the exact reading.
        self.reserved.fetch_sub(n, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        // Relaxed: as in `release`.
        if self.reserved.fetch_add(1, Ordering::Relaxed) < self.max {
            return true;
        }
        self.release(1);
        false
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        // The gate guards no data, so a poisoned stripe (a panic in a caller's `Hash` or
        // `Eq` under it) is as good as a healthy one.
        self.gate[thread_shard() % STRIPES]
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn hold<'a>(&'a self, hold: Hold<'a>) -> Place<'a> {
        Place {
            limit: self,
            kept: false,
            _hold: hold,
        }
    }
}

impl Place<'_> {
    /// The entry is in the table: the place is its own until it leaves.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        // Runs before `_hold` is dropped: the place is settled while the gate is held.
        if !self.kept {
            self.limit.release(1);
        }
    }
}
