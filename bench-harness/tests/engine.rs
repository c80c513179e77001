//! `engine` end to end, in-process on a small key set.

mod common;

use std::fs;
use std::num::NonZeroUsize;

use regent_bench::count::Count;
use regent_bench::engine::{self, EngineArgs};

#[test]
fn small_engine_run_compares_every_peer_and_writes_both_reports() {
    let out = common::scratch_dir("engine");
    let report = out.join("engine.md");
    let args = EngineArgs {
        keys: Count(20_000),
        threads: NonZeroUsize::new(2).unwrap(),
        reps: NonZeroUsize::new(2).unwrap(),
        out: out.clone(),
        report: report.clone(),
    };
    let path = engine::run(&args).expect("engine run");
    let json = common::read_json(&path);
    let markdown = fs::read_to_string(&report).unwrap();
    fs::remove_dir_all(&out).unwrap();

    let workloads = &json["workloads"];
    let names = common::strings(workloads, "name");
    assert_eq!(
        names,
        ["register", "lookup_hit", "lookup_miss", "process_down"]
    );
    for workload in workloads.as_array().unwrap() {
        assert_eq!(workload["keys"], 20_000);
        assert_eq!(
            common::strings(&workload["results"], "peer"),
            ["regent", "dashmap", "rwlock"]
        );
        for result in workload["results"].as_array().unwrap() {
            assert!(result["mops"].as_f64().unwrap() > 0.0);
            assert!(result["bytes_per_entry"].as_f64().unwrap() > 8.0);
        }
        // The floor runs beside the peers but is not one of them.
        assert!(workload["floor"]["mops"].as_f64().unwrap() > 0.0);
        assert!(workload["floor"]["bytes_per_entry"].as_f64().unwrap() > 8.0);
    }
    assert!(markdown.contains("engine --keys 20k --threads 2 --reps 2"));
    assert!(markdown.contains("| bytes per entry "));
    assert!(markdown.contains("| floor | regent ÷ best peer | floor ÷ best peer |"));
    // Each row's floor ratio is the floor's figure over the better of dashmap and rwlock.
    for name in ["| register Mops/s", "| process_down Mops/s"] {
        let line = markdown
            .lines()
            .find(|l| l.starts_with(name))
            .expect("a row per workload");
        let cells: Vec<f64> = line
            .split('|')
            .map(|c| c.trim().trim_end_matches('×'))
            .filter_map(|c| c.parse().ok())
            .collect();
        let [_, dashmap, rwlock, floor, _, ceiling] = cells[..] else {
            panic!("a row of six figures: {line}");
        };
        let expected = floor / dashmap.max(rwlock);
        assert!(
            (ceiling - expected).abs() <= 0.01 + expected * 0.02,
            "{line}: {ceiling} vs {expected}"
        );
    }
}
