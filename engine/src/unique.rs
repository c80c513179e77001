//! Unique registries: at most one process per key.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::ptr;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crossbeam_epoch::Guard;
use crossbeam_utils::{Backoff, CachePadded};
use scopeguard::ScopeGuard;

use crate::batch;
use crate::counter::Counter;
use crate::entry::{Entry, Monitor, Value};
use crate::error::{AlreadyRegistered, TryRegisterError};
use crate::event::{Event, Listener};
use crate::keylock::KeyLocks;
use crate::limit::Limit;
use crate::meta::{meta_and_lock, Meta};
use crate::monitor;
use crate::partition::Partitioned;
use crate::pid::{Pid, ProcessId};
use crate::raw::{mark, retire_record, LockWord, Started};
use crate::reclaim::{self, Epoch};
use crate::settings::{settings_setters, Settings};
use crate::stats::Stats;
use crate::sync::{spin, AtomicUsize, Ordering};
use crate::waiters::Waiters;
use crate::{DefaultHashBuilder, Existing, Mailbox, SendError};

/// A registry in which each key is held by at most one process.
///
/// Lookups (`lookup`, `whereis`, `select`) take no lock and never wait for a writer.
/// `register` is an atomic insert-if-absent; the loser gets the key and value back with the
/// current owner. Every entry is also indexed by its pid, so [`process_down`] removes all
/// of a process's names in O(its names), linearizably: to readers they all go at one
/// instant, before it returns (below, "Exits are atomic").
///
/// ```
/// use regent::{Pid, Unique};
///
/// let names: Unique<String, &str> = Unique::new();
/// let (alice, bob) = (Pid::new(1), Pid::new(2));
///
/// names.register(alice, "room:lobby".to_string(), "lobby").unwrap();
/// let taken = names.register(bob, "room:lobby".to_string(), "mine").unwrap_err();
/// assert_eq!(taken.owner, alice);
///
/// assert_eq!(names.whereis("room:lobby"), Some(alice));
/// assert_eq!(names.process_down(alice), 1);
/// assert_eq!(names.whereis("room:lobby"), None);
/// ```
///
/// Keys' and pids' `Hash` and `Eq` should not panic. A panic in a call's own hashing or
/// comparisons reaches its caller and leaves the registry consistent (as it was, except
/// that an exit stops part-way); one in a table migration, which rehashes the stored keys
/// and pids, aborts the process. The crate docs say more ("Panics in `Hash` and `Eq`").
///
/// # Exits are atomic
///
/// [`process_down`] takes a pid's names out of the table one at a time, but no reader can
/// tell: from one instant before the first removal, every lookup by key (`lookup`, `whereis`,
/// `contains_key`, `send`, `await_registered`, the batch and [`pin`](Unique::pin)ned
/// forms) and [`keys`](Unique::keys) answers as if all of them were gone, and a
/// registration of one of them is not refused in the exited pid's name: it waits for the
/// exit to take that entry out, and then goes in. So once any thread has seen one of the
/// names free, no thread sees the pid hold another, and no registration names it as the
/// owner. (Elixir's cleanup runs later, in another process, and can hand out the dead pid
/// meanwhile.) [`select`](Unique::select) and [`count_select`](Unique::count_select) are
/// weakly consistent walks, not snapshots: one that overlaps an exit may still visit the
/// names not yet removed. [`count`](Unique::count) and [`monitors`](Unique::monitors) are
/// settled when the exit returns.
///
/// How: before its first removal, the exit of a pid with more than one name adds itself
/// to a registry-wide count of exits under way and then marks the pid's monitor down,
/// both `SeqCst`; after its last removal and the monitor's, it takes itself off the count.
/// A lookup loads the count (`SeqCst`) before it probes the table. If the count was zero,
/// every exit that had marked its pid by then had also finished its removals, which the
/// probe sees; if not, and the probe finds an entry, the lookup checks that entry's pid in
/// the monitor index and treats it as gone if the monitor is marked down or is no longer
/// there (a monitor is placed before its pid's first entry and removed after the last).
///
/// What it costs: one load of a counter that only such exits write, per lookup; while an
/// exit of a pid with several names is under way, one more probe (of the monitor index)
/// per lookup that finds an entry; and, for a registration of a name whose holder is
/// exiting, a wait as long as the rest of that exit's removals, the one place where a
/// registration waits for another thread. A pid with one name, the common case, needs
/// none of it: its exit is a single removal, and it neither marks nor counts.
/// ([`Duplicate`](crate::Duplicate) exits are atomic per entry only: see its docs.)
///
/// # Values that change
///
/// A table grows by copying its entries into a larger array while readers may still be
/// using the old copies (a `send`, a listener, a selector), so the registry keeps each
/// value where both copies reach the same one:
///
/// * a value with drop glue (a channel sender, a `String`, a `Mutex<Vec<M>>` mailbox)
///   lives in a box of its own, and entries carry its pointer: changes through `&V` are
///   never lost and never touch freed memory;
/// * a value without drop glue (integers, ids, `Copy` handles) is stored inline, with no
///   allocation.
///
/// The one case no type check can tell apart: state *without* drop glue changed through
/// `&V` (a bare atomic counter, a `Mutex<u64>`) may lose a change made while its entry is
/// being copied. Keep such state behind an `Arc`, or replace the value with
/// [`update_value`](Unique::update_value), which is exact.
///
/// Keys move the same way and stay inline (a boxed `String` key would cost a lookup a
/// second cache miss). A key must not change while it is registered, as in any map; here
/// that includes state outside its `Hash` and `Eq` that it changes through `&K`.
///
/// # Memory and allocation failure
///
/// Entries live inline in the tables' arrays; a registration allocates only when a table
/// grows (a new array, twice the live entries), when a pid takes its second or a later
/// key (its key list), or when the value has drop glue (its box, above). If the global
/// allocator fails, regent calls [`std::alloc::handle_alloc_error`], which aborts the
/// process, as `Vec` and `Box` do: no call returns with the registry half-changed. To bound memory instead, build with
/// [`max_entries`](UniqueBuilder::max_entries) and use
/// [`try_register`](Unique::try_register), which answers `Full` before allocating, and
/// watch [`stats`](Unique::stats). Sizes whose byte count would overflow `usize` panic.
///
/// [`process_down`]: Unique::process_down
pub struct Unique<K, V = (), P = Pid, S = DefaultHashBuilder> {
    /// Entries, inline, by hash of key.
    names: Partitioned<Entry<K, V, P>>,
    /// One monitor per pid that holds entries: the marks of its keys.
    pids: Partitioned<Monitor<P>>,
    hasher: S,
    entries: Counter,
    monitors: Counter,
    /// Bytes of the monitors' key lists (pids holding more than one key).
    lists: Counter,
    limit: Option<Limit>,
    listener: Option<Listener<K, V, P>>,
    epoch: Epoch,
    /// `await_registered` callers.
    waiters: Waiters,
    /// Serializes `give_away`, the one call that holds two pids' locks.
    handoff: Mutex<()>,
    /// Exits under way of pids that hold more than one name (the type's docs, "Exits are
    /// atomic"): while it is not zero, a reader that finds an entry checks its pid.
    exiting: CachePadded<AtomicUsize>,
    meta: Meta,
    locks: KeyLocks<K>,
    /// The registry owns its entries: Send and Sync follow `K`, `V` and `P`.
    _owns: PhantomData<Entry<K, V, P>>,
}

