//! Unique registries: at most one process per key.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::mem::size_of;
use core::ptr;

use crossbeam_epoch::{Collector, Guard};

use crate::entry::Entry;
use crate::error::{AlreadyRegistered, TryRegisterError};
use crate::event::{Event, Listener};
use crate::monitor;
use crate::partition::{checked_partitions, default_partitions, Partitioned};
use crate::pid::{Pid, ProcessId};
use crate::reclaim::{self, retire, Epoch};
use crate::stats::Stats;
use crate::sync::{AtomicUsize, Ordering};
use crate::{counter::Counter, DefaultHashBuilder};

/// A registry in which each key is held by at most one process.
///
/// Lookups (`lookup`, `whereis`, `select`) take no lock and never wait for a writer.
/// `register` is an atomic insert-if-absent; the loser gets the key and value back with the
/// current owner. Every entry is also indexed by its pid, so [`process_down`] removes all
/// of a process's names in O(its names), linearizably: once it returns, no lookup that
/// starts afterwards returns that pid.
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
/// [`process_down`]: Unique::process_down
pub struct Unique<K, V = (), P = Pid, S = DefaultHashBuilder> {
    /// Entries by hash of key.
    names: Partitioned<Entry<K, V, P>>,
    /// The same entries by hash of pid: each pid's slot heads the list of its entries.
    pids: Partitioned<Entry<K, V, P>>,
    hasher: S,
    entries: Counter,
    monitors: Counter,
    limit: Option<Limit>,
    listener: Option<Listener<K, V, P>>,
    epoch: Epoch,
    /// The registry owns `Entry` nodes: Send and Sync follow `K`, `V` and `P`.
    _owns: PhantomData<Box<Entry<K, V, P>>>,
}

/// `max_entries`: a reservation counter, paid for only when a limit is set.
struct Limit {
    max: usize,
    reserved: AtomicUsize,
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
    partitions: usize,
    capacity: usize,
    max_entries: Option<usize>,
    hasher: S,
    listener: Option<Listener<K, V, P>>,
    collector: Option<Collector>,
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
            partitions: default_partitions(),
            capacity: 0,
            max_entries: None,
            hasher: DefaultHashBuilder::default(),
            listener: None,
            collector: None,
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

impl<K, V, P, S> UniqueBuilder<K, V, P, S> {
    /// The number of partitions, rounded up to a power of two.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or more than 65,536.
    pub fn partitions(mut self, n: usize) -> Self {
        self.partitions = checked_partitions(n);
        self
    }

    /// Sizes the tables for `n` entries (and as many monitored pids) without growing.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Limits the registry to `n` live entries: [`Unique::try_register`] reports the limit
    /// with [`TryRegisterError::Full`], and [`Unique::register`] panics at it.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// The hasher for keys and pids. For keys chosen by untrusted parties, use a
    /// DoS-resistant one such as `std::hash::RandomState` (SipHash-1-3).
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> UniqueBuilder<K, V, P, S2> {
        UniqueBuilder {
            partitions: self.partitions,
            capacity: self.capacity,
            max_entries: self.max_entries,
            hasher,
            listener: self.listener,
            collector: self.collector,
        }
    }

    /// Reclaims removed entries through `collector` instead of crossbeam-epoch's default
    /// one: for loom models (a fresh collector per model) or to isolate this registry's
    /// garbage. Every operation then registers a participant with the collector, which
    /// allocates; the default collector keeps a cached per-thread handle and is faster.
    pub fn collector(mut self, collector: Collector) -> Self {
        self.collector = Some(collector);
        self
    }

