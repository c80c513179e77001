//! `duplicate` end to end, in-process at a tiny size.

mod common;

use std::fs;
use std::num::NonZeroUsize;

use regent_bench::count::Count;
use regent_bench::duplicate::{self, DuplicateArgs};

#[test]
fn tiny_duplicate_run_measures_every_bag_and_writes_the_report() {
    let out = common::scratch_dir("duplicate");
    let report = out.join("duplicate.md");
    let args = DuplicateArgs {
        entries: Count(5_000),
        hot: vec![Count(100), Count(500), Count(2_000)],
        churn_ops: Count(20_000),
        memory_entries: Count(20_000),
        topics: Count(100),
        threads: NonZeroUsize::new(2).unwrap(),
        reps: NonZeroUsize::new(1).unwrap(),
        churn_reps: NonZeroUsize::new(2).unwrap(),
        out: out.clone(),
        report: report.clone(),
    };
    let path = duplicate::run(&args).expect("duplicate run");
    let json = common::read_json(&path);
    let markdown = fs::read_to_string(&report).unwrap();
    for chart in ["churn.svg", "churn-fixed.svg"] {
        let svg = fs::read_to_string(out.join("duplicate").join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("regent (by key)"));
    }
    fs::remove_dir_all(&out).unwrap();

    let peers = &json["peers"];
    assert_eq!(
        common::strings(peers, "peer"),
        [
            "regent (by key)",
            "regent (by pid)",
            "dashmap",
            "scc",
            "papaya",
            "flurry",
            "rwlock"
        ]
    );
    for peer in peers.as_array().unwrap() {
        assert!(peer["dispatch_entries_per_s"].as_f64().unwrap() > 0.0);
        assert!(peer["bytes_per_entry"].as_f64().unwrap() > 16.0);
        let churn = peer["churn"].as_array().unwrap();
        let sizes: Vec<_> = churn.iter().map(|c| c[0].as_u64().unwrap()).collect();
        assert_eq!(sizes, [100, 500, 2_000]);
        assert!(churn.iter().all(|c| c[1].as_f64().unwrap() > 0.0));
        // At a fixed registry size: the smaller keys beside the rest of 2,000 entries under
        // another key, then the 2,000 key alone, the growing curve's last point.
        let fixed = peer["churn_fixed"].as_array().unwrap();
        let points: Vec<_> = fixed
            .iter()
            .map(|c| (c[0].as_u64().unwrap(), c[1].as_u64().unwrap()))
            .collect();
        assert_eq!(points, [(100, 1_900), (500, 1_500), (2_000, 0)]);
        assert!(fixed.iter().all(|c| c[2].as_f64().unwrap() > 0.0));
        assert_eq!(fixed[2][2], churn[2][1]);
        // Every measured point has its passes: three alone, two beside.
        assert_eq!(peer["churn_passes"].as_array().unwrap().len(), 5);
        let regent = peer["peer"].as_str().unwrap().starts_with("regent");
        assert_eq!(peer["parallel_dispatch_entries_per_s"].is_number(), regent);
    }
    assert!(markdown.contains("| dispatch, M entries/s"));
    assert!(markdown.contains("join+leave on a 2k key"));
    assert!(markdown.contains("join+leave on a 100 key beside 1900 entries of another key"));
    assert!(markdown.contains("join+leave on a 500 key beside 1500 entries of another key"));
    assert!(!markdown.contains("join+leave on a 2k key beside"));
    assert!(markdown.contains("(duplicate/churn.svg)"));
    assert!(markdown.contains("(duplicate/churn-fixed.svg)"));
}
