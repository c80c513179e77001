//! Benchmark harness for regent.
//!
//! The subcommands share one workload ([`workload`]): process `i` registers one name, its
//! session id; names are looked up, unregistered, or every process is reported down.
//!
//! - [`scale`] runs regent alone at runtime scale and checks that teardown leaves no
//!   entry, monitor or byte behind.
//! - [`engine`] runs regent and the in-process [`peers`] side by side on the core phases
//!   and reports regent's ratio to the best peer.
//! - [`compare`] runs every peer, Elixir's `Registry` included, on every workload at
//!   several key and thread counts, and quotes lookups against the machine's [`limits`].
//! - [`duplicate`] runs regent's duplicate registries beside the [`bags`] peers: dispatch,
//!   hot-key churn, memory per entry.
//! - [`floor`] runs the same phases on thread-private hashbrown tables: what a registry
//!   would reach if sharing it cost nothing, the ceiling for any ratio to a peer.
//! - [`limits`] measures dependent and independent random-access time over a table-sized
//!   array.
//! - [`instructions`] counts, with callgrind, the instructions one operation of each Rust
//!   peer executes: exact where timings on a shared machine are not.
//!
//! Memory figures come from the counting allocator in [`alloc`], which the binary, the
//! benches and the tests install as the global allocator.

pub mod alloc;
pub mod bags;
pub mod compare;
pub mod count;
pub mod duplicate;
pub mod engine;
pub mod floor;
pub mod instructions;
pub mod limits;
pub mod peers;
pub mod report;
pub mod runner;
pub mod scale;
pub mod workload;

/// Errors end a run: a registry that returned a wrong result has no figures worth keeping.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
