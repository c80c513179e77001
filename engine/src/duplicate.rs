//! Duplicate registries: many `(pid, value)` entries per key, for pub/sub.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::ptr;
use std::panic::AssertUnwindSafe;

use crossbeam_epoch::Guard;
use scopeguard::ScopeGuard;

use crate::batch;
use crate::counter::Counter;
use crate::entry::{BagRef, SlotMonitor};
use crate::event::{Event, Listener};
use crate::keylock::KeyLocks;
use crate::meta::{meta_and_lock, Meta};
use crate::monitor;
use crate::partition::Partitioned;
use crate::pid::{Pid, ProcessId};
use crate::raw::{mark, Bag, LockWord, Place, RawTable, Removed, Slot};
use crate::reclaim::{self, Epoch};
use crate::settings::{settings_setters, Settings};
use crate::stats::Stats;
use crate::DefaultHashBuilder;

/// How a [`Duplicate`] registry spreads its entries over partitions (Elixir's
/// `{:duplicate, :key}` and `{:duplicate, :pid}`).
///
/// * `Key` (the default) keeps every entry of a key in one partition: `lookup` and
///   `dispatch` probe one table. Writers of one hot key share that key's bag, which splits
///   its counts and free slots into per-thread stripes once it holds 256 entries and two
///   writers collide, so they meet only in the pid index.
/// * `Pid` puts an entry in its pid's partition: a key has a bag in every partition its
///   subscribers hash to, so writers of a hot key spread over partitions, while `lookup`
///   and `dispatch` probe every partition. Pick it when a few keys take most of the joins
///   and leaves from many cores and broadcasts are rare; `reports/duplicate.md` has the
///   measured figures for both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PartitionBy {
    /// All entries of a key in one partition.
    #[default]
    Key,
    /// Each entry in its pid's partition.
    Pid,
}

/// A registry in which a key holds any number of `(pid, value)` entries: topics and their
/// subscribers.
///
/// Each key's entries live in a bag of stable slots, so joining or leaving a key is O(1)
/// however many entries it holds (the monitor index remembers each entry's slot), and
/// [`dispatch`](Self::dispatch) walks a snapshot of the bag in the caller's thread with no
/// lock: writers never wait for it, it never sees an entry twice and never touches a freed
/// one. [`process_down`](Self::process_down) removes every entry of an exited process in
/// O(its entries), and once it returns no call that starts afterwards sees the pid.
///
/// An exit here is atomic per entry, not as a whole: while one runs, a reader may find the
/// pid gone from one key and still in another's bag. A [`Unique`](crate::Unique) exit
/// makes all of a pid's names go at one instant (its docs, "Exits are atomic") by having
/// each lookup that finds an entry check its pid's monitor while such an exit is under way;
/// here that check would fall on every entry a `dispatch` walks, so a dispatch over a
/// million subscribers could cost a million more probes whenever any subscriber's exit
/// overlapped it. Pub/sub delivery does not need it: a dispatch is a snapshot of one key,
/// and a message to a process that is exiting is lost either way.
///
/// Memory: a key's bag grows by segments (one allocation each), a pid's monitor by a key
/// list once it holds a second entry, and the tables by new arrays. A failed allocation
/// aborts the process through [`std::alloc::handle_alloc_error`], as for
/// [`Unique`](crate::Unique); [`stats`](Self::stats) shows what the registry holds.
///
/// ```
/// use regent::{Duplicate, Pid};
///
/// let topics: Duplicate<&str, u32> = Duplicate::new();
/// let (alice, bob) = (Pid::new(1), Pid::new(2));
/// topics.register(alice, "news", 1);
/// topics.register(bob, "news", 2);
/// topics.register(alice, "news", 3); // the same pid may join twice
///
/// let mut delivered = 0;
/// assert_eq!(topics.dispatch("news", |_pid, _value| delivered += 1), 3);
/// assert_eq!(delivered, 3);
///
/// assert_eq!(topics.unregister(alice, "news"), 2);
/// assert_eq!(topics.lookup("news"), vec![(bob, 2)]);
/// assert_eq!(topics.process_down(bob), 1);
/// assert_eq!(topics.count(), 0);
/// ```
///
/// Keys' and pids' `Hash` and `Eq` should not panic; what happens if one does is in the
/// crate docs ("Panics in `Hash` and `Eq`").
pub struct Duplicate<K, V = (), P = Pid, S = DefaultHashBuilder> {
    /// One bag per key (per partition, under `PartitionBy::Pid`), by hash of key.
    bags: Partitioned<BagRef<K, V, P>>,
    /// One monitor per pid that holds entries: the addresses of its entries' slots.
    pids: Partitioned<SlotMonitor<P>>,
    by: PartitionBy,
    hasher: S,
    entries: Counter,
    monitors: Counter,
    /// Bytes of the monitors' lists (pids holding more than one entry).
    lists: Counter,
    /// Bytes of the bags and their segments.
    bag_bytes: Counter,
    listener: Option<Listener<K, V, P>>,
    epoch: Epoch,
    meta: Meta,
    locks: KeyLocks<K>,
    /// The registry owns its entries: Send and Sync follow `K`, `V` and `P`.
    _owns: PhantomData<(K, V, P)>,
}