/// Why `insert` did not insert.
enum Rejected<'g, K, V, P> {
    /// At `max_entries`: the key and value come back.
    Full(K, V),
    /// The key is taken: the key and value come back with the holder's entry.
    Taken(K, V, &'g Entry<K, V, P>),
}

/// Builds a [`Unique`] registry.
///
/// Defaults: one partition per available core (rounded up to a power of two), tables that
/// start small and grow, no entry limit, a [`DefaultHashBuilder`] seeded per registry, no
/// listener.
///
/// ```
/// use regent::{Event, Unique};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let downs = Arc::new(AtomicUsize::new(0));
/// let seen = downs.clone();
/// let names = Unique::<u64, u64>::builder()
///     .partitions(8)
///     .capacity(1_000)
///     .listener(move |e: &Event<'_, u64, u64, regent::Pid>| {
///         if let Event::Down { .. } = e {
///             seen.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build();
/// names.register(1.into(), 10, 100).unwrap();
/// names.process_down(1.into());
/// assert_eq!(downs.load(Ordering::Relaxed), 1);
/// assert_eq!(names.partitions(), 8);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct UniqueBuilder<K, V = (), P = Pid, S = DefaultHashBuilder> {
    settings: Settings<K, V, P, S>,
    max_entries: Option<usize>,
}

impl<K, V, P> Unique<K, V, P>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
{
    /// An empty registry with the default settings (see [`UniqueBuilder`]).
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder to configure partitions, capacity, limit, hasher and listener.
    pub fn builder() -> UniqueBuilder<K, V, P> {
        UniqueBuilder {
            settings: Settings::default(),
            max_entries: None,
        }
    }
}

impl<K, V, P> Default for Unique<K, V, P>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
{
    fn default() -> Self {
        Self::new()
    }
}

settings_setters!(UniqueBuilder, |this, settings| UniqueBuilder {
    settings,
    max_entries: this.max_entries,
});

impl<K, V, P, S> UniqueBuilder<K, V, P, S> {
    /// Limits the registry to `n` live entries: [`Unique::try_register`] reports the limit
    /// with [`TryRegisterError::Full`], and [`Unique::register`] panics at it.
    ///
    /// The limit is exact: `Full` means the registry held `n` entries at an instant during
    /// the call, never that a removal which already took its entry out had yet to finish.
    /// It costs a limited registry a shared pass on a striped lock per registration and
    /// removal (lookups pay nothing), and a refused registration a short wait for the
    /// registrations and removals already in flight. Without a limit there is no lock.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = Some(n);
        self
    }
}

impl<K, V, P, S> UniqueBuilder<K, V, P, S>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    P: ProcessId,
    S: BuildHasher,
{
    /// Builds the registry.
    pub fn build(self) -> Unique<K, V, P, S> {
        let mut settings = self.settings;
        Unique {
            names: Partitioned::new(settings.partitions, settings.capacity),
            pids: Partitioned::new(settings.partitions, settings.capacity),
            epoch: settings.epoch(),
            hasher: settings.hasher,
            entries: Counter::new(),
            monitors: Counter::new(),
            lists: Counter::new(),
            limit: self.max_entries.map(Limit::new),
            listener: settings.listener,
            waiters: Waiters::default(),
            handoff: Mutex::new(()),
            exiting: CachePadded::new(AtomicUsize::new(0)),
            meta: Meta::default(),
            locks: KeyLocks::default(),
            _owns: PhantomData,
        }
    }
}

