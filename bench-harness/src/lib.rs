//! Benchmark harness for regent.
//!
//! Two subcommands share one workload ([`workload`]): process `i` registers one name, its
//! session id; every name is looked up; every process is reported down.
//!
//! - [`scale`] runs regent alone at runtime scale and checks that teardown leaves no
//!   entry, monitor or byte behind.
//! - [`engine`] runs regent and its [`peers`] side by side in one process and reports
//!   regent's ratio to the best peer.
//!
//! Memory figures come from the counting allocator in [`alloc`], which the binary, the
//! benches and the tests install as the global allocator.

pub mod alloc;
pub mod count;
pub mod engine;
pub mod peers;
pub mod report;
pub mod runner;
pub mod scale;
pub mod workload;

/// Errors end a run: a registry that returned a wrong result has no figures worth keeping.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