/// Builds a [`Duplicate`] registry.
///
/// Defaults: one partition per available core (rounded up to a power of two),
/// [`PartitionBy::Key`], tables that start small and grow, a [`DefaultHashBuilder`] seeded
/// per registry, no listener.
///
/// ```
/// use regent::{Duplicate, PartitionBy};
///
/// let topics = Duplicate::<u64, u64>::builder()
///     .partitions(4)
///     .partition_by(PartitionBy::Pid)
///     .capacity(1_000)
///     .build();
/// topics.register(1.into(), 7, 70);
/// topics.register(2.into(), 7, 71);
/// assert_eq!(topics.dispatch(&7, |_, _| {}), 2);
/// assert_eq!(topics.partitions(), 4);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct DuplicateBuilder<K, V = (), P = Pid, S = DefaultHashBuilder> {
    settings: Settings<K, V, P, S>,
    by: PartitionBy,
}

impl<K, V, P> Duplicate<K, V, P>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
{
    /// An empty registry with the default settings (see [`DuplicateBuilder`]).
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to configure partitions, partitioning, capacity, hasher and listener.
    pub fn builder() -> DuplicateBuilder<K, V, P> {
        DuplicateBuilder {
            settings: Settings::default(),
            by: PartitionBy::Key,
        }
    }
}

impl<K, V, P> Default for Duplicate<K, V, P>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
{
    fn default() -> Self {
        Self::new()
    }
}

settings_setters!(DuplicateBuilder, |this, settings| DuplicateBuilder {
    settings,
    by: this.by,
});

impl<K, V, P, S> DuplicateBuilder<K, V, P, S> {
    /// Whether a key's entries share a partition or spread by pid (see [`PartitionBy`]).
    pub fn partition_by(mut self, by: PartitionBy) -> Self {
        self.by = by;
        self
    }
}

impl<K, V, P, S> DuplicateBuilder<K, V, P, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
    S: BuildHasher,
{
    /// Builds the registry.
    pub fn build(self) -> Duplicate<K, V, P, S> {
        let mut settings = self.settings;
        Duplicate {
            bags: Partitioned::new(settings.partitions, settings.capacity),
            pids: Partitioned::new(settings.partitions, settings.capacity),
            epoch: settings.epoch(),
            by: self.by,
            hasher: settings.hasher,
            entries: Counter::new(),
            monitors: Counter::new(),
            lists: Counter::new(),
            bag_bytes: Counter::new(),
            listener: settings.listener,
            meta: Meta::default(),
            locks: KeyLocks::default(),
            _owns: PhantomData,
        }
    }
}