impl<K, V, P, S> Unique<K, V, P, S>
where
    K: Hash + Eq,
    P: ProcessId,
    S: BuildHasher,
{
    /// Registers `key` for `pid` with `value`, if no process holds `key`.
    ///
    /// The check and the insert are one atomic step: of several racing registrations of a
    /// key exactly one wins, and every loser learns the winner. A key already taken is
    /// refused by a lock-free lookup, without touching `pid`'s monitor, so a refusal costs
    /// about what a lookup does.
    ///
    /// # Errors
    ///
    /// [`AlreadyRegistered`] if another process (or `pid` itself) holds `key`: nothing
    /// changed, and the error hands back `key` and `value` with the current owner.
    ///
    /// # Panics
    ///
    /// If the registry was built with `max_entries` and is full, like `Vec::push` at
    /// capacity overflow; use [`try_register`](Self::try_register) to handle the limit.
    pub fn register(&self, pid: P, key: K, value: V) -> Result<(), AlreadyRegistered<P, K, V>> {
        match self.try_register(pid, key, value) {
            Ok(()) => Ok(()),
            Err(TryRegisterError::Taken(e)) => Err(e),
            Err(TryRegisterError::Full { .. }) => {
                panic!("registry is full: max_entries reached (use try_register to handle it)")
            }
        }
    }

    /// [`register`](Self::register) for a batch of `(pid, key, value)` registrations, in
    /// order; returns the refused ones, in order (an empty `Vec` when all went in). Each
    /// registration is complete, and visible as in `register`, before the next one starts.
    ///
    /// A runtime that starts processes in batches (a pool, a supervisor's children, a node
    /// rejoining) saves most of the cache misses' wait: while one registration goes in,
    /// the name groups and monitor groups of the next ones are already on their way into
    /// the cache, as in [`whereis_many`](Self::whereis_many). `reports/compare.md` measures
    /// it against single calls.
    ///
    /// # Panics
    ///
    /// At the `max_entries` limit, as [`register`](Self::register): the registrations
    /// before the one that met the limit stay.
    pub fn register_many(
        &self,
        entries: impl IntoIterator<Item = (P, K, V)>,
    ) -> Vec<AlreadyRegistered<P, K, V>> {
        let mut refused = Vec::new();
        batch::for_each_ahead(
            &self.epoch,
            entries,
            |(pid, key, _), guard| {
                let key_mark = mark(self.hasher.hash_one(key));
                let pid_mark = mark(self.hasher.hash_one(pid));
                self.names.get(key_mark).prefetch(key_mark, guard);
                self.pids.get(pid_mark).prefetch(pid_mark, guard);
            },
            |_, _| {},
            |(pid, key, value), guard| match self.insert(pid, key, value, guard) {
                Ok(_) => {}
                Err(Rejected::Taken(key, value, holder)) => refused.push(AlreadyRegistered {
                    owner: holder.pid,
                    key,
                    value,
                }),
                Err(Rejected::Full(..)) => {
                    panic!("registry is full: max_entries reached (use try_register to handle it)")
                }
            },
        );
        refused
    }

    /// Like [`register`](Self::register), but reports a full registry instead of panicking.
    ///
    /// # Errors
    ///
    /// [`TryRegisterError::Taken`] as `register`'s error; [`TryRegisterError::Full`] if the
    /// registry holds `max_entries` entries: nothing is registered, no monitor is left
    /// behind, and `key` and `value` come back. The limit is checked first, so at the
    /// limit a taken key is `Full` too.
    pub fn try_register(&self, pid: P, key: K, value: V) -> Result<(), TryRegisterError<P, K, V>> {
        let guard = &self.epoch.pin();
        match self.insert(pid, key, value, guard) {
            Ok(_) => Ok(()),
            Err(Rejected::Full(key, value)) => Err(TryRegisterError::Full { key, value }),
            Err(Rejected::Taken(key, value, holder)) => {
                Err(TryRegisterError::Taken(AlreadyRegistered {
                    owner: holder.pid,
                    key,
                    value,
                }))
            }
        }
    }

    /// The find-or-start pattern in one atomic step: registers `key` for `pid` with
    /// `value` if no process holds it, else returns the owner with a clone of its value
    /// (gproc's `reg_or_locate`). `value` is dropped when the key is taken.
    ///
    /// # Errors
    ///
    /// [`Existing`] with the current owner and its value when `key` is taken.
    ///
    /// # Panics
    ///
    /// At the `max_entries` limit, as [`register`](Self::register).
    pub fn register_or_lookup(&self, pid: P, key: K, value: V) -> Result<(), Existing<P, V>>
    where
        V: Clone,
    {
        let guard = &self.epoch.pin();
        match self.insert(pid, key, value, guard) {
            Ok(_) => Ok(()),
            Err(Rejected::Taken(_, _, holder)) => Err(Existing {
                owner: holder.pid,
                value: V::clone(&holder.value),
            }),
            Err(Rejected::Full(..)) => {
                panic!("registry is full: max_entries reached (use try_register to handle it)")
            }
        }
    }

    /// Inserts the entry and its monitor mark, or says why not; notifies the listener and
    /// `await_registered` waiters.
    fn insert<'g>(
        &self,
        pid: P,
        key: K,
        value: V,
        guard: &'g Guard,
    ) -> Result<&'g Entry<K, V, P>, Rejected<'g, K, V, P>> {
        // Held until the entry is in the table or the place is given back (`limit` docs).
        let place = match self.limit.as_ref().map(Limit::place) {
            Some(None) => return Err(Rejected::Full(key, value)),
            place => place.flatten(),
        };
        let key_mark = mark(self.hasher.hash_one(&key));
        let pid_mark = mark(self.hasher.hash_one(pid));
        // Start both tables' misses at once: the name's group is read first, the
        // monitor's right after.
        let names = self.names.get(key_mark);
        names.prefetch(key_mark, guard);
        self.pids.get(pid_mark).prefetch(pid_mark, guard);
        let (by_key, by_pid) = (self.key_hasher(), self.pid_hasher());
        let (mut key, mut value) = (key, value);
        let backoff = Backoff::new();
        loop {
            // A taken name is refused here, lock-free, as a lookup would see it: the refusal
            // takes effect at this load, when `holder` held the key. Without this, every
            // refused registration would add its pid's monitor and then remove it, leaving a
            // tombstone in the monitor index.
            let exiting = self.exits_under_way();
            if let Some(holder) = names.find(key_mark, |e| e.key == key, guard) {
                if self.live(holder, exiting, guard).is_some() {
                    return Err(Rejected::Taken(key, value, holder));
                }
                // The holder's exit has started: the name is free to every reader, and the
                // exit takes the entry out in a moment.
                spin(&backoff);
                continue;
            }
            let fresh = Monitor::locked(pid, monitor::first(key_mark));
            let lock = self
                .lock_pid_at(pid, pid_mark, Some(fresh), &by_pid, guard)
                .expect("a fresh monitor is always placed");
            // A panic in the keys' `Eq` while inserting reaches the caller with no entry
            // made: a monitor made for it goes too.
            let lock = scopeguard::guard_on_unwind(lock, |mut lock| {
                if lock.is_fresh() {
                    monitor::clear(&mut lock, &self.lists, guard);
                }
            });
            let entry = Entry::new(key, pid, value);
            let inserted = names.insert(key_mark, entry, |a, b| a.key == b.key, &by_key, guard);
            let mut lock = ScopeGuard::into_inner(lock);
            match inserted {
                Ok(entry) => {
                    if !lock.is_fresh() {
                        monitor::add(&mut lock, key_mark, &self.lists, guard);
                    }
                    let fresh = lock.is_fresh();
                    drop(lock);
                    self.entries.add(1);
                    if fresh {
                        self.monitors.add(1);
                    }
                    if let Some(place) = place {
                        place.keep();
                    }
                    self.waiters.notify();
                    if let Some(listener) = &self.listener {
                        listener(&Event::Registered {
                            key: &entry.key,
                            pid,
                            value: &*entry.value,
                        });
                    }
                    return Ok(entry);
                }
                Err((entry, _)) => {
                    if lock.is_fresh() {
                        // The monitor was made for this registration: it goes with it.
                        monitor::clear(&mut lock, &self.lists, guard);
                    }
                    drop(lock);
                    // The key was taken since the look above: look again, which refuses
                    // it there (or waits out its holder's exit).
                    (key, value) = (entry.key, entry.value.into_inner());
                }
            }
        }
    }

    /// Hands `key` from `pid` to `new_pid` atomically (gproc's `give_away`): lookups see
    /// one owner or the other, never neither, and the entry moves between the two pids'
    /// monitors in the same step. Returns false, changing nothing, unless `pid` owns `key`.
    ///
    /// Only the owner can give a name away; the listener sees `Unregistered` for `pid` then
    /// `Registered` for `new_pid`. Giving a name to its own owner is a no-op that returns
    /// true.
    pub fn give_away<Q>(&self, pid: P, key: &Q, new_pid: P) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = &self.epoch.pin();
        let by_pid = self.pid_hasher();
        // Two pids' locks are held at once only here, one hand-off at a time: no cycle.
        let handoff = self.handoff.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(mut from) = self.lock_pid(pid, None, &by_pid, guard) else {
            return false;
        };
        let key_mark = mark(self.hasher.hash_one(key));
        let owned = |e: &Entry<K, V, P>| e.pid == pid && e.key.borrow() == key;
        if self
            .names
            .get(key_mark)
            .find(key_mark, owned, guard)
            .is_none()
        {
            return false;
        }
        if pid == new_pid {
            return true;
        }
        let fresh = Monitor::locked(new_pid, monitor::first(key_mark));
        let to = self
            .lock_pid(new_pid, Some(fresh), &by_pid, guard)
            .expect("a fresh monitor is always placed");
        // As in `insert`: the update below runs the keys' and pids' `Eq`, and if that panics
        // the monitor made for the hand-off goes too.
        let to = scopeguard::guard_on_unwind(to, |mut to| {
            if to.is_fresh() {
                monitor::clear(&mut to, &self.lists, guard);
            }
        });
        let make = move |old: &Entry<K, V, P>| Entry {
            // SAFETY: the old record is never dropped (nor retired): its key and value move
            // into the replacement, which owns them from now on.
            key: unsafe { ptr::read(&old.key) },
            pid: new_pid,
            // SAFETY: as above.
            value: unsafe { ptr::read(&old.value) },
        };
        let (moved, _) = self
            .names
            .get(key_mark)
            .update(key_mark, owned, make, &self.key_hasher(), guard)
            .expect("the owner's lock keeps its entry in place");
        let mut to = ScopeGuard::into_inner(to);
        let emptied = monitor::remove(&mut from, key_mark, &self.lists, guard);
        if !to.is_fresh() {
            monitor::add(&mut to, key_mark, &self.lists, guard);
        }
        let gained = to.is_fresh();
        // Released before the listener runs: it may call back into the registry, even
        // `give_away`.
        drop((from, to, handoff));
        if emptied {
            self.monitors.sub(1);
        }
        if gained {
            self.monitors.add(1);
        }
        if let Some(listener) = &self.listener {
            listener(&Event::Unregistered {
                key: &moved.key,
                pid,
            });
            listener(&Event::Registered {
                key: &moved.key,
                pid: new_pid,
                value: &*moved.value,
            });
        }
        true
    }

    /// Sends `msg` to the mailbox registered under `key` (Elixir's `{:via, Registry, ...}`
    /// naming): a lookup and a delivery, with no lock held. Returns the pid it went to.
    ///
    /// # Errors
    ///
    /// [`SendError::NotRegistered`] if no process holds `key` (Elixir raises `badarg`), and
    /// [`SendError::Rejected`] if the mailbox refused the message (closed or full); both
    /// hand `msg` back.
    pub fn send<Q, M>(&self, key: &Q, msg: M) -> Result<P, SendError<M>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Mailbox<M>,
    {
        let guard = &self.epoch.pin();
        let Some(entry) = self.find(key, guard) else {
            return Err(SendError::NotRegistered(msg));
        };
        entry.value.send(msg).map_err(SendError::Rejected)?;
        Ok(entry.pid)
    }

    /// Waits until some process holds `key` and returns it, or `None` after `timeout`
    /// (gproc's `await`). Returns at once if `key` is registered.
    ///
    /// Registrations wake waiters only when there are some: `register` pays one fence
    /// otherwise.
    #[must_use]
    pub fn await_registered<Q>(&self, key: &Q, timeout: Duration) -> Option<P>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.waiters.wait(timeout, || self.whereis(key))
    }

    /// [`await_registered`](Self::await_registered) for async code: waits without blocking
    /// the executor's thread.
    #[cfg(feature = "tokio")]
    pub async fn await_registered_async<Q>(&self, key: &Q, timeout: Duration) -> Option<P>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.waiters.wait_async(timeout, || self.whereis(key)).await
    }

    /// Pins the epoch once for a run of lookups: the returned view answers `whereis` and
    /// `get` without pinning again.
    ///
    /// Every pin (here and inside each single-key call) is a full memory barrier, and a
    /// barrier waits for the cache misses issued before it. So consecutive `whereis` calls
    /// on a table far larger than the caches each pay one whole DRAM miss, one after the
    /// other; under one pin, the misses of independent lookups overlap. `get` also lends
    /// the value itself, with no clone.
    ///
    /// While the view lives, nothing removed from any regent registry (by any thread) is
    /// freed, so keep it for a bounded run of reads (one message, one scheduling
    /// quantum), not for the life of a thread. The view is not `Send`: it holds this
    /// thread's pin.
    ///
    /// ```
    /// use regent::{Pid, Unique};
    ///
    /// let names: Unique<u64, String> = Unique::new();
    /// names.register(Pid::new(1), 7, "worker".into()).unwrap();
    /// let pinned = names.pin();
    /// assert_eq!(pinned.whereis(&7), Some(Pid::new(1)));
    /// assert_eq!(pinned.get(&7).map(|(_, v)| v.as_str()), Some("worker"));
    /// assert_eq!(pinned.get(&8), None);
    /// ```
    #[must_use]
    pub fn pin(&self) -> Pinned<'_, K, V, P, S> {
        Pinned {
            registry: self,
            guard: self.epoch.pin(),
        }
    }

    /// The owner of `key` and a clone of its value.
    #[must_use]
    pub fn lookup<Q>(&self, key: &Q) -> Option<(P, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let guard = &self.epoch.pin();
        self.find(key, guard).map(|e| (e.pid, V::clone(&e.value)))
    }

    /// The owner of `key`.
    #[must_use]
    pub fn whereis<Q>(&self, key: &Q) -> Option<P>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = &self.epoch.pin();
        self.find(key, guard).map(|e| e.pid)
    }

    /// [`whereis`](Self::whereis) for a batch of keys, in order: one epoch pin for the
    /// batch, and each key's group is prefetched a few keys ahead of its probe, so the
    /// cache misses of independent lookups overlap instead of queueing. At table sizes far
    /// beyond the caches this is several times faster than one `whereis` per key
    /// (`reports/compare.md` measures it).
    #[must_use]
    pub fn whereis_many<'q, Q>(&self, keys: impl IntoIterator<Item = &'q Q>) -> Vec<Option<P>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'q,
    {
        self.find_many(keys, |e| e.pid)
    }

    /// [`lookup`](Self::lookup) for a batch of keys, in order, prefetched as
    /// [`whereis_many`](Self::whereis_many).
    #[must_use]
    pub fn lookup_many<'q, Q>(&self, keys: impl IntoIterator<Item = &'q Q>) -> Vec<Option<(P, V)>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'q,
        V: Clone,
    {
        self.find_many(keys, |e| (e.pid, V::clone(&e.value)))
    }

    fn find_many<'q, Q, T>(
        &self,
        keys: impl IntoIterator<Item = &'q Q>,
        mut out: impl FnMut(&Entry<K, V, P>) -> T,
    ) -> Vec<Option<T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized + 'q,
    {
        /// Lookups in flight: enough to cover a miss's latency with the probes between.
        const AHEAD: usize = 16;
        let guard = &self.epoch.pin();
        let keys = keys.into_iter();
        let mut found = Vec::with_capacity(keys.size_hint().0);
        // Key `i` is hashed, its partition's array loaded and its home group prefetched;
        // key `i - AHEAD` is probed from that array (`raw::Started`), by then in the cache.
        let mut ring: [Option<(u64, &Q, Started<'_, _>)>; AHEAD] = [None; AHEAD];
        // `AHEAD` `None`s after the keys drain the ring, oldest first.
        let tail = core::iter::repeat_n(None, AHEAD);
        for (i, key) in keys.map(Some).chain(tail).enumerate() {
            let slot = &mut ring[i % AHEAD];
            if let Some((hash, key, started)) = slot.take() {
                let exiting = self.exits_under_way();
                let entry = started.find(hash, |e: &Entry<K, V, P>| e.key.borrow() == key, guard);
                let entry = entry.and_then(|e| self.live(e, exiting, guard));
                found.push(entry.map(&mut out));
            }
            if let Some(key) = key {
                let hash = mark(self.hasher.hash_one(key));
                *slot = Some((hash, key, self.names.get(hash).start(hash, guard)));
            }
        }
        found
    }

    /// Whether some process holds `key`.
    #[must_use]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.whereis(key).is_some()
    }

    /// Removes `key` only if `pid` owns it. Returns whether an entry was removed.
    pub fn unregister<Q>(&self, pid: P, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let guard = &self.epoch.pin();
        let by_pid = self.pid_hasher();
        // From before the entry leaves until its place is back; taken before the pid's
        // lock, as by registrations, so that no one waits for the gate holding a lock.
        let pass = self.limit.as_ref().map(Limit::pass);
        let key_mark = mark(self.hasher.hash_one(key));
        // The name's miss overlaps the monitor's, which the lock waits for first.
        self.names.get(key_mark).prefetch(key_mark, guard);
        let Some(mut lock) = self.lock_pid(pid, None, &by_pid, guard) else {
            return false;
        };
        let owned = |e: &Entry<K, V, P>| e.pid == pid && e.key.borrow() == key;
        let Some(entry) =
            self.names
                .get(key_mark)
                .remove(key_mark, owned, &self.key_hasher(), guard)
        else {
            return false;
        };
        let emptied = monitor::remove(&mut lock, key_mark, &self.lists, guard);
        drop(lock);
        self.removed(1, emptied);
        drop(pass);
        // Retired before the listener runs, so that a panicking listener leaks nothing.
        // SAFETY: removed from the table by us; retired once, here. Its bytes stay
        // readable under `guard`, which outlives the listener call below.
        unsafe { retire_record(guard, entry, Entry::<K, V, P>::NEEDS_DROP) };
        if let Some(listener) = &self.listener {
            listener(&Event::Unregistered {
                key: &entry.key,
                pid,
            });
        }
        true
    }

    /// Replaces the value of `key` with `f(&old)` if `pid` owns it; returns `(new, old)`.
    ///
    /// Returns `None`, without calling `f`, if `pid` does not own `key`. Readers see the old
    /// or the new value, never a mix. If `f` panics the old value stays and the panic
    /// propagates.
    ///
    /// `f` runs while `pid`'s entries are locked against concurrent changes: it may read the
    /// registry (`lookup`, `whereis`, `keys`, `select`, ...) and change other pids' entries,
    /// but must not call `register`, `try_register`, `unregister`, `update_value` or
    /// `process_down` for `pid` itself: those wait for the lock `f` runs under, forever.
    pub fn update_value<Q>(&self, pid: P, key: &Q, f: impl FnOnce(&V) -> V) -> Option<(V, V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let guard = &self.epoch.pin();
        let by_pid = self.pid_hasher();
        let lock = self.lock_pid(pid, None, &by_pid, guard)?;
        let key_mark = mark(self.hasher.hash_one(key));
        let owned = |e: &Entry<K, V, P>| e.pid == pid && e.key.borrow() == key;
        let old = self.names.get(key_mark).find(key_mark, owned, guard)?;
        let value = Value::new(f(&*old.value));
        // The key moves into the replacement; the old entry keeps its bytes for readers.
        let make = move |old: &Entry<K, V, P>| Entry {
            // SAFETY: the old entry is never dropped as a whole (only its value, below), so
            // the key is owned once, by the replacement.
            key: unsafe { ptr::read(&old.key) },
            pid,
            value,
        };
        let (new, old) =
            self.names
                .get(key_mark)
                .update(key_mark, owned, make, &self.key_hasher(), guard)?;
        drop(lock);
        let result = (V::clone(&new.value), V::clone(&old.value));
        // SAFETY: the old entry left the table; its value is dropped once, here (its key
        // now belongs to `new`).
        unsafe { retire_record(guard, &old.value, Value::<V>::NEEDS_DROP) };
        Some(result)
    }

    /// The keys `pid` holds: one probe of the monitor index, then one probe of the name
    /// table per key. Lock-free; weakly consistent while `pid` changes concurrently.
    #[must_use]
    pub fn keys(&self, pid: P) -> Vec<K>
    where
        K: Clone,
    {
        let guard = &self.epoch.pin();
        let hash = self.hasher.hash_one(pid);
        let Some(monitor) = self
            .pids
            .get(hash)
            .find(mark(hash), |m| m.pid == pid, guard)
        else {
            return Vec::new();
        };
        let data = monitor.data();
        if data == monitor::DOWN {
            // Its exit is under way: to every reader it holds nothing.
            return Vec::new();
        }
        let by_key = self.key_hasher();
        let mut keys = Vec::new();
        let mut marks = Vec::new();
        // SAFETY: read under `guard`, still pinned.
        unsafe { monitor::for_each_mark(data, guard, |m| marks.push(m)) };
        marks.sort_unstable();
        for (i, &m) in marks.iter().enumerate() {
            // Two keys of one pid can share a mark: visit each distinct mark once.
            if i > 0 && marks[i - 1] == m {
                continue;
            }
            let owned = |e: &Entry<K, V, P>| e.pid == pid && mark(by_key(e)) == m;
            // A probe that follows a migration, or meets an update between its old and new
            // record, can see one key twice: keys are unique, so keep each once.
            let mut found: Vec<&K> = Vec::new();
            self.names.get(m).find_each(m, owned, guard, |e| {
                if !found.contains(&&e.key) {
                    found.push(&e.key);
                }
                true
            });
            keys.extend(found.into_iter().cloned());
        }
        keys
    }

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

    /// Collects `f(key, pid, value)` over every entry for which it returns `Some`.
    ///
    /// Weakly consistent: entries present for the whole call are visited exactly once;
    /// entries added, removed or updated meanwhile at most once (with the old or the new
    /// value). `f` runs with no lock held, after the walk. A table migration under way when
    /// the call starts is finished first.
    pub fn select<T>(&self, mut f: impl FnMut(&K, P, &V) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        self.for_each(|e| out.extend(f(&e.key, e.pid, &*e.value)));
        out
    }

    /// Counts the entries for which `f(key, pid, value)` holds (consistency as `select`).
    pub fn count_select(&self, mut f: impl FnMut(&K, P, &V) -> bool) -> usize {
        let mut n = 0;
        self.for_each(|e| n += usize::from(f(&e.key, e.pid, &*e.value)));
        n
    }

    /// The runtime reports that `pid` exited: removes every entry it holds and returns how
    /// many. When this returns, no lookup, select or dispatch that starts afterwards can
    /// return `pid`, and its names can be registered again at once. To readers its names
    /// all go at one instant, before the first is removed ("Exits are atomic", in the
    /// type's docs).
    pub fn process_down(&self, pid: P) -> usize {
        self.down(pid, &self.epoch.pin())
    }

    /// [`process_down`](Self::process_down) for a batch of exits, in order; returns how
    /// many entries they held in all. Each exit is complete, and visible as in
    /// `process_down`, before the next one starts.
    ///
    /// A runtime that reaps exits in batches (a scheduler tick, a supervisor shutting its
    /// children down, a node going away) saves most of the cache misses' wait: while one
    /// exit is handled, the monitors of the next pids and their first names' groups are
    /// already on their way into the cache, as in [`whereis_many`](Self::whereis_many).
    /// `reports/compare.md` measures it against single calls.
    pub fn process_down_many(&self, pids: impl IntoIterator<Item = P>) -> usize {
        batch::exits(
            &self.epoch,
            &self.hasher,
            &self.pids,
            pids,
            |pid, guard| self.prefetch_first_name(*pid, guard),
            |pid, guard| self.down(pid, guard),
        )
    }

    /// Starts loading the group of `pid`'s first name, read from its monitor without the
    /// lock: a hint for a `down` to come, whatever the monitor holds by then.
    fn prefetch_first_name(&self, pid: P, guard: &Guard) {
        let hash = mark(self.hasher.hash_one(pid));
        if let Some(monitor) = self.pids.get(hash).find(hash, |m| m.pid == pid, guard) {
            let data = monitor.data();
            if data == monitor::DOWN {
                return;
            }
            // SAFETY: read under `guard`, still pinned.
            let first = unsafe { monitor::first_mark(data, guard) };
            self.names.get(first).prefetch(first, guard);
        }
    }

    /// `process_down` under `guard`.
    fn down(&self, pid: P, guard: &Guard) -> usize {
        let by_pid = self.pid_hasher();
        // As in `unregister`: before the pid's lock, until the places are back.
        let pass = self.limit.as_ref().map(Limit::pass);
        let Some(mut lock) = self.lock_pid(pid, None, &by_pid, guard) else {
            return 0;
        };
        let by_key = self.key_hasher();
        // "Exits are atomic" (type docs): a pid with more than one name is counted and
        // marked down before the first removal, and from then on holds none of them to any
        // reader. The walk below reads the marks from `data`, the word as it was.
        let data = lock.data();
        let multi = monitor::is_list(data);
        if multi {
            // SeqCst, as the loads in `exits_under_way` and `has_exited`.
            self.exiting.fetch_add(1, Ordering::SeqCst);
            lock.set_data_seq_cst(monitor::DOWN);
        }
        let mut count = 0;
        // Kept only for the listener: without one, an exit allocates nothing.
        let mut heard = Vec::new();
        // Finding each entry runs the pids' `Eq` and the keys' `Hash`. If one panics, the
        // walk stops removing, the monitor keeps exactly the marks not removed, and the
        // panic goes on once the removals made are accounted for.
        let mut user_panic = None;
        // SAFETY: read under the lock and `guard`.
        unsafe {
            monitor::for_each_mark_ahead(
                data,
                guard,
                // A removal waits for its name's group: start the next ones' meanwhile.
                |m| self.names.get(m).prefetch(m, guard),
                |m| {
                    if user_panic.is_some() {
                        return;
                    }
                    let owned = |e: &Entry<K, V, P>| e.pid == pid && mark(by_key(e)) == m;
                    let remove = || self.names.get(m).remove(m, owned, &by_key, guard);
                    let entry = match std::panic::catch_unwind(AssertUnwindSafe(remove)) {
                        Ok(entry) => entry.expect("a monitored key is in the name table"),
                        Err(panic) => {
                            user_panic = Some(panic);
                            return;
                        }
                    };
                    count += 1;
                    // Retired at once, so that a panicking listener leaks nothing. Deferring
                    // runs no destructor (the collector runs them later, at a pin or a
                    // flush), so nothing of the caller's runs under the pid's lock.
                    // SAFETY: removed from the table by us; retired once, here. The bytes
                    // stay readable under `guard` for the listener.
                    retire_record(guard, entry, Entry::<K, V, P>::NEEDS_DROP);
                    if self.listener.is_some() {
                        heard.push(entry);
                    }
                },
            );
        }
        let emptied = if user_panic.is_some() {
            // The exit stops part-way: the pid is live again, with the names not removed.
            if multi {
                lock.set_data(data);
            }
            // The walk removed the first `count` marks it visited: take those out.
            let mut gone = Vec::with_capacity(count);
            // SAFETY: as above; the same walk of the same list, still locked.
            unsafe {
                monitor::for_each_mark_ahead(
                    data,
                    guard,
                    |_| {},
                    |m| {
                        if gone.len() < count {
                            gone.push(m);
                        }
                    },
                );
            }
            monitor::retain(
                &mut lock,
                |m| match gone.iter().position(|&g| g == m) {
                    Some(at) => {
                        gone.swap_remove(at);
                        false
                    }
                    None => true,
                },
                &self.lists,
                guard,
            )
        } else {
            monitor::clear_exited(&mut lock, data, &self.lists, guard);
            true
        };
        drop(lock);
        if multi {
            // After every removal and the monitor's, before the listener: a reader that
            // loads the count this leaves finds none of the pid's entries.
            self.exiting.fetch_sub(1, Ordering::SeqCst);
        }
        self.removed(count, emptied);
        drop(pass);
        if let Some(listener) = &self.listener {
            for entry in heard {
                listener(&Event::Down {
                    key: &entry.key,
                    pid,
                });
            }
        }
        if let Some(panic) = user_panic {
            std::panic::resume_unwind(panic);
        }
        count
    }
}

