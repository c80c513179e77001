//! Errors that hand ownership back to the caller.

use core::fmt;

/// The key is already registered: returned by [`Unique::register`](crate::Unique::register).
///
/// Nothing changed in the registry; the rejected `key` and `value` come back together with
/// the pid that owns the key at the moment the registration lost.
#[derive(Clone, PartialEq, Eq)]
pub struct AlreadyRegistered<P, K, V> {
    /// The process that holds the key.
    pub owner: P,
    /// The key that was not registered.
    pub key: K,
    /// The value that was not registered.
    pub value: V,
}

impl<P: fmt::Debug, K: fmt::Debug, V> fmt::Debug for AlreadyRegistered<P, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlreadyRegistered")
            .field("owner", &self.owner)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<P: fmt::Debug, K: fmt::Debug, V> fmt::Display for AlreadyRegistered<P, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key {:?} is already registered by {:?}",
            self.key, self.owner
        )
    }
}

impl<P: fmt::Debug, K: fmt::Debug, V> std::error::Error for AlreadyRegistered<P, K, V> {}

/// Why [`Unique::try_register`](crate::Unique::try_register) registered nothing.
#[derive(Clone, PartialEq, Eq)]
pub enum TryRegisterError<P, K, V> {
    /// Another process holds the key.
    Taken(AlreadyRegistered<P, K, V>),
    /// The registry holds `max_entries` entries already; key and value are handed back.
    Full {
        /// The key that was not registered.
        key: K,
        /// The value that was not registered.
        value: V,
    },
}

impl<P: fmt::Debug, K: fmt::Debug, V> fmt::Debug for TryRegisterError<P, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRegisterError::Taken(e) => f.debug_tuple("Taken").field(e).finish(),
            TryRegisterError::Full { key, .. } => f
                .debug_struct("Full")
                .field("key", key)
                .finish_non_exhaustive(),
        }
    }
}

impl<P: fmt::Debug, K: fmt::Debug, V> fmt::Display for TryRegisterError<P, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRegisterError::Taken(e) => fmt::Display::fmt(e, f),
            TryRegisterError::Full { key, .. } => {
                write!(f, "registry is full: key {key:?} was not registered")
            }
        }
    }
}

impl<P: fmt::Debug, K: fmt::Debug, V> std::error::Error for TryRegisterError<P, K, V> {}

impl<P, K, V> From<AlreadyRegistered<P, K, V>> for TryRegisterError<P, K, V> {
    fn from(e: AlreadyRegistered<P, K, V>) -> Self {
        TryRegisterError::Taken(e)
    }
}

/// The key is taken: returned by [`Unique::register_or_lookup`](crate::Unique::register_or_lookup)
/// with the current owner and a clone of its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Existing<P, V> {
    /// The process that holds the key.
    pub owner: P,
    /// A clone of the value it registered.
    pub value: V,
}

impl<P: fmt::Debug, V> fmt::Display for Existing<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the key is registered by {:?}", self.owner)
    }
}

impl<P: fmt::Debug, V: fmt::Debug> std::error::Error for Existing<P, V> {}