impl<K, V, P, S> Duplicate<K, V, P, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
    S: BuildHasher,
{
    /// Adds an entry `(pid, value)` under `key`. Never conflicts: the same pid may register
    /// the same key any number of times. O(1) however many entries `key` holds.
    pub fn register(&self, pid: P, key: K, value: V) {
        self.insert(pid, key, value, &self.epoch.pin());
    }

    /// [`register`](Self::register) for a batch of `(pid, key, value)` registrations, in
    /// order. Each is complete, and visible as in `register`, before the next one starts.
    ///
    /// While one entry goes in, the bags and monitors of the next ones are already on
    /// their way into the cache (see
    /// [`Unique::register_many`](crate::Unique::register_many)): for a runtime that
    /// subscribes processes in batches.
    pub fn register_many(&self, entries: impl IntoIterator<Item = (P, K, V)>) {
        batch::for_each_ahead(
            &self.epoch,
            entries,
            |(pid, key, _), guard| {
                let key_hash = mark(self.hasher.hash_one(key));
                let pid_hash = mark(self.hasher.hash_one(pid));
                self.table(key_hash, pid_hash).prefetch(key_hash, guard);
                self.pids.get(pid_hash).prefetch(pid_hash, guard);
            },
            |(pid, ..), guard| self.warm_monitor(*pid, guard),
            |(pid, key, value), guard| self.insert(pid, key, value, guard),
        );
    }

    /// A lock-free probe for `pid`'s monitor, as `keys` makes: it reads the monitor and its
    /// first slot (where the pid is), which a `register` or `process_down` of the pid then
    /// finds in the cache.
    fn warm_monitor(&self, pid: P, guard: &Guard) {
        let hash = mark(self.hasher.hash_one(pid));
        let _ = self
            .pids
            .get(hash)
            .find(hash, |m| m.pid::<V>(guard) == pid, guard);
    }

    /// `register` under `guard`.
    fn insert(&self, pid: P, key: K, value: V, guard: &Guard) {
        let key_hash = mark(self.hasher.hash_one(&key));
        let pid_hash = mark(self.hasher.hash_one(pid));
        // The entry goes into its slot first, unpublished: a monitor names its pid only
        // through its slots, so a fresh one is published with the slot in it.
        let (bag, place) = self.take_place(self.table(key_hash, pid_hash), key_hash, key, guard);
        let (slot, grown) = bag.claim(place, pid, value);
        if grown > 0 {
            self.bag_bytes.add(grown);
        }
        // The pid's lock is held across the publication, so a racing `process_down` of the
        // pid (a runtime bug, but not UB) sees the entry or waits for it. Taking it runs
        // the pids' `Eq`: if that panics, the written entry's place is given back
        // unpublished (held, the bag could never close).
        let unwritten = scopeguard::guard_on_unwind((), |()| {
            // SAFETY: claimed above for `place`, unpublished; retired once, here.
            unsafe {
                let removed = bag.abandon(slot, place);
                self.close_emptied(removed, pid_hash, guard);
                Bag::retire_slot(bag, slot, guard);
            }
        });
        let by_pid = self.pid_hasher(guard);
        let mut lock = self
            .pids
            .get(pid_hash)
            .lock(
                pid_hash,
                |m| m.pid::<V>(guard) == pid,
                Some(SlotMonitor::locked(slot.address())),
                &by_pid,
                guard,
            )
            .expect("a fresh monitor is always placed");
        ScopeGuard::into_inner(unwritten);
        bag.publish(slot, place);
        let fresh = lock.is_fresh();
        if !fresh {
            monitor::add(&mut lock, slot.address(), &self.lists, guard);
        }
        drop(lock);
        self.entries.add(1);
        if fresh {
            self.monitors.add(1);
        }
        if let Some(listener) = &self.listener {
            listener(&Event::Registered {
                key: bag.key(),
                pid,
                value: slot.value(),
            });
        }
    }

    /// Clones of every `(pid, value)` entry under `key` (a snapshot, as `dispatch`).
    #[must_use]
    pub fn lookup<Q>(&self, key: &Q) -> Vec<(P, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let mut out = Vec::new();
        self.dispatch(key, |pid, value| out.push((pid, value.clone())));
        out
    }

    /// Calls `f(pid, &value)` once per entry of a snapshot of `key` taken at the call, in
    /// the caller's thread, holding no lock: writers of `key` never wait for it. Entries
    /// added or removed during the walk may or may not be seen; none is seen twice, and none
    /// is freed while `f` holds it. Returns the number of entries visited.
    ///
    /// An entry removed (or a process reported down) before the call starts is never seen.
    /// If `f` panics the panic propagates and the registry is unaffected.
    pub fn dispatch<Q>(&self, key: &Q, mut f: impl FnMut(P, &V)) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = &self.epoch.pin();
        let mut seen = 0;
        self.for_each_bag(key, guard, |bag| seen += bag.for_each(guard, &mut f));
        seen
    }

    /// [`dispatch`](Self::dispatch) split over `workers` threads (scoped, spawned for the
    /// call; the caller's thread is one of them): each walks a contiguous share of the
    /// key's slots. The same snapshot guarantees hold. Worth it only for keys with hundreds
    /// of thousands of entries and an `f` that does real work: `reports/duplicate.md` has
    /// the measured crossover.
    pub fn dispatch_parallel<Q>(&self, key: &Q, workers: usize, f: impl Fn(P, &V) + Sync) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = &self.epoch.pin();
        let mut pieces: Vec<&[Slot<V, P>]> = Vec::new();
        self.for_each_bag(key, guard, |bag| {
            bag.for_each_segment(guard, |s| pieces.push(s))
        });
        let total: usize = pieces.iter().map(|s| s.len()).sum();
        let workers = workers.clamp(1, total.max(1));
        if workers == 1 {
            return pieces.iter().map(|s| Slot::for_each(s, &f)).sum();
        }
        // Cut the slots into `workers` runs of about equal length, across segments.
        let share = total.div_ceil(workers);
        let mut runs: Vec<Vec<&[Slot<V, P>]>> = vec![Vec::new(); workers];
        let (mut run, mut room) = (0, share);
        for mut piece in pieces {
            while !piece.is_empty() {
                let take = piece.len().min(room);
                runs[run].push(&piece[..take]);
                piece = &piece[take..];
                room -= take;
                if room == 0 && run + 1 < workers {
                    run += 1;
                    room = share;
                }
            }
        }
        let f = &f;
        // The caller's guard stays pinned until every worker has joined, so the slots and
        // values they read stay allocated.
        std::thread::scope(|scope| {
            let mut runs = runs.into_iter();
            let mine = runs.next().unwrap_or_default();
            let handles: Vec<_> = runs
                .map(|run| {
                    scope.spawn(move || run.iter().map(|s| Slot::for_each(s, f)).sum::<usize>())
                })
                .collect();
            let seen: usize = mine.iter().map(|s| Slot::for_each(s, f)).sum();
            seen + handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .sum::<usize>()
        })
    }

    /// Removes every entry `pid` holds under `key`; returns how many. O(entries of `pid`).
    pub fn unregister<Q>(&self, pid: P, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.unregister_where(pid, key, None)
    }

    /// Removes the entries `pid` holds under `key` whose value `pred` accepts; returns how
    /// many. `pred` sees each of them once, before anything is removed, under `pid`'s lock:
    /// it must not change `pid`'s entries. If it panics nothing is removed and the panic
    /// propagates.
    pub fn unregister_match<Q>(&self, pid: P, key: &Q, mut pred: impl FnMut(&V) -> bool) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.unregister_where(pid, key, Some(&mut pred))
    }

    fn unregister_where<Q>(
        &self,
        pid: P,
        key: &Q,
        pred: Option<&mut dyn FnMut(&V) -> bool>,
    ) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = &self.epoch.pin();
        let pid_hash = mark(self.hasher.hash_one(pid));
        let by_pid = self.pid_hasher(guard);
        let Some(mut lock) = self.lock_pid(pid, pid_hash, &by_pid, guard) else {
            return 0;
        };
        // With a predicate, ask it about every candidate before changing anything.
        let chosen = pred.map(|pred| {
            let mut chosen = Vec::new();
            // SAFETY: the pid's own marks, read under its lock and `guard`.
            unsafe {
                monitor::for_each_mark(lock.data(), guard, |m| {
                    // SAFETY: as above.
                    let (bag, _, value) =
                        Slot::<V, P>::entry::<K>(m, guard).expect("a monitored entry is live");
                    if bag.key().borrow() == key && pred(value) {
                        chosen.push(m);
                    }
                });
            }
            chosen
        });
        if chosen.as_ref().is_some_and(Vec::is_empty) {
            return 0;
        }
        let mut removed = Removals::default();
        // Without a predicate, the keys' `Eq` runs while entries are being removed. If it
        // panics, the removals made so far are finished (their marks leave the monitor,
        // their slots are retired, the counts and the listener hear of them), the rest are
        // kept, and the panic goes on from there: a monitor must never name a removed slot.
        let mut eq_panic = None;
        let emptied = monitor::retain(
            &mut lock,
            |m| {
                let wanted = match &chosen {
                    Some(chosen) => chosen.contains(&m),
                    None if eq_panic.is_some() => false,
                    None => {
                        // SAFETY: the pid's own slot, read under its lock and `guard`.
                        let entry = unsafe { Slot::<V, P>::entry::<K>(m, guard) };
                        let same = || entry.is_some_and(|(b, _, _)| b.key().borrow() == key);
                        match std::panic::catch_unwind(AssertUnwindSafe(same)) {
                            Ok(same) => same,
                            Err(panic) => {
                                eq_panic = Some(panic);
                                false
                            }
                        }
                    }
                };
                if !wanted {
                    return true;
                }
                // SAFETY: ours, under our lock; removed once (its mark goes with it).
                removed.push(unsafe { self.remove(Slot::at(m, guard), pid_hash, guard) });
                false
            },
            &self.lists,
            guard,
        );
        drop(lock);
        // SAFETY: removed by us, and out of the monitor now that the lock is released.
        unsafe { removed.retire(guard) };
        self.removed(removed.len(), emptied);
        if let Some(listener) = &self.listener {
            for (bag, _) in removed.iter() {
                listener(&Event::Unregistered {
                    key: bag.key(),
                    pid,
                });
            }
        }
        if let Some(panic) = eq_panic {
            std::panic::resume_unwind(panic);
        }
        removed.len()
    }

    /// Clones of the entries under `key` for which `pred(pid, &value)` holds (Elixir's
    /// `match`). Snapshot semantics as `dispatch`.
    pub fn matching<Q>(&self, key: &Q, mut pred: impl FnMut(P, &V) -> bool) -> Vec<(P, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let mut out = Vec::new();
        self.dispatch(key, |pid, value| {
            if pred(pid, value) {
                out.push((pid, value.clone()));
            }
        });
        out
    }

    /// How many entries under `key` satisfy `pred(pid, &value)`.
    pub fn count_match<Q>(&self, key: &Q, mut pred: impl FnMut(P, &V) -> bool) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut n = 0;
        self.dispatch(key, |pid, value| n += usize::from(pred(pid, value)));
        n
    }

    /// The values `pid` registered under `key`: one probe of the monitor index, then
    /// O(entries of `pid`). Lock-free; weakly consistent while `pid` changes concurrently.
    #[must_use]
    pub fn values<Q>(&self, key: &Q, pid: P) -> Vec<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let mut out = Vec::new();
        self.for_each_of(pid, |bag, value| {
            if bag.key().borrow() == key {
                out.push(value.clone());
            }
        });
        out
    }

    /// The keys `pid` holds, once per entry (a pid that joined a key twice gets it twice).
    /// Lock-free; weakly consistent while `pid` changes concurrently.
    #[must_use]
    pub fn keys(&self, pid: P) -> Vec<K>
    where
        K: Clone,
    {
        let mut out = Vec::new();
        self.for_each_of(pid, |bag, _| out.push(bag.key().clone()));
        out
    }

    /// Collects `f(key, pid, value)` over every entry for which it returns `Some`.
    ///
    /// Weakly consistent: entries present for the whole call are visited exactly once,
    /// entries added or removed meanwhile at most once. `f` runs during the walk, with no
    /// lock held. A table migration under way when the call starts is finished first.
    pub fn select<T>(&self, mut f: impl FnMut(&K, P, &V) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        self.for_each(|k, p, v| out.extend(f(k, p, v)));
        out
    }

    /// Counts the entries for which `f(key, pid, value)` holds (consistency as `select`).
    pub fn count_select(&self, mut f: impl FnMut(&K, P, &V) -> bool) -> usize {
        let mut n = 0;
        self.for_each(|k, p, v| n += usize::from(f(k, p, v)));
        n
    }

    /// The runtime reports that `pid` exited: removes every entry it holds and returns how
    /// many. When this returns, no lookup, dispatch or select that starts afterwards can
    /// return `pid`. O(entries of `pid`).
    pub fn process_down(&self, pid: P) -> usize {
        self.down(pid, &self.epoch.pin())
    }

    /// [`process_down`](Self::process_down) for a batch of exits, in order; returns how
    /// many entries they held in all. Each exit is complete, and visible as in
    /// `process_down`, before the next one starts.
    ///
    /// While one exit is handled, the monitors of the next pids and the slots of their
    /// first entries are already on their way into the cache (see
    /// [`Unique::process_down_many`](crate::Unique::process_down_many)).
    pub fn process_down_many(&self, pids: impl IntoIterator<Item = P>) -> usize {
        batch::exits(
            &self.epoch,
            &self.hasher,
            &self.pids,
            pids,
            |pid, guard| self.warm_monitor(*pid, guard),
            |pid, guard| self.down(pid, guard),
        )
    }

    /// `process_down` under `guard`.
    fn down(&self, pid: P, guard: &Guard) -> usize {
        let pid_hash = mark(self.hasher.hash_one(pid));
        let by_pid = self.pid_hasher(guard);
        let Some(mut lock) = self.lock_pid(pid, pid_hash, &by_pid, guard) else {
            return 0;
        };
        let mut removed = Removals::default();
        monitor::retain(
            &mut lock,
            |m| {
                // SAFETY: the pid's own slot, under its lock; removed once.
                removed.push(unsafe { self.remove(Slot::at(m, guard), pid_hash, guard) });
                false
            },
            &self.lists,
            guard,
        );
        drop(lock);
        // SAFETY: removed by us, and out of the monitor, which `retain` removed.
        unsafe { removed.retire(guard) };
        self.removed(removed.len(), true);
        if let Some(listener) = &self.listener {
            for (bag, _) in removed.iter() {
                listener(&Event::Down {
                    key: bag.key(),
                    pid,
                });
            }
        }
        removed.len()
    }

    /// Sizes and memory (see [`Stats`]); `entry_bytes` counts the bags and the monitors'
    /// lists.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let guard = &self.epoch.pin();
        let lists = self.lists.sum();
        let mut stats = Stats {
            entries: self.entries.sum(),
            monitors: self.monitors.sum(),
            entry_bytes: lists + self.bag_bytes.sum(),
            retired_bytes: reclaim::retired_bytes(),
            drop_panics: reclaim::drop_panics(),
            ..Stats::default()
        };
        self.bags.add_to(&mut stats, guard);
        stats.monitor_bytes = self.pids.add_to(&mut stats, guard) + lists;
        stats
    }

    /// Grows the tables now, in the calling thread, so that `additional` more keys (and as
    /// many more monitored pids) fit without growing again: what
    /// [`capacity`](DuplicateBuilder::capacity) does at build time. Entries under a key
    /// that already has some need no room here (they go in its bag), and with
    /// [`PartitionBy::Pid`] a key takes room in each partition its registering pids hash
    /// to. It also finishes any growth under way, as [`Unique::reserve`] describes, and,
    /// like it, copies the entries that move in the calling thread while every other
    /// operation goes on.
    ///
    /// # Panics
    ///
    /// If tables for that many keys would not fit in memory ("capacity overflow"); like
    /// `Vec`, it aborts if the allocator cannot provide them.
    ///
    /// [`Unique::reserve`]: crate::Unique::reserve
    pub fn reserve(&self, additional: usize) {
        let guard = &self.epoch.pin();
        let by_key = |r: &BagRef<K, V, P>| r.bag().hash();
        self.bags.reserve(additional, &by_key, guard);
        self.pids
            .reserve(additional, &self.pid_hasher(guard), guard);
    }

    /// Finds `key`'s bag in `table` and reserves a place in it, making the bag if there is
    /// none (or only a closing one).
    fn take_place<'g>(
        &self,
        table: &RawTable<BagRef<K, V, P>>,
        hash: u64,
        key: K,
        guard: &'g Guard,
    ) -> (&'g Bag<K, V, P>, Place) {
        let rehash = |r: &BagRef<K, V, P>| r.bag().hash();
        let mut key = Some(key);
        // A bag made here that is not in the table (yet, or because another registrant's
        // won): discarded on the way out, also when the keys' `Eq` panics.
        let mut spare = scopeguard::guard(None::<*mut Bag<K, V, P>>, |spare| {
            if let Some(spare) = spare {
                // SAFETY: never published.
                unsafe { Bag::discard(spare) };
            }
        });
        let found = loop {
            let wanted = |r: &BagRef<K, V, P>| Some(r.bag().key()) == key.as_ref();
            let existing = match table.find(hash, wanted, guard) {
                Some(r) => r.bag(),
                None => {
                    let fresh = *spare
                        .get_or_insert_with(|| Bag::new(hash, key.take().expect("moved once")));
                    let same =
                        |a: &BagRef<K, V, P>, b: &BagRef<K, V, P>| a.bag().key() == b.bag().key();
                    match table.insert(hash, BagRef(fresh), same, &rehash, guard) {
                        Ok(r) => {
                            *spare = None;
                            self.bag_bytes.add(r.bag().bytes());
                            // Its creator's reservation comes with it.
                            return (r.bag(), Place::FIRST);
                        }
                        Err((_, theirs)) => theirs.bag(),
                    }
                }
            };
            if let Some(place) = existing.reserve() {
                break (existing, place);
            }
            // It emptied and is closing: help take it out, then make a new one.
            table.remove(hash, |r| ptr::eq(r.0, existing), &rehash, guard);
        };
        drop(spare);
        // The caller's copy of a key that has a bag already. A panic of its `Drop` must not
        // unwind past the place reserved above, which would then never be filled (the bag
        // could never close): it is contained, as in reclamation.
        if let Some(key) = key {
            if core::mem::needs_drop::<K>() {
                reclaim::contain(move || drop(key));
            }
        }
        found
    }

    /// Removes the entry in `slot`, and its bag from its table if that emptied it. Returns
    /// the bag and the slot, for the caller to retire once the slot is out of the pid's
    /// monitor (`Removals::retire`).
    ///
    /// # Safety
    ///
    /// As `Bag::remove`; the caller also removes the slot's mark from the pid's monitor.
    unsafe fn remove<'g>(
        &self,
        slot: &'g Slot<V, P>,
        pid_hash: u64,
        guard: &'g Guard,
    ) -> RemovedSlot<'g, K, V, P> {
        // SAFETY: as the caller guarantees.
        let removed = unsafe { Bag::remove(slot) };
        let bag = removed.bag;
        // SAFETY: `removed` is the removal just made.
        unsafe { self.close_emptied(removed, pid_hash, guard) };
        (bag, slot)
    }

    /// Takes the bag of a removal out of its table and retires it, if the removal closed it.
    ///
    /// # Safety
    ///
    /// `removed` comes from a `Bag::remove` or `Bag::abandon` just made, and is handled once.
    unsafe fn close_emptied(&self, removed: Removed<'_, K, V, P>, pid_hash: u64, guard: &Guard) {
        let bag = removed.bag;
        if removed.closed {
            let rehash = |r: &BagRef<K, V, P>| r.bag().hash();
            self.table(bag.hash(), pid_hash).remove(
                bag.hash(),
                |r| ptr::eq(r.0, bag),
                &rehash,
                guard,
            );
            self.bag_bytes.sub(bag.bytes());
            // SAFETY: closed by us and out of its table (by us or by a registrant that met
            // it closed): retired once, here. The removed slots' pending reclamations keep
            // it allocated for the monitors that still name them.
            unsafe { Bag::retire(bag, guard) };
        }
    }

    /// Calls `f` with each bag of `key`: one under `PartitionBy::Key`, up to one per
    /// partition under `PartitionBy::Pid`.
    fn for_each_bag<'g, Q>(&self, key: &Q, guard: &'g Guard, mut f: impl FnMut(&'g Bag<K, V, P>))
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = mark(self.hasher.hash_one(key));
        let wanted = |r: &BagRef<K, V, P>| r.bag().key().borrow() == key;
        match self.by {
            PartitionBy::Key => {
                if let Some(r) = self.bags.get(hash).find(hash, wanted, guard) {
                    f(r.bag());
                }
            }
            PartitionBy::Pid => {
                for table in self.bags.iter() {
                    if let Some(r) = table.find(hash, wanted, guard) {
                        f(r.bag());
                    }
                }
            }
        }
    }

    /// Calls `f(bag, value)` for each live entry of `pid`, through its monitor.
    fn for_each_of(&self, pid: P, mut f: impl FnMut(&Bag<K, V, P>, &V)) {
        let guard = &self.epoch.pin();
        let hash = mark(self.hasher.hash_one(pid));
        let found = self
            .pids
            .get(hash)
            .find(hash, |m| m.pid::<V>(guard) == pid, guard);
        let Some(monitor) = found else {
            return;
        };
        // SAFETY: read under `guard`, still pinned.
        unsafe {
            monitor::for_each_mark(monitor.data(), guard, |m| {
                // SAFETY: a mark read from the pid's monitor under `guard`.
                if let Some((bag, owner, value)) = Slot::entry(m, guard) {
                    if owner == pid {
                        f(bag, value);
                    }
                }
            });
        }
    }

    fn for_each(&self, mut f: impl FnMut(&K, P, &V)) {
        let guard = &self.epoch.pin();
        let rehash = |r: &BagRef<K, V, P>| r.bag().hash();
        let mut records = Vec::new();
        for table in self.bags.iter() {
            records.clear();
            // Bags are never updated in place, so the walk sees each record once.
            table.for_each(&rehash, guard, &mut records);
            for r in &records {
                let bag = r.bag();
                bag.for_each(guard, |pid, value| f(bag.key(), pid, value));
            }
        }
    }

    /// The key table `key_hash`'s bag lives in, for an entry of the pid with `pid_hash`.
    #[inline]
    fn table(&self, key_hash: u64, pid_hash: u64) -> &RawTable<BagRef<K, V, P>> {
        match self.by {
            PartitionBy::Key => self.bags.get(key_hash),
            PartitionBy::Pid => self.bags.get(pid_hash),
        }
    }

    fn lock_pid<'t, 'g, R: Fn(&SlotMonitor<P>) -> u64>(
        &'t self,
        pid: P,
        hash: u64,
        by_pid: &'t R,
        guard: &'g Guard,
    ) -> Option<monitor::PidLock<'t, 'g, SlotMonitor<P>, R>> {
        self.pids
            .get(hash)
            .lock(hash, |m| m.pid::<V>(guard) == pid, None, by_pid, guard)
    }

    /// A monitor's hash, for migrations of the monitor index (the pid is read from its
    /// slots under `guard`).
    fn pid_hasher<'a>(&'a self, guard: &'a Guard) -> impl Fn(&SlotMonitor<P>) -> u64 + 'a {
        move |m| mark(self.hasher.hash_one(m.pid::<V>(guard)))
    }
}