impl<K, V, P, S> Unique<K, V, P, S> {
    /// Processes that hold at least one entry.
    #[must_use]
    pub fn monitors(&self) -> usize {
        self.monitors.sum()
    }

    /// The number of partitions.
    #[must_use]
    pub fn partitions(&self) -> usize {
        self.names.len()
    }

    fn removed(&self, entries: usize, monitor_gone: bool) {
        self.entries.sub(entries);
        if monitor_gone {
            self.monitors.sub(1);
        }
        if let Some(limit) = &self.limit {
            limit.release(entries);
        }
    }
}

impl<K: Hash + Eq, V, P: ProcessId, S: BuildHasher> Unique<K, V, P, S> {
    /// Sizes and memory: what to watch on a live system (Elixir users watch the ETS table
    /// size). See [`Stats`].
    #[must_use]
    pub fn stats(&self) -> Stats {
        let guard = &self.epoch.pin();
        let lists = self.lists.sum();
        let mut stats = Stats {
            entries: self.entries.sum(),
            monitors: self.monitors.sum(),
            entry_bytes: lists,
            retired_bytes: reclaim::retired_bytes(),
            drop_panics: reclaim::drop_panics(),
            ..Stats::default()
        };
        self.names.add_to(&mut stats, guard);
        stats.monitor_bytes = self.pids.add_to(&mut stats, guard) + lists;
        stats
    }

