//! What both registry builders configure alike: partitions, capacity, hasher, listener and
//! collector. Each builder holds a `Settings` and gets its setters from `settings_setters!`,
//! adding only what is its own (`max_entries`, `partition_by`).

use crossbeam_epoch::Collector;

use crate::event::Listener;
use crate::partition::{checked_partitions, default_partitions};
use crate::reclaim::Epoch;
use crate::DefaultHashBuilder;

pub(crate) struct Settings<K, V, P, S> {
    pub(crate) partitions: usize,
    pub(crate) capacity: usize,
    pub(crate) hasher: S,
    pub(crate) listener: Option<Listener<K, V, P>>,
    pub(crate) collector: Option<Collector>,
}

impl<K, V, P> Default for Settings<K, V, P, DefaultHashBuilder> {
    fn default() -> Self {
        Settings {
            partitions: default_partitions(),
            capacity: 0,
            hasher: DefaultHashBuilder::default(),
            listener: None,
            collector: None,
        }
    }
}

impl<K, V, P, S> Settings<K, V, P, S> {
    pub(crate) fn set_partitions(&mut self, n: usize) {
        self.partitions = checked_partitions(n);
    }

    pub(crate) fn with_hasher<S2>(self, hasher: S2) -> Settings<K, V, P, S2> {
        Settings {
            partitions: self.partitions,
            capacity: self.capacity,
            hasher,
            listener: self.listener,
            collector: self.collector,
        }
    }

    /// The collector the registry pins.
    pub(crate) fn epoch(&mut self) -> Epoch {
        self.collector.take().map_or(Epoch::Global, Epoch::Own)
    }
}

impl<K, V, P, S: core::fmt::Debug> Settings<K, V, P, S> {
    /// The shared fields, for a builder's `Debug`.
    pub(crate) fn debug_fields(&self, d: &mut core::fmt::DebugStruct<'_, '_>) {
        d.field("partitions", &self.partitions)
            .field("capacity", &self.capacity)
            .field("hasher", &self.hasher)
            .field("listener", &self.listener.is_some());
    }
}

/// The setters both builders share, over their `settings` field. `$builder` is the
/// builder's name; `$with_hasher` rebuilds it around settings of another hasher type.
macro_rules! settings_setters {
    ($builder:ident, |$this:ident, $settings:ident| $with_hasher:expr) => {
        impl<K, V, P, S> $builder<K, V, P, S> {
            /// The number of partitions, rounded up to a power of two.
            ///
            /// # Panics
            ///
            /// If `n` is 0 or more than 65,536.
            pub fn partitions(mut self, n: usize) -> Self {
                self.settings.set_partitions(n);
                self
            }

            /// Sizes the tables for `n` keys (and as many monitored pids) without growing.
            /// A live registry can do the same later with `reserve`.
            ///
            /// `build` panics ("capacity overflow") if tables for `n` keys would not fit in
            /// memory, and, like `Vec`, aborts if the allocator cannot provide them.
            pub fn capacity(mut self, n: usize) -> Self {
                self.settings.capacity = n;
                self
            }

            /// The hasher for keys and pids. For keys chosen by untrusted parties, use a
            /// DoS-resistant one such as `std::hash::RandomState` (SipHash-1-3).
            pub fn hasher<S2: core::hash::BuildHasher>(self, hasher: S2) -> $builder<K, V, P, S2> {
                let $this = self;
                let $settings = $this.settings.with_hasher(hasher);
                $with_hasher
            }

            /// Reclaims removed entries through `collector` instead of crossbeam-epoch's
            /// default one: for loom models (a fresh collector per model) or to isolate this
            /// registry's garbage. Every operation then registers a participant with the
            /// collector, which allocates; the default collector keeps a cached per-thread
            /// handle and is faster.
            pub fn collector(mut self, collector: crossbeam_epoch::Collector) -> Self {
                self.settings.collector = Some(collector);
                self
            }

            /// Calls `f` after every change, in the thread that made it, with no internal
            /// lock held (it may call back into the registry). A panic in `f` propagates to
            /// the caller of the method that made the change; the change stands.
            pub fn listener(
                mut self,
                f: impl Fn(&$crate::Event<'_, K, V, P>) + Send + Sync + 'static,
            ) -> Self {
                self.settings.listener = Some(Box::new(f));
                self
            }
        }
    };
}

pub(crate) use settings_setters;