/// The entries a call removed under a pid's lock, with their bags: their slots are retired
/// after the lock is released, when the monitor no longer names them (`Bag::retire_slot`).
/// The first is kept inline, so removing a pid's one entry allocates nothing.
struct Removals<'g, K, V, P> {
    first: Option<RemovedSlot<'g, K, V, P>>,
    more: Vec<RemovedSlot<'g, K, V, P>>,
}

/// A removed entry's bag and slot.
type RemovedSlot<'g, K, V, P> = (&'g Bag<K, V, P>, &'g Slot<V, P>);

impl<K, V, P> Default for Removals<'_, K, V, P> {
    fn default() -> Self {
        Removals {
            first: None,
            more: Vec::new(),
        }
    }
}

impl<'g, K, V, P> Removals<'g, K, V, P>
where
    K: 'static,
    V: 'static,
    P: Copy + 'static,
{
    fn push(&mut self, removed: RemovedSlot<'g, K, V, P>) {
        if self.first.is_none() {
            self.first = Some(removed);
        } else {
            self.more.push(removed);
        }
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }

    fn iter(&self) -> impl Iterator<Item = RemovedSlot<'g, K, V, P>> + '_ {
        self.first.iter().chain(&self.more).copied()
    }

    /// Hands every slot to the collector.
    ///
    /// # Safety
    ///
    /// Each was removed by `Duplicate::remove` and its mark is out of the pid's monitor,
    /// whose lock is released; called once.
    unsafe fn retire(&self, guard: &Guard) {
        for (bag, slot) in self.iter() {
            // SAFETY: as the caller guarantees.
            unsafe { Bag::retire_slot(bag, slot, guard) };
        }
    }
}

