//! `compare` end to end, in-process on a tiny key set, with the beam peer forced absent.

mod common;

use std::fs;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use regent_bench::compare::{self, CompareArgs, Workload};
use regent_bench::count::Count;
use regent_bench::peers::Peer;
use serde_json::Value;

const KEYS: usize = 10_000;

fn args(out: &std::path::Path, peers: Vec<Peer>, workloads: Vec<Workload>) -> CompareArgs {
    CompareArgs {
        keys: vec![Count(KEYS)],
        threads: vec![NonZeroUsize::new(1).unwrap(), NonZeroUsize::new(2).unwrap()],
        peers,
        workloads,
        reps: NonZeroUsize::new(1).unwrap(),
        out: out.to_path_buf(),
        report: out.join("compare.md"),
        // Absent whether or not this machine has Elixir: the skip path is what is tested.
        elixir: PathBuf::from("/nonexistent/regent-bench/elixir"),
        beam_timeout: 60,
        no_floor: false,
    }
}

fn workloads_named(json: &Value) -> Vec<&str> {
    common::strings(&json["workloads"], "name")
}

#[test]
fn tiny_compare_reports_every_peer_and_workload_and_skips_beam() {
    let out = common::scratch_dir("compare");
    let path = compare::run(&args(&out, Vec::new(), Vec::new())).expect("compare run");
    let json = common::read_json(&path);
    let markdown = fs::read_to_string(out.join("compare.md")).unwrap();
    let charts: Vec<String> = fs::read_dir(out.join("compare"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();

    let run = &json["run"];
    for field in ["commit", "rustc", "cpu", "command"] {
        assert!(run[field].is_string(), "run.{field}");
    }
    assert_eq!(run["keys"], serde_json::json!([KEYS]));
    assert_eq!(run["threads"], serde_json::json!([1, 2]));

    // One entry per workload and thread count, every Rust peer in each, beam in none.
    let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
    let expected: Vec<&str> = [names.clone(), names.clone()].concat();
    let mut got = workloads_named(&json);
    got.sort_unstable();
    let mut want = expected;
    want.sort_unstable();
    assert_eq!(got, want);
    for workload in json["workloads"].as_array().unwrap() {
        assert_eq!(workload["keys"], KEYS);
        assert!([1, 2].contains(&workload["threads"].as_u64().unwrap()));
        // Every Rust peer runs every workload (the bag ones through its bag adapter), except
        // regent's batch calls and their single-call baselines; the floor runs the registry
        // workloads and memory, after the peers.
        let name = workload["name"].as_str().unwrap();
        let peers: &[&str] = if regent_only(name) {
            &["regent"]
        } else if ["dispatch", "join_leave"].contains(&name) {
            &["regent", "dashmap", "scc", "papaya", "flurry", "rwlock"]
        } else {
            &[
                "regent", "dashmap", "scc", "papaya", "flurry", "rwlock", "floor",
            ]
        };
        assert_eq!(common::strings(&workload["results"], "peer"), peers);
        let memory = workload["name"] == "memory";
        for result in workload["results"].as_array().unwrap() {
            if memory {
                assert!(result["mops"].is_null());
                assert!(
                    result["bytes_per_entry"].as_f64().unwrap() > 8.0,
                    "{result}"
                );
            } else {
                assert!(result["mops"].as_f64().unwrap() > 0.0, "{result}");
                assert!(result["bytes_per_entry"].is_null());
            }
            let lookup = workload["name"].as_str().unwrap().starts_with("lookup");
            assert_eq!(result["of_dependent_limit"].is_f64(), lookup);
            assert_eq!(result["of_independent_limit"].is_f64(), lookup);
        }
    }

    // Beam is skipped, with the reason, in the JSON, the report and once per configuration.
    let skipped = run["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2);
    for skip in skipped {
        assert_eq!(skip["peer"], "beam");
        assert_eq!(
            skip["reason"],
            "elixir not found; run scripts/install-beam.sh"
        );
    }
    assert!(run.get("beam").is_none());

    let limits = json["limits"].as_array().unwrap();
    assert_eq!(limits.len(), 2);
    for limit in limits {
        assert!(limit["dependent_ns"].as_f64().unwrap() > 0.0);
        assert!(limit["independent_ns"].as_f64().unwrap() > 0.0);
    }

    for name in &names {
        assert!(
            markdown.contains(&format!("\n## {name}\n")),
            "section {name}"
        );
        assert!(charts.contains(&format!("{name}.svg")), "chart {name}");
    }
    assert!(markdown.contains("beam was skipped at 10k keys, 1 thread"));
    assert!(markdown.contains("| regent ÷ best Rust peer |"));
    assert!(markdown.contains("## The memory-access limit"));
    let svg = fs::read_to_string(out.join("compare").join("register.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<rect"));
    assert_eq!(
        array_of_strings(&run["peers"]),
        ["regent", "dashmap", "scc", "papaya", "flurry", "rwlock", "beam", "floor"]
    );
    check_headline(&markdown, &json, "Headline", "regent");
    check_headline(&markdown, &json, "The floor", "floor");
    check_batch_over_single(&markdown, &json);

    // A subset of peers and workloads is all that runs and all that is reported.
    let subset = args(
        &out,
        vec![Peer::Papaya, Peer::Regent],
        vec![Workload::Memory, Workload::Unregister],
    );
    let json = common::read_json(&compare::run(&subset).expect("subset run"));
    assert_eq!(
        workloads_named(&json),
        ["unregister", "memory", "unregister", "memory"]
    );
    for workload in json["workloads"].as_array().unwrap() {
        assert_eq!(
            common::strings(&workload["results"], "peer"),
            ["regent", "papaya", "floor"]
        );
    }
    assert!(json["run"]["skipped"].as_array().unwrap().is_empty());

    // `--no-floor` leaves it out, and so does a run of workloads it does not run.
    for (no_floor, workloads) in [
        (true, vec![Workload::Register]),
        (false, vec![Workload::Dispatch]),
    ] {
        let mut args = args(&out, vec![Peer::Regent, Peer::Rwlock], workloads);
        args.no_floor = no_floor;
        let json = common::read_json(&compare::run(&args).expect("run"));
        assert_eq!(
            array_of_strings(&json["run"]["peers"]),
            ["regent", "rwlock"]
        );
        for workload in json["workloads"].as_array().unwrap() {
            assert_eq!(
                common::strings(&workload["results"], "peer"),
                ["regent", "rwlock"]
            );
        }
        let markdown = fs::read_to_string(out.join("compare.md")).unwrap();
        assert!(!markdown.contains("## The floor"));
        assert_eq!(
            json["run"]["command"]
                .as_str()
                .unwrap()
                .contains("--no-floor"),
            no_floor
        );
    }
    fs::remove_dir_all(&out).unwrap();
}

/// An array of strings, such as `run.peers`.
fn array_of_strings(items: &Value) -> Vec<&str> {
    let items = items.as_array().expect("an array");
    items
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

/// Whether only regent runs the workload named `name`: the batch calls and their
/// single-call baselines (`lookup_single`, `lookup_many`, `register_many`, ...).
fn regent_only(name: &str) -> bool {
    Workload::ALL
        .iter()
        .any(|w| w.name() == name && w.kind() == regent_bench::compare::Kind::Batch)
}

/// The headline table of section `title` has a row per workload with a ratio (not the
/// ones only regent runs; for the floor, not the bag ones either), a column per
/// configuration, and each cell is `numerator`'s figure (regent's or the floor's) over the
/// best Rust peer's in the JSON, regent and the floor aside. Without beam there is no beam
/// headline.
fn check_headline(markdown: &str, json: &Value, title: &str, numerator: &str) {
    let section = markdown
        .split(&format!("\n## {title}\n"))
        .nth(1)
        .expect("a headline section")
        .split("\n## ")
        .next()
        .unwrap();
    assert!(!section.contains("beam"), "no beam headline without beam");
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    assert_eq!(
        cells(lines.next().unwrap()),
        ["workload", "10k keys, 1T", "10k keys, 2T"]
    );
    let rows: Vec<Vec<String>> = lines.skip(1).map(cells).collect();
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let want: Vec<&str> = Workload::ALL
        .iter()
        .filter(|w| numerator == "regent" || w.floor_runs())
        .map(|w| w.name())
        .filter(|&n| !regent_only(n))
        .collect();
    assert_eq!(names, want);
    for row in &rows {
        for (column, threads) in [(1, 1), (2, 2)] {
            let entry = json["workloads"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["name"] == row[0].as_str() && w["threads"] == threads)
                .unwrap();
            let memory = row[0] == "memory";
            let field = if memory { "bytes_per_entry" } else { "mops" };
            let figure = |r: &Value| r[field].as_f64().unwrap();
            let results = entry["results"].as_array().unwrap();
            let of = |peer: &str| results.iter().find(|r| r["peer"] == peer).map(figure);
            let others = results
                .iter()
                .filter(|r| r["peer"] != "regent" && r["peer"] != "floor")
                .map(figure);
            let best = if memory {
                others.fold(f64::INFINITY, f64::min)
            } else {
                others.fold(0.0, f64::max)
            };
            let ratio = of(numerator).unwrap() / best;
            assert_eq!(row[column], format!("{ratio:.2}×"), "{row:?}");
        }
    }
}

/// A batch table in the report: its section, which of the section's tables, the
/// single-call baseline, and the batch figures with their ratio columns.
type BatchTable = (
    &'static str,
    usize,
    &'static str,
    &'static [(usize, &'static str)],
);

/// Each batch section has a row per configuration whose ratios are regent's batch figures
/// over its single-call one in the JSON: `lookup_many` and `lookup_pinned` over
/// `lookup_single`, `register_many` over `register_single` and `process_down_many` over
/// `process_down_single`.
fn check_batch_over_single(markdown: &str, json: &Value) {
    let regent = |name: &str, threads: u64| {
        json["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name && w["threads"] == threads)
            .and_then(|w| w["results"][0]["mops"].as_f64())
            .unwrap_or_else(|| panic!("{name} at {threads} threads"))
    };
    let tables: [BatchTable; 3] = [
        (
            "Batch lookups over single ones",
            0,
            "lookup_single",
            &[(4, "lookup_many"), (6, "lookup_pinned")],
        ),
        (
            "Batch registrations and exits over single ones",
            0,
            "register_single",
            &[(4, "register_many")],
        ),
        (
            "Batch registrations and exits over single ones",
            1,
            "process_down_single",
            &[(4, "process_down_many")],
        ),
    ];
    for (title, index, single, batches) in tables {
        let section = markdown
            .split(&format!("\n## {title}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("section {title}"))
            .split("\n## ")
            .next()
            .unwrap();
        let rows: Vec<Vec<&str>> = section
            .lines()
            .filter(|l| l.starts_with("| 10k"))
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        assert_eq!(rows.len() % 2, 0, "{section}");
        let rows = &rows[2 * index..2 * index + 2];
        for (row, threads) in rows.iter().zip([1, 2]) {
            let base = regent(single, threads);
            for &(column, name) in batches {
                let want = format!("{:.2}×", regent(name, threads) / base);
                assert_eq!(row[column], want, "{name} at {threads} threads");
            }
        }
    }
}
