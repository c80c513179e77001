//! regent: a lock-free process registry engine.
//!
//! Elixir's `Registry` is what makes "one process per entity" work on the BEAM: processes
//! register under a key, others find them by key, and entries vanish when their process
//! dies. regent is that engine for Rust runtimes and actor frameworks:
//!
//! * [`Unique`] registries: atomic register-if-absent (the loser learns the owner),
//!   lock-free lookups, owner-only unregister and [`update_value`](Unique::update_value);
//! * [`Duplicate`] registries (bags) for pub/sub, partitioned by key or by pid
//!   ([`PartitionBy`]): O(1) join and leave however hot the key, and
//!   [`dispatch`](Duplicate::dispatch) over a snapshot that never blocks a writer;
//! * a monitor index: [`process_down`](Unique::process_down) removes every entry of an
//!   exited process in O(its entries), and in a unique registry all of its names go at
//!   one instant to every reader (`Unique`'s docs, "Exits are atomic");
//! * the rest of Elixir's surface: `put_meta` / `meta` / `delete_meta`, per-key
//!   [`lock`](Unique::lock), naming through [`Mailbox`] values ([`Unique::send`]), and from
//!   gproc [`await_registered`](Unique::await_registered),
//!   [`register_or_lookup`](Unique::register_or_lookup) and
//!   [`give_away`](Unique::give_away);
//! * listeners ([`Event`]), [`Stats`] for watching table size,
//!   [`reserve`](Unique::reserve) to grow the tables before a bulk load, and process ids of
//!   the runtime's own type ([`ProcessId`]).
//!
//! Underneath, each registry splits the hash space into partitions (one per core by
//! default); each partition is an open-addressing table of inline, write-once records
//! behind a compact array of control words, with lock-free reads, CAS inserts and
//! cooperative incremental growth, reclaimed with crossbeam-epoch.
//!
#![doc = include_str!("../docs/table.md")]
//!
//! # The runtime's contract
//!
//! The pid is an argument because Rust has no `self()`. A runtime calls `register` for a
//! pid only while that pid is alive, and `process_down(pid)` once when it exits.
//!
//! # Panics in `Drop`
//!
//! A registry drops a removed key or value late: once no reader can still hold it, in
//! whichever thread next collects crossbeam-epoch's garbage (at the start of any call that
//! pins, or in [`reclaim`]). A panic from its `Drop` impl would have no caller to go to,
//! so regent catches it where it happens, after the panic hook has reported it as usual,
//! and counts it in [`Stats::drop_panics`]. That key or value is not touched again (a
//! panicking `Drop` still drops its fields while unwinding); every other entry and all
//! other garbage are dropped and freed as usual; counts and [`Stats::retired_bytes`] stay
//! exact. The same holds when a registry is dropped with entries in it, and for the copy
//! of a key that [`Duplicate::register`] drops because the key has a bag already. A unique
//! entry whose key and value both panic aborts the process, as any drop glue that panics
//! while unwinding does.
//!
//! What a call hands back or turns down is its caller's to drop, and a panic there reaches
//! that caller: the key and value in a registration error, the clones that
//! [`Unique::update_value`] returns, the key and value that
//! [`Unique::register_or_lookup`] turns down, and metadata that `put_meta` replaces or
//! `delete_meta` deletes (dropped after the registry's metadata lock is released, so a
//! `Drop` may read the metadata).
//!
//! # Panics in `Hash` and `Eq`
//!
//! Keys' and pids' `Hash` and `Eq` impls (and the registry's `BuildHasher`) should not
//! panic; derived impls on plain data never do. If one does while a call hashes or compares
//! the caller's own key or pid, the panic reaches that caller and the registry is as if the
//! call had not been made: no entry, no monitor, no count changed, and the key and value
//! are dropped. (A [`Duplicate`] registration may already have written its entry into the
//! key's bag when the pid's `Eq` panics: it is given back unpublished, so no reader sees it,
//! and the bag can still close.) The exceptions are the calls that compare each of a pid's
//! entries as they remove them, [`Duplicate::unregister`] (the keys' `Eq`) and
//! [`Unique::process_down`] (the pids' `Eq` and the keys' `Hash`): a panic there stops the
//! removals, and the entries removed so far stay removed, counted and reported to the
//! listener, while the rest stay registered and monitored, before the panic goes on.
//!
//! A table that grows rehashes the keys (and pids) it holds, in whichever writer is copying
//! them. A `Hash` that panics there would leave the group being copied frozen for good, and
//! every later writer of that group waiting for it. regent aborts the process instead, after
//! printing why: a loud failure rather than a silent hang. A `Hash` or `Eq` that changes its
//! answer for a stored key or pid is a logic error, as in any hash map: what the registry
//! then does is not specified (it may miss the key, or panic), but it is never undefined
//! behaviour.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod batch;
mod counter;
mod duplicate;
mod entry;
mod error;
mod event;
mod hash;
mod keylock;
mod limit;
mod mailbox;
mod meta;
mod monitor;
mod partition;
mod pid;
mod raw;
mod reclaim;
mod settings;
mod stats;
mod sync;
mod unique;
mod waiters;

pub use crate::duplicate::{Duplicate, DuplicateBuilder, PartitionBy};
pub use crate::error::{AlreadyRegistered, Existing, TryRegisterError};
pub use crate::event::Event;
pub use crate::hash::DefaultHashBuilder;
pub use crate::mailbox::{Mailbox, SendError};
pub use crate::pid::{Pid, ProcessId};
#[cfg(loom)]
#[doc(hidden)]
pub use crate::raw::stripe_every_bag;
pub use crate::reclaim::reclaim;
pub use crate::stats::Stats;
pub use crate::unique::{Pinned, Unique, UniqueBuilder};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