    /// Grows the tables now, in the calling thread, so that `additional` more names (and
    /// as many more monitored pids) fit without growing again: what
    /// [`capacity`](UniqueBuilder::capacity) does at build time, for a registry that is
    /// about to be loaded in bulk. Like the builder's capacity, the room is shared out
    /// evenly among the partitions.
    ///
    /// It also finishes any growth under way. Only writers copy a growing table (readers
    /// never write), so a registry whose writes stop just after a growth starts keeps
    /// probing two arrays per lookup until it is written again; `reserve(0)` after a bulk
    /// load ends that at once.
    ///
    /// The calling thread copies every entry that moves, so this costs time in proportion
    /// to the registry's size, as [`Vec::reserve`] does; every other operation goes on
    /// meanwhile, and writers help with the copy.
    ///
    /// # Panics
    ///
    /// If tables for that many entries would not fit in memory ("capacity overflow");
    /// like `Vec`, it aborts if the allocator cannot provide them.
    ///
    /// ```
    /// # use regent::{Pid, Unique};
    /// let reg: Unique<u64, ()> = Unique::new();
    /// reg.reserve(10_000);
    /// let room = reg.stats().capacity;
    /// for i in 0..10_000 {
    ///     reg.register(Pid::new(i), i, ()).unwrap();
    /// }
    /// assert_eq!(reg.stats().capacity, room, "no growth while loading");
    /// ```
    pub fn reserve(&self, additional: usize) {
        let guard = &self.epoch.pin();
        self.names.reserve(additional, &self.key_hasher(), guard);
        self.pids.reserve(additional, &self.pid_hasher(), guard);
    }

