//! The beam peer's script under a real `elixir`, when this machine has one
//! (`scripts/install-beam.sh`); without it the test says so and passes, as `compare` does.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use regent_bench::compare::Workload;
use regent_bench::peers::beam;

#[test]
fn the_script_reports_every_workload_when_elixir_is_present() {
    let elixir = Path::new("elixir");
    if Command::new(elixir).arg("--version").output().is_err() {
        eprintln!("beam: skipped (elixir not found; run scripts/install-beam.sh)");
        return;
    }
    let run = beam::run(elixir, 5_000, 2, Duration::from_secs(300)).expect("the script runs");
    assert_eq!((run.keys, run.threads), (5_000, 2));
    assert!(!run.elixir.is_empty() && !run.otp.is_empty());
    // The batch workloads (`lookup_single`, `lookup_many`, `register_many`, ...) are
    // regent's own calls, measured on its own tables: Elixir's Registry runs none of them.
    for workload in Workload::ALL
        .into_iter()
        .filter(|w| w.kind() != regent_bench::compare::Kind::Batch)
    {
        let name = workload.name();
        let figure = run
            .figure(name)
            .unwrap_or_else(|| panic!("no {name} figure"));
        let x = if workload == Workload::Memory {
            figure.bytes_per_entry
        } else {
            figure.mops
        };
        assert!(
            x.is_some_and(|x| x > 0.0),
            "{}: {figure:?}",
            workload.name()
        );
    }
    // Measured ahead of the duplicate-registry workloads on the Rust side.
    for name in ["dispatch", "join_leave"] {
        assert!(run
            .figure(name)
            .and_then(|f| f.mops)
            .is_some_and(|x| x > 0.0));
    }
}
