//! Registry metadata: a small typed key/value store next to the entries (Elixir's
//! `Registry.meta/2`, `put_meta/3` and `delete_meta/2`).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The values `put_meta` stores.
type Value = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
pub(crate) struct Meta(RwLock<HashMap<String, Value>>);

impl Meta {
    pub(crate) fn put<T: Any + Send + Sync>(&self, key: String, value: T) {
        let old = self
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Arc::new(value));
        // Dropped here, after the lock: a `Drop` that reads the meta does not deadlock.
        drop(old);
    }

    pub(crate) fn get<T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let value = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)?
            .clone();
        value.downcast().ok()
    }

    pub(crate) fn delete(&self, key: &str) -> bool {
        let old = self
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        // As in `put`: the value is dropped after the lock.
        old.is_some()
    }
}

/// `put_meta`, `meta`, `delete_meta` and `lock`, the same on both registry kinds.
macro_rules! meta_and_lock {
    ($registry:ident) => {
        impl<K, V, P, S> $registry<K, V, P, S> {
            /// Stores `value` under `key` in the registry's metadata, replacing any value
            /// there (Elixir's `put_meta/3`).
            pub fn put_meta<T: std::any::Any + Send + Sync>(
                &self,
                key: impl Into<String>,
                value: T,
            ) {
                self.meta.put(key.into(), value);
            }

            /// The metadata stored under `key`, if there is some of type `T`.
            #[must_use]
            pub fn meta<T: std::any::Any + Send + Sync>(
                &self,
                key: &str,
            ) -> Option<std::sync::Arc<T>> {
                self.meta.get(key)
            }

            /// Deletes the metadata under `key`; returns whether there was some.
            pub fn delete_meta(&self, key: &str) -> bool {
                self.meta.delete(key)
            }
        }

        impl<K: core::hash::Hash + Eq + Clone, V, P, S> $registry<K, V, P, S> {
            /// Runs `f` while holding the lock on `lock_key` and returns its result
            /// (Elixir's `Registry.lock/3`).
            ///
            /// Lock keys live in a namespace of their own: locking a key does not touch an
            /// entry registered under it. Callers waiting on one key enter in arrival order
            /// (FIFO). The lock is released when `f` returns or panics (the panic then
            /// propagates); nothing is poisoned. Re-locking a key `f` already holds waits
            /// forever, like any non-reentrant mutex.
            pub fn lock<R>(&self, lock_key: K, f: impl FnOnce() -> R) -> R {
                self.locks.with(lock_key, f)
            }
        }
    };
}

pub(crate) use meta_and_lock;