    fn find<'g, Q>(&self, key: &Q, guard: &'g Guard) -> Option<&'g Entry<K, V, P>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let exiting = self.exits_under_way();
        let hash = mark(self.hasher.hash_one(key));
        let entry = self
            .names
            .get(hash)
            .find(hash, |e| e.key.borrow() == key, guard)?;
        self.live(entry, exiting, guard)
    }

    /// Whether exits of pids with more than one name are under way: loaded before a probe
    /// by key, and passed to [`live`](Self::live) with what the probe found.
    ///
    /// `SeqCst`, with the exit's increment and its marking of the pid: a probe that starts
    /// after an exit marked its pid down, or after it saw any of that exit's removals, loads
    /// a count that includes the exit, or one from after the exit decremented it, which
    /// comes after every removal (the type's docs, "Exits are atomic").
    #[inline]
    fn exits_under_way(&self) -> bool {
        self.exiting.load(Ordering::SeqCst) != 0
    }

    /// `entry`, found by a probe that started when [`exits_under_way`] said `exiting`,
    /// unless its pid's exit has started: then the exit is removing it, and to every reader
    /// it is gone already.
    ///
    /// [`exits_under_way`]: Self::exits_under_way
    #[inline]
    fn live<'g>(
        &self,
        entry: &'g Entry<K, V, P>,
        exiting: bool,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V, P>> {
        if exiting && self.has_exited(entry.pid, guard) {
            return None;
        }
        Some(entry)
    }

    /// Whether `pid`, which held a name when the caller's probe found it, has exited since
    /// (its exit marked it down) or lost every name (its monitor is gone, and with it every
    /// entry: a monitor is placed before its pid's first entry and removed after the last).
    #[cold]
    fn has_exited(&self, pid: P, guard: &Guard) -> bool {
        let hash = mark(self.hasher.hash_one(pid));
        match self.pids.get(hash).find(hash, |m| m.pid == pid, guard) {
            None => true,
            // SeqCst: pairs with the exit's `set_data_seq_cst` (`exits_under_way`).
            Some(monitor) => monitor.data_seq_cst() == monitor::DOWN,
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Entry<K, V, P>)) {
        let guard = &self.epoch.pin();
        let by_key = self.key_hasher();
        let mut entries = Vec::new();
        let mut updated = false;
        for table in self.names.iter() {
            updated |= table.for_each(&by_key, guard, &mut entries);
        }
        if updated {
            // An update overlapped the walk and may have been collected twice (old and
            // new): keep the first record of each key.
            let mut seen = std::collections::HashSet::with_capacity_and_hasher(
                entries.len(),
                foldhash::fast::RandomState::default(),
            );
            entries.retain(|e| seen.insert(HashedKey(&e.key)));
        }
        entries.into_iter().for_each(&mut f);
    }

    fn lock_pid<'t, 'g, R: Fn(&Monitor<P>) -> u64>(
        &'t self,
        pid: P,
        fresh: Option<Monitor<P>>,
        by_pid: &'t R,
        guard: &'g Guard,
    ) -> Option<monitor::PidLock<'t, 'g, Monitor<P>, R>> {
        self.lock_pid_at(pid, mark(self.hasher.hash_one(pid)), fresh, by_pid, guard)
    }

    /// `lock_pid` with the pid's hash already computed.
    fn lock_pid_at<'t, 'g, R: Fn(&Monitor<P>) -> u64>(
        &'t self,
        pid: P,
        hash: u64,
        fresh: Option<Monitor<P>>,
        by_pid: &'t R,
        guard: &'g Guard,
    ) -> Option<monitor::PidLock<'t, 'g, Monitor<P>, R>> {
        self.pids
            .get(hash)
            .lock(hash, |m| m.pid == pid, fresh, by_pid, guard)
    }

    fn key_hasher(&self) -> impl Fn(&Entry<K, V, P>) -> u64 + '_ {
        |e| mark(self.hasher.hash_one(&e.key))
    }

    fn pid_hasher(&self) -> impl Fn(&Monitor<P>) -> u64 + '_ {
        |m| mark(self.hasher.hash_one(m.pid))
    }
}

