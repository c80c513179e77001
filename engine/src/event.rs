//! Change notifications.

/// A change, passed to the registry's listener.
///
/// The listener set with `builder().listener(f)` is called after each change is complete,
/// in the thread that made it, with no internal lock held: it may call back into the
/// registry. Unlike Elixir's listeners, exits are reported too ([`Event::Down`]).
/// A listener that panics does not undo the change; the panic propagates to the caller of
/// the method that made the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a, K, V, P> {
    /// `pid` registered `key` with `value`.
    Registered {
        /// The key.
        key: &'a K,
        /// The owner.
        pid: P,
        /// The value registered.
        value: &'a V,
    },
    /// `pid` removed its entry under `key` (`unregister`).
    Unregistered {
        /// The key.
        key: &'a K,
        /// The former owner.
        pid: P,
    },
    /// The entry of `pid` under `key` was removed because the runtime reported `pid` down.
    Down {
        /// The key.
        key: &'a K,
        /// The process that exited.
        pid: P,
    },
}

/// The boxed listener a registry keeps.
pub(crate) type Listener<K, V, P> = Box<dyn for<'a> Fn(&Event<'a, K, V, P>) + Send + Sync>;
