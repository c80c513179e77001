//! What a scale run writes to `results/scale-<UTC>.json`, read back to render the report,
//! and the tables printed from it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::sampler::Sample;
use crate::count::Count;
use crate::report::{figure, Provenance, Table};
use crate::runner::Latency;

/// A name that is static when written and owned when read back.
pub type Name = Cow<'static, str>;

/// One scale run.
#[derive(Debug, Serialize, Deserialize)]
pub struct ScaleResult {
    pub run: Run,
    /// `spawn`, `steady`, `teardown`.
    pub phases: Vec<PhaseFigures>,
    /// Registration latency while the tables grew, by processes spawned.
    pub growth: Vec<GrowthFigures>,
    pub memory: Memory,
    #[serde(rename = "final")]
    pub left: Final,
}

/// The run's parameters and where it ran.
#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub processes: usize,
    /// Scheduler threads, each pinned to a core.
    pub threads: usize,
    /// Partitions of each registry.
    pub partitions: usize,
    /// How the duplicate registry partitions its entries: `key` or `pid`.
    pub partition_by: Name,
    /// Topics each process joins.
    pub topics: usize,
    /// Distinct topics, their sizes Zipf-distributed.
    pub topic_keys: usize,
    pub zipf_exponent: f64,
    /// Share of steady operations that crash and restart a process.
    pub churn: f64,
    /// Share of steady operations that broadcast to a topic.
    pub broadcasts: f64,
    /// Length of the steady phase.
    pub seconds: f64,
    pub seed: u64,
    #[serde(flatten)]
    pub origin: Origin,
}

/// [`Provenance`], owned so that it can be read back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Origin {
    pub commit: String,
    pub rustc: String,
    pub cpu: String,
    pub cores: usize,
    pub allocator: String,
    pub hasher: String,
    pub command: String,
}

impl From<Provenance> for Origin {
    fn from(p: Provenance) -> Self {
        Self {
            commit: p.commit,
            rustc: p.rustc,
            cpu: p.cpu,
            cores: p.cores,
            allocator: p.allocator.to_owned(),
            hasher: p.hasher.to_owned(),
            command: p.command,
        }
    }
}

impl Origin {
    /// A markdown list saying where the figures came from and how to get them again.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "- machine: {} ({} cores)\n- rustc: {}\n- commit: {}\n- allocator: {}\n\
             - hasher: {}\n- command: `{}`\n",
            self.cpu,
            self.cores,
            self.rustc,
            self.commit,
            self.allocator,
            self.hasher,
            self.command
        )
    }
}

/// One phase. `spawn` counts registrations, `teardown` `process_down` calls (two per
/// process), `steady` runtime operations (a send, a broadcast or a restart).
#[derive(Debug, Serialize, Deserialize)]
pub struct PhaseFigures {
    pub name: Name,
    pub ops: u64,
    pub seconds: f64,
    pub mops: f64,
    #[serde(flatten)]
    pub latency: Latency,
    /// The steady phase's operations by kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mix: Vec<MixFigures>,
}

/// One kind of steady operation.
#[derive(Debug, Serialize, Deserialize)]
pub struct MixFigures {
    pub name: Name,
    pub ops: u64,
    #[serde(flatten)]
    pub latency: Latency,
}

/// Latency of the registrations made while the spawned processes grew to `processes`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GrowthFigures {
    pub processes: usize,
    #[serde(flatten)]
    pub latency: Latency,
}

/// Live bytes as the counting allocator sees them, and the registries' own split.
#[derive(Debug, Serialize, Deserialize)]
pub struct Memory {
    /// Before the process table and the registries existed.
    pub baseline_bytes: usize,
    /// High-water mark over the run, baseline included.
    pub peak_bytes: usize,
    /// What spawning every process added to live bytes (the registries' growth, garbage
    /// reclaimed), per process; the process table is not included.
    pub bytes_per_process: f64,
    /// The registries' own count of the same (`Stats` table and entry bytes).
    pub registry_bytes_per_process: f64,
    /// The unique registry: names and their monitors.
    pub unique_bytes_per_process: f64,
    /// The duplicate registry: topic memberships and their monitors.
    pub duplicate_bytes_per_process: f64,
    /// The name tables. `None` only in results of older versions, which solved the split
    /// from the table layout and left it out mid-migration.
    pub unique_entry_bytes_per_process: Option<f64>,
    /// The topic tables and the bags with their entries.
    pub duplicate_entry_bytes_per_process: Option<f64>,
    /// Both registries' monitor tables and the duplicate monitors' key lists.
    pub monitor_bytes_per_process: Option<f64>,
    /// The simulated runtime's own record per process (state word and mailbox).
    pub process_record_bytes: usize,
    /// Throwaway registrations it took after spawning to finish the migrations in flight
    /// (growth advances only as writers of a table help it), so that the figures above
    /// count each table once.
    pub migration_writes: usize,
    /// Tables still migrating when the figures were taken anyway (0 unless finishing them
    /// gave up); their new arrays count in the bytes and spoil the split.
    pub migrations_in_flight: usize,
    /// After teardown, the registries and the process table dropped, and reclamation
    /// settled.
    pub after_teardown_bytes: usize,
    /// `after_teardown_bytes - baseline_bytes`.
    pub leaked_bytes: i64,
    /// The most `leaked_bytes` may be: memory crossbeam-epoch keeps for itself.
    pub explained_leak_bytes: i64,
    /// Live bytes over the run.
    pub timeline: Vec<Sample>,
}

