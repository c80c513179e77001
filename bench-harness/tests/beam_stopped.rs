//! A beam run that the timeout stops part-way keeps the workloads it finished, in
//! `beam::run` and in `compare`'s JSON and report. A shell script stands in for `elixir`:
//! it prints what the real script prints up to a point, then hangs.
#![cfg(unix)]

mod common;

use std::fs;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use regent_bench::compare::{self, CompareArgs, Workload};
use regent_bench::count::Count;
use regent_bench::peers::{beam, Peer};

const KEYS: usize = 10_000;

const STARTED: &str = r#"{"started":{"elixir":"1.14.0","keys":10000,"keys_per_process":10,"otp":"25","threads":1,"workloads":[]}}"#;
const REGISTER: &str = r#"{"finished":{"mops":0.5,"name":"register","ops":10000}}"#;
const MEMORY: &str = r#"{"finished":{"bytes_per_entry":212.5,"name":"memory"}}"#;

#[test]
fn a_stopped_beam_run_keeps_what_it_finished() {
    let dir = common::scratch_dir("beam-stopped");
    let stopped = "elixir ran past the 1s timeout and was stopped during its lookup_hit workload";

    // `beam::run`: the figures finished before the timeout, and where it stopped.
    let lines = [
        STARTED,
        r#"{"running":"register"}"#,
        REGISTER,
        MEMORY,
        r#"{"running":"lookup_hit"}"#,
    ];
    let elixir = common::fake_elixir(&dir, &lines, 60);
    let start = Instant::now();
    let run = beam::run(&elixir, KEYS, 1, Duration::from_secs(1)).expect("a stopped run");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the kill ends it"
    );
    assert_eq!(run.stopped.as_deref(), Some(stopped));
    assert_eq!((run.elixir.as_str(), run.keys), ("1.14.0", KEYS));
    assert_eq!(run.figure("register").and_then(|f| f.mops), Some(0.5));
    assert!(run.figure("lookup_hit").is_none());

    // Nothing finished: skipped, as before this change.
    let bare = common::fake_elixir(
        &dir.join("bare"),
        &[STARTED, r#"{"running":"register"}"#],
        60,
    );
    let skipped = beam::run(&bare, KEYS, 1, Duration::from_secs(1)).unwrap_err();
    assert_eq!(skipped.0, "elixir ran past the 1s timeout and was stopped");

    // `compare`: beam's finished workload sits beside regent's, the stopped one has only
    // regent, and the JSON and the report say where beam stopped.
    let out = dir.join("out");
    let args = CompareArgs {
        keys: vec![Count(KEYS)],
        threads: vec![NonZeroUsize::new(1).unwrap()],
        peers: vec![Peer::Regent, Peer::Beam],
        workloads: vec![Workload::Register, Workload::LookupHit, Workload::Memory],
        reps: NonZeroUsize::new(1).unwrap(),
        out: out.clone(),
        report: out.join("compare.md"),
        elixir,
        beam_timeout: 1,
        no_floor: true,
    };
    let json = common::read_json(&compare::run(&args).expect("compare run"));
    let markdown = fs::read_to_string(out.join("compare.md")).unwrap();
    fs::remove_dir_all(&dir).unwrap();

    let run = &json["run"];
    assert!(run["skipped"].as_array().unwrap().is_empty());
    let stops = run["stopped"].as_array().unwrap();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["peer"], "beam");
    assert_eq!(stops[0]["reason"], stopped);
    assert_eq!(run["beam"]["elixir"], "1.14.0");
    let peers = |name: &str| -> Vec<String> {
        let workload = json["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap();
        common::strings(&workload["results"], "peer")
            .into_iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(peers("register"), ["regent", "beam"]);
    assert_eq!(peers("memory"), ["regent", "beam"]);
    assert_eq!(peers("lookup_hit"), ["regent"]);
    let beam_register = json["workloads"][0]["results"][1]["mops"].as_f64();
    assert_eq!(beam_register, Some(0.5));
    assert!(
        markdown.contains(&format!(
            "beam was stopped at 10k keys, 1 thread: {stopped}."
        )),
        "{markdown}"
    );
    assert!(!markdown.contains("beam was skipped"));
}