/// A [`Unique`] registry pinned for a run of lookups: see [`Unique::pin`].
///
/// Each lookup answers as the registry's own does at the moment it runs: an entry
/// registered after the pin is seen, and one removed after the pin is not. The pin only
/// keeps removed entries' memory alive; it never shows a stale answer.
pub struct Pinned<'r, K, V, P = Pid, S = DefaultHashBuilder> {
    registry: &'r Unique<K, V, P, S>,
    guard: Guard,
}

impl<K, V, P, S> Pinned<'_, K, V, P, S>
where
    K: Hash + Eq,
    P: ProcessId,
    S: BuildHasher,
{
    /// The owner of `key`, as [`Unique::whereis`].
    #[must_use]
    pub fn whereis<Q>(&self, key: &Q) -> Option<P>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.registry.find(key, &self.guard).map(|e| e.pid)
    }

    /// The owner of `key` and its value, lent for as long as the view lives. The value is
    /// the one `key` held when `get` ran: if the entry is replaced (`update_value`) or
    /// removed afterwards, the reference still reads the old value, which is freed only
    /// after the view drops.
    #[must_use]
    pub fn get<Q>(&self, key: &Q) -> Option<(P, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.registry
            .find(key, &self.guard)
            .map(|e| (e.pid, &*e.value))
    }
}