    /// Calls `f` after every change, in the thread that made it, with no internal lock
    /// held (it may call back into the registry). A panic in `f` propagates to the caller
    /// of the method that made the change; the change stands.
    pub fn listener(mut self, f: impl Fn(&Event<'_, K, V, P>) + Send + Sync + 'static) -> Self {
        self.listener = Some(Box::new(f));
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
        Unique {
            names: Partitioned::new(self.partitions, self.capacity),
            pids: Partitioned::new(self.partitions, self.capacity),
            hasher: self.hasher,
            entries: Counter::new(),
            monitors: Counter::new(),
            limit: self.max_entries.map(|max| Limit {
                max,
                reserved: AtomicUsize::new(0),
            }),
            listener: self.listener,
            epoch: self.collector.map_or(Epoch::Global, Epoch::Own),
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
    /// key exactly one wins, and every loser learns the winner.
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

    /// Like [`register`](Self::register), but reports a full registry instead of panicking.
    ///
    /// # Errors
    ///
    /// [`TryRegisterError::Taken`] as `register`'s error; [`TryRegisterError::Full`] if the
    /// registry holds `max_entries` entries: nothing is registered, no monitor is left
    /// behind, and `key` and `value` come back.
    pub fn try_register(&self, pid: P, key: K, value: V) -> Result<(), TryRegisterError<P, K, V>> {
        if let Some(limit) = &self.limit {
            if !limit.reserve(1) {
                return Err(TryRegisterError::Full { key, value });
            }
        }
        let guard = &self.epoch.pin();
        let key_hash = self.hasher.hash_one(&key);
        let pid_hash = self.hasher.hash_one(pid);
        let node = Entry::boxed(key, value, pid, ptr::null_mut());
        let (by_key, by_pid) = (self.key_hasher(), self.pid_hasher());
        let eq_pid = |e: &Entry<K, V, P>| e.pid == pid;
        // SAFETY: `node` is fresh, 8-aligned, hashes to `pid_hash` under `by_pid`, matches.
        let mut lock = unsafe {
            self.pids
                .get(pid_hash)
                .lock(pid_hash, eq_pid, Some(node), &by_pid, guard)
        }
        .expect("a fresh node is always placed");
        // The pid had no slot: `node` was placed as its list head while we hold the lock.
        let new_monitor = lock.head() == node;
        // SAFETY: `node` is fresh (only its pid is visible, through the locked slot).
        let eq_key = |e: &Entry<K, V, P>| e.key == unsafe { &*node }.key;
        // SAFETY: as above, and it hashes to `key_hash` under `by_key`.
        match unsafe {
            self.names
                .get(key_hash)
                .insert(key_hash, node, eq_key, &by_key, guard)
        } {
            Ok(()) => {
                if !new_monitor {
                    // SAFETY: `node` is live and in no list yet.
                    unsafe { monitor::push(&mut lock, node) };
                }
                drop(lock);
                self.entries.add(1);
                if new_monitor {
                    self.monitors.add(1);
                }
                if let Some(listener) = &self.listener {
                    // SAFETY: `node` may be removed concurrently, but is retired through
                    // the epoch and `guard` is still pinned.
                    let e = unsafe { &*node };
                    listener(&Event::Registered {
                        key: &e.key,
                        pid,
                        value: &e.value,
                    });
                }
                Ok(())
            }
            Err(existing) => {
                let owner = existing.pid;
                let (key, value) = if new_monitor {
                    // Other threads probing the index may be reading `node.pid`: move the
                    // parts out now, free the node through the epoch after unlocking.
                    lock.set_head(ptr::null_mut());
                    drop(lock);
                    // SAFETY: `node` is no longer reachable by new readers; old ones read
                    // only its pid, and its parts are moved out once, here.
                    unsafe {
                        let parts = Entry::take_parts(node);
                        retire(
                            guard,
                            node,
                            size_of::<Entry<K, V, P>>(),
                            Entry::free_moved_parts,
                        );
                        parts
                    }
                } else {
                    drop(lock);
                    // SAFETY: `node` was never published.
                    unsafe { Entry::into_parts(node) }
                };
                if let Some(limit) = &self.limit {
                    limit.release(1);
                }
                Err(TryRegisterError::Taken(AlreadyRegistered {
                    owner,
                    key,
                    value,
                }))
            }
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
        self.find(key, guard).map(|e| (e.pid, (*e.value).clone()))
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
        let Some(mut lock) = self.lock_pid(pid, &by_pid, guard) else {
            return false;
        };
        let Some(entry) = self.find(key, guard).filter(|e| e.pid == pid) else {
            return false;
        };
        let node = ptr::from_ref(entry).cast_mut();
        let key_hash = self.hasher.hash_one(key);
        let removed = self
            .names
            .get(key_hash)
            .remove(key_hash, node, &self.key_hasher(), guard);
        debug_assert!(
            removed,
            "only the owner, holding its lock, removes its entries"
        );
        // SAFETY: `node` is in the locked pid's list.
        unsafe { monitor::unlink(&mut lock, node, ptr::null_mut()) };
        let emptied = lock.head().is_null();
        drop(lock);
        self.removed(1, emptied);
        // SAFETY: unlinked from both tables; retired once, here.
        unsafe { retire(guard, node, size_of::<Entry<K, V, P>>(), Entry::free) };
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
        let mut lock = self.lock_pid(pid, &by_pid, guard)?;
        let old = self.find(key, guard).filter(|e| e.pid == pid)?;
        let value = f(&old.value);
        let old_node = ptr::from_ref(old).cast_mut();
        // SAFETY: the key moves into the replacement; the old node keeps its bytes for
        // readers until it is freed with `free_moved_key`, which does not drop the key.
        let new_node = Entry::boxed(unsafe { ptr::read(&*old.key) }, value, pid, old.next());
        let key_hash = self.hasher.hash_one(key);
        let replaced = self.names.get(key_hash).replace(
            key_hash,
            old_node,
            new_node,
            &self.key_hasher(),
            guard,
        );
        debug_assert!(
            replaced,
            "only the owner, holding its lock, replaces its entries"
        );
        // SAFETY: `old_node` is in the locked list; `new_node` is live and links onward.
        unsafe { monitor::unlink(&mut lock, old_node, new_node) };
        drop(lock);
        // SAFETY: `new_node` is published; `guard` keeps it alive even if removed now.
        let new = unsafe { &*new_node };
        let result = ((*new.value).clone(), (*old.value).clone());
        // SAFETY: unlinked from both tables; its key now belongs to `new_node`.
        unsafe {
            retire(
                guard,
                old_node,
                size_of::<Entry<K, V, P>>(),
                Entry::free_moved_key,
            )
        };
        Some(result)
    }

    /// The keys `pid` holds: one probe of the monitor index, then a lock-free walk of the
    /// pid's list. Weakly consistent while `pid` registers or unregisters concurrently.
    #[must_use]
    pub fn keys(&self, pid: P) -> Vec<K>
    where
        K: Clone,
    {
        let guard = &self.epoch.pin();
        let by_pid = self.pid_hasher();
        let Some(lock) = self.lock_pid(pid, &by_pid, guard) else {
            return Vec::new();
        };
        // Collect under the lock, clone after it: user code (`K::clone`) never runs locked.
        // SAFETY: the lock is held while iterating.
        let nodes: Vec<_> = unsafe { monitor::iter(lock.head()) }.collect();
        drop(lock);
        // SAFETY: the nodes may be removed meanwhile, but `guard` keeps them alive.
        nodes
            .into_iter()
            .map(|n| (*unsafe { &*n }.key).clone())
            .collect()
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
    /// entries added or removed meanwhile may or may not be. `f` runs with no lock held.
    /// A table migration under way when the call starts is finished first.
    pub fn select<T>(&self, mut f: impl FnMut(&K, P, &V) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        self.for_each(|e| out.extend(f(&e.key, e.pid, &e.value)));
        out
    }

    /// Counts the entries for which `f(key, pid, value)` holds (consistency as `select`).
    pub fn count_select(&self, mut f: impl FnMut(&K, P, &V) -> bool) -> usize {
        let mut n = 0;
        self.for_each(|e| n += usize::from(f(&e.key, e.pid, &e.value)));
        n
    }

    /// The runtime reports that `pid` exited: removes every entry it holds and returns how
    /// many. When this returns, no lookup, select or dispatch that starts afterwards can
    /// return `pid`, and its names can be registered again at once.
    pub fn process_down(&self, pid: P) -> usize {
        let guard = &self.epoch.pin();
        let by_pid = self.pid_hasher();
        let Some(mut lock) = self.lock_pid(pid, &by_pid, guard) else {
            return 0;
        };
        let head = lock.head();
        let by_key = self.key_hasher();
        let mut n = 0;
        // SAFETY: the lock is held while iterating.
        for node in unsafe { monitor::iter(head) } {
            // SAFETY: list members are live while the lock is held.
            let key_hash = by_key(unsafe { &*node });
            let removed = self
                .names
                .get(key_hash)
                .remove(key_hash, node, &by_key, guard);
            debug_assert!(removed, "a listed entry is in the name table");
            n += 1;
        }
        lock.set_head(ptr::null_mut());
        drop(lock);
        self.removed(n, true);
        // The nodes are unreachable now but still linked; `guard` keeps them alive while
        // they are retired and reported.
        // SAFETY: as above.
        for node in unsafe { monitor::iter(head) } {
            // SAFETY: unlinked from both tables; retired once, here.
            unsafe { retire(guard, node, size_of::<Entry<K, V, P>>(), Entry::free) };
        }
        if let Some(listener) = &self.listener {
            // SAFETY: retired above under this still-pinned guard, so still allocated.
            for node in unsafe { monitor::iter(head) } {
                // SAFETY: as above.
                let entry = unsafe { &*node };
                listener(&Event::Down {
                    key: &entry.key,
                    pid,
                });
            }
        }
        n
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

    /// Sizes and memory: what to watch on a live system (Elixir users watch the ETS table
    /// size). See [`Stats`].
    #[must_use]
    pub fn stats(&self) -> Stats {
        let guard = &self.epoch.pin();
        let mut stats = Stats {
            entries: self.entries.sum(),
            monitors: self.monitors.sum(),
            retired_bytes: reclaim::retired_bytes(),
            ..Stats::default()
        };
        for table in self.names.iter().chain(self.pids.iter()) {
            stats.capacity += table.capacity(guard);
            let (bytes, migrating) = table.bytes(guard);
            stats.table_bytes += bytes;
            stats.migrations += usize::from(migrating);
        }
        stats.entry_bytes = stats.entries * size_of::<Entry<K, V, P>>();
        stats
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
    fn find<'g, Q>(&self, key: &Q, guard: &'g Guard) -> Option<&'g Entry<K, V, P>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        self.names
            .get(hash)
            .find(hash, |e| (*e.key).borrow() == key, guard)
    }

    fn lock_pid<'t, 'g, R: Fn(&Entry<K, V, P>) -> u64>(
        &'t self,
        pid: P,
        by_pid: &'t R,
        guard: &'g Guard,
    ) -> Option<monitor::PidLock<'t, 'g, K, V, P, R>> {
        let hash = self.hasher.hash_one(pid);
        // SAFETY: no fresh node is passed.
        unsafe {
            self.pids
                .get(hash)
                .lock(hash, |e| e.pid == pid, None, by_pid, guard)
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Entry<K, V, P>)) {
        let guard = &self.epoch.pin();
        let by_key = self.key_hasher();
        for table in self.names.iter() {
            table.for_each(&by_key, guard, &mut f);
        }
    }

    fn key_hasher(&self) -> impl Fn(&Entry<K, V, P>) -> u64 + '_ {
        |e| self.hasher.hash_one(&*e.key)
    }

    fn pid_hasher(&self) -> impl Fn(&Entry<K, V, P>) -> u64 + '_ {
        |e| self.hasher.hash_one(e.pid)
    }
}

impl Limit {
    fn reserve(&self, n: usize) -> bool {
        // Relaxed: a count, not a publication; the registration itself synchronizes.
        let before = self.reserved.fetch_add(n, Ordering::Relaxed);
        if before + n > self.max {
            self.reserved.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, n: usize) {
        self.reserved.fetch_sub(n, Ordering::Relaxed);
    }
}

impl<K, V, P, S> Drop for Unique<K, V, P, S> {
    fn drop(&mut self) {
        // Every live entry is in exactly one pid's list: free them through the index.
        for table in self.pids.iter_mut() {
            table.drain(|head| {
                // SAFETY: `&mut self`: no other thread is inside; each list is walked once
                // and each node freed once (collect first: freeing ends the walk's node).
                let nodes: Vec<_> = unsafe { monitor::iter(head) }.collect();
                for node in nodes {
                    // SAFETY: unreachable once the registry is gone; freed once, here.
                    unsafe { Entry::free(node) };
                }
            });
        }
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
        f.debug_struct("UniqueBuilder")
            .field("partitions", &self.partitions)
            .field("capacity", &self.capacity)
            .field("max_entries", &self.max_entries)
            .field("hasher", &self.hasher)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}