/// What the registries held after every process exited, and the run's checks.
#[derive(Debug, Serialize, Deserialize)]
pub struct Final {
    pub unique_count: usize,
    pub duplicate_count: usize,
    /// Monitors left in both registries.
    pub monitors: usize,
    /// Sends and broadcasts that returned a pid already reported down.
    pub stale_lookups: u64,
    /// Messages that landed in the mailbox of a process already reported down.
    pub dead_deliveries: u64,
    /// Sends that found no owner for a process alive throughout.
    pub lost_names: u64,
    /// Results no correct registry returns: a wrong owner, value or count, a taken name.
    pub wrong_results: u64,
    /// Messages delivered, as the senders counted them.
    pub delivered: u64,
    /// Messages in the mailboxes at the end; must equal `delivered`.
    pub mailbox_total: u64,
    /// Sends that found no owner because the target was restarting (expected).
    pub restarting_misses: u64,
}

impl ScaleResult {
    /// The checks that failed, as sentences; empty if the run is sound.
    #[must_use]
    pub fn failures(&self) -> Vec<String> {
        let f = &self.left;
        let mut failures = Vec::new();
        for (what, n) in [
            ("unique entries left", f.unique_count as u64),
            ("duplicate entries left", f.duplicate_count as u64),
            ("monitors left", f.monitors as u64),
            ("stale lookups", f.stale_lookups),
            ("dead deliveries", f.dead_deliveries),
            ("lost names", f.lost_names),
            ("wrong results", f.wrong_results),
        ] {
            if n != 0 {
                failures.push(format!("{n} {what}"));
            }
        }
        if f.mailbox_total != f.delivered {
            failures.push(format!(
                "{} messages in mailboxes but {} delivered",
                f.mailbox_total, f.delivered
            ));
        }
        let m = &self.memory;
        if m.leaked_bytes > m.explained_leak_bytes {
            failures.push(format!(
                "{} bytes leaked (at most {} explained)",
                m.leaked_bytes, m.explained_leak_bytes
            ));
        }
        failures
    }

    /// The phase, memory and final tables, as markdown that also reads in a terminal.
    #[must_use]
    pub fn tables(&self) -> String {
        let mut phases = Table::new(&[
            "phase", "ops", "seconds", "Mops/s", "p50 ns", "p99 ns", "p99.9 ns", "max ns",
        ]);
        for p in &self.phases {
            phases.row(latency_row(p.name.to_string(), p.ops, Some(p), &p.latency));
            for m in &p.mix {
                let name = format!("{}: {}", p.name, m.name);
                phases.row(latency_row(name, m.ops, None, &m.latency));
            }
        }

        let m = &self.memory;
        let bytes = |x: Option<f64>| x.map_or_else(|| "unknown".to_owned(), figure);
        let mut memory = Table::new(&["memory", "value"]);
        for (what, value) in [
            (
                "registry bytes per process (allocator)",
                figure(m.bytes_per_process),
            ),
            (
                "registry bytes per process (Stats)",
                figure(m.registry_bytes_per_process),
            ),
            ("  unique entries", bytes(m.unique_entry_bytes_per_process)),
            (
                "  duplicate entries",
                bytes(m.duplicate_entry_bytes_per_process),
            ),
            (
                "  monitors (with key lists)",
                bytes(m.monitor_bytes_per_process),
            ),
            (
                "process record bytes (runtime)",
                m.process_record_bytes.to_string(),
            ),
            ("baseline live bytes", m.baseline_bytes.to_string()),
            (
                "peak live MiB",
                figure(m.peak_bytes as f64 / f64::from(1 << 20)),
            ),
            (
                "live bytes after teardown",
                m.after_teardown_bytes.to_string(),
            ),
            (
                "leaked bytes",
                format!(
                    "{} (explained up to {})",
                    m.leaked_bytes, m.explained_leak_bytes
                ),
            ),
        ] {
            memory.row(vec![what.to_owned(), value]);
        }

        let f = &self.left;
        let mut left = Table::new(&["after teardown", "count", "must be"]);
        for (what, n, must) in [
            ("unique entries", f.unique_count as u64, "0"),
            ("duplicate entries", f.duplicate_count as u64, "0"),
            ("monitors", f.monitors as u64, "0"),
            ("stale lookups", f.stale_lookups, "0"),
            ("dead deliveries", f.dead_deliveries, "0"),
            ("lost names", f.lost_names, "0"),
            ("wrong results", f.wrong_results, "0"),
            ("messages delivered", f.delivered, "= in mailboxes"),
            ("messages in mailboxes", f.mailbox_total, "= delivered"),
            ("sends to a restarting process", f.restarting_misses, "any"),
        ] {
            left.row(vec![what.to_owned(), n.to_string(), must.to_owned()]);
        }
        format!("{phases}\n{memory}\n{left}")
    }

    /// One line saying what ran.
    #[must_use]
    pub fn headline(&self) -> String {
        let r = &self.run;
        format!(
            "regent scale: {} processes on {} pinned schedulers, {} partitions \
             (duplicate by {}), {} topics each of {} (Zipf s={}), churn {}, broadcasts {}, \
             steady {} s",
            Count(r.processes),
            r.threads,
            r.partitions,
            r.partition_by,
            r.topics,
            Count(r.topic_keys),
            r.zipf_exponent,
            r.churn,
            r.broadcasts,
            r.seconds
        )
    }
}

fn latency_row(name: String, ops: u64, phase: Option<&PhaseFigures>, l: &Latency) -> Vec<String> {
    let (seconds, mops) = phase.map_or((String::new(), String::new()), |p| {
        (format!("{:.3}", p.seconds), figure(p.mops))
    });
    vec![
        name,
        Count(usize::try_from(ops).unwrap_or(usize::MAX)).to_string(),
        seconds,
        mops,
        l.p50_ns.to_string(),
        l.p99_ns.to_string(),
        l.p999_ns.to_string(),
        l.max_ns.to_string(),
    ]
}