impl<K, V, P, S> fmt::Debug for Pinned<'_, K, V, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinned")
            .field("registry", self.registry)
            .finish()
    }
}

/// A key compared and hashed by value, for deduplicating a walk.
struct HashedKey<'a, K>(&'a K);

impl<K: Hash> Hash for HashedKey<'_, K> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<K: Eq> PartialEq for HashedKey<'_, K> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<K: Eq> Eq for HashedKey<'_, K> {}

meta_and_lock!(Unique);

impl<K, V, P, S> Drop for Unique<K, V, P, S> {
    fn drop(&mut self) {
        for table in self.names.iter_mut() {
            // SAFETY: `&mut self`: no other thread is inside; each live entry is dropped
            // once, here, and its slot is freed with the array without a second drop. A
            // panicking `Drop` of a key or value is contained, as in reclamation.
            table.drain(|entry| reclaim::contain(|| unsafe { ptr::drop_in_place(entry) }));
        }
        monitor::free_all(&mut self.pids);
    }
}

impl<K, V, P, S> fmt::Debug for Unique<K, V, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unique")
            .field("entries", &self.entries.sum())
            .field("monitors", &self.monitors.sum())
            .field("partitions", &self.partitions())
            .finish_non_exhaustive()
    }
}

impl<K, V, P, S: fmt::Debug> fmt::Debug for UniqueBuilder<K, V, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UniqueBuilder");
        self.settings.debug_fields(&mut d);
        d.field("max_entries", &self.max_entries).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Slots ever claimed in the monitor index's current arrays: live monitors plus the
    /// tombstones of removed ones.
    fn monitor_claims(names: &Unique<u64, u64>) -> usize {
        let guard = &names.epoch.pin();
        names.pids.iter().map(|t| t.claimed(guard)).sum()
    }

    #[test]
    fn a_refused_registration_writes_no_monitor() {
        let names: Unique<u64, u64> = Unique::builder().partitions(1).build();
        names.register(Pid::new(1), 7, 0).unwrap();
        let before = monitor_claims(&names);
        for p in 2..200 {
            let taken = names.register(Pid::new(p), 7, p).unwrap_err();
            assert_eq!((taken.owner, taken.key, taken.value), (Pid::new(1), 7, p));
            let existing = names.register_or_lookup(Pid::new(p), 7, p).unwrap_err();
            assert_eq!((existing.owner, existing.value), (Pid::new(1), 0));
        }
        // Refusals neither add a monitor nor leave the tombstone of one behind.
        assert_eq!(monitor_claims(&names), before);
        assert_eq!((names.monitors(), names.count()), (1, 1));
    }
}