impl<K, V, P, S> Duplicate<K, V, P, S> {
    /// Live entries.
    #[must_use]
    pub fn count(&self) -> usize {
        self.entries.sum()
    }

    /// Whether the registry holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// Processes that hold at least one entry.
    #[must_use]
    pub fn monitors(&self) -> usize {
        self.monitors.sum()
    }

    /// The number of partitions.
    #[must_use]
    pub fn partitions(&self) -> usize {
        self.bags.len()
    }

    /// How entries are spread over partitions.
    #[must_use]
    pub fn partition_by(&self) -> PartitionBy {
        self.by
    }

    fn removed(&self, entries: usize, monitor_gone: bool) {
        self.entries.sub(entries);
        if monitor_gone {
            self.monitors.sub(1);
        }
    }
}

meta_and_lock!(Duplicate);

impl<K, V, P, S> Drop for Duplicate<K, V, P, S> {
    fn drop(&mut self) {
        for table in self.bags.iter_mut() {
            // SAFETY: `&mut self`: no other thread is inside. Each bag drops its live
            // values once; removed ones belong to their pending reclamations.
            table.drain(|r| unsafe { Bag::drop_entries((*r).0) });
        }
        monitor::free_all(&mut self.pids);
    }
}

impl<K, V, P, S> fmt::Debug for Duplicate<K, V, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Duplicate")
            .field("entries", &self.entries.sum())
            .field("monitors", &self.monitors.sum())
            .field("partitions", &self.partitions())
            .field("partition_by", &self.by)
            .finish_non_exhaustive()
    }
}

impl<K, V, P, S: fmt::Debug> fmt::Debug for DuplicateBuilder<K, V, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("DuplicateBuilder");
        self.settings.debug_fields(&mut d);
        d.field("partition_by", &self.by).finish()
    }
}
