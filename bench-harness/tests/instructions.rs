//! `instructions` end to end on a small table, when valgrind is installed; and its error
//! when it is not.

mod common;

use std::fs;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::Command;

use regent_bench::count::Count;
use regent_bench::instructions::{self, InstructionsArgs};
use regent_bench::peers::Peer;
use regent_bench::workload::Phase;

fn args(out: &std::path::Path, valgrind: &str) -> InstructionsArgs {
    InstructionsArgs {
        keys: Count(20_000),
        runs: NonZeroUsize::new(2).unwrap(),
        peers: vec![Peer::Regent, Peer::Dashmap, Peer::Beam],
        out: out.to_owned(),
        report: out.join("instructions.md"),
        valgrind: PathBuf::from(valgrind),
        exe: Some(PathBuf::from(env!("CARGO_BIN_EXE_regent-bench"))),
    }
}

#[test]
fn counts_every_phase_of_each_peer_net_of_the_loop_or_says_valgrind_is_missing() {
    let out = common::scratch_dir("instructions");
    fs::create_dir_all(&out).unwrap();

    let missing = instructions::run(&args(&out, "/nonexistent/valgrind")).unwrap_err();
    assert!(
        missing.to_string().contains("apt-get install valgrind"),
        "{missing}"
    );

    let installed = Command::new("valgrind").arg("--version").output();
    if !installed.is_ok_and(|o| o.status.success()) {
        eprintln!("valgrind is not installed: only its error was checked");
        fs::remove_dir_all(&out).unwrap();
        return;
    }
    let path = instructions::run(&args(&out, "valgrind")).expect("instructions run");
    let json = common::read_json(&path);
    let report = fs::read_to_string(out.join("instructions.md")).unwrap();
    fs::remove_dir_all(&out).unwrap();

    assert_eq!(json["run"]["keys"], 20_000);
    assert_eq!(json["run"]["runs"], 2);
    assert!(json["run"]["valgrind"]
        .as_str()
        .unwrap()
        .starts_with("valgrind"));
    let phases = json["phases"].as_array().unwrap();
    let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
    assert_eq!(common::strings(&json["phases"], "name"), names);
    for phase in phases {
        // beam was skipped: it does not run in this process.
        assert_eq!(
            common::strings(&phase["results"], "peer"),
            ["regent", "dashmap"]
        );
        // The loop, the key and a call: a few tens of instructions, never nothing.
        let baseline = phase["baseline"].as_f64().unwrap();
        assert!((5.0..200.0).contains(&baseline), "{phase}");
        for result in phase["results"].as_array().unwrap() {
            // Net of the baseline, every operation of a real registry does some work.
            let n = result["instructions_per_op"].as_f64().unwrap();
            assert!((10.0..100_000.0).contains(&n), "{phase}");
            // The median of two runs is the later one: the most.
            let (min, max) = (
                result["min"].as_f64().unwrap(),
                result["max"].as_f64().unwrap(),
            );
            assert!(min <= n && n <= max && n == max, "{phase}");
        }
    }
    // A refused registration is a lookup and an error: cheaper than registering.
    let of = |name: &str, peer: usize| {
        phases.iter().find(|p| p["name"] == name).unwrap()["results"][peer]["instructions_per_op"]
            .as_f64()
            .unwrap()
    };
    for peer in 0..2 {
        assert!(of("register_conflict", peer) < of("register", peer));
    }
    assert!(report.contains("| lookup_hit"), "{report}");
    assert!(report.contains("regent ÷ fewest other"), "{report}");
    assert!(report.contains("Spread over the 2 runs"), "{report}");
}
