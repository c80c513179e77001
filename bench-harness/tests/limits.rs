//! `limits` end to end on a tiny array.

mod common;

use std::fs;
use std::num::NonZeroUsize;

use regent_bench::count::Count;
use regent_bench::limits::{self, LimitsArgs, BYTES_PER_KEY, CHAINS};

#[test]
fn tiny_limits_run_measures_both_patterns_and_writes_json() {
    let out = common::scratch_dir("limits");
    let args = LimitsArgs {
        keys: Count(10_000),
        bytes: None,
        threads: NonZeroUsize::new(1).unwrap(),
        out: out.clone(),
    };
    let path = limits::run(&args).expect("limits run");
    assert!(path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("limits-"));
    let json = common::read_json(&path);
    fs::remove_dir_all(&out).unwrap();

    assert_eq!(json["run"]["keys"], 10_000);
    assert!(json["run"]["rustc"].is_string());
    assert_eq!(json["bytes"], 10_000 * BYTES_PER_KEY);
    assert_eq!(json["threads"], 1);
    assert_eq!(json["chains"], CHAINS);
    for field in [
        "dependent_ns",
        "independent_ns",
        "dependent_mops",
        "independent_mops",
    ] {
        let x = json[field].as_f64().unwrap();
        assert!(x.is_finite() && x > 0.0, "{field} = {x}");
    }

    // The library call `compare` uses, on two threads at once.
    let two = limits::measure(1 << 20, 2);
    assert_eq!(two.threads, 2);
    assert!(two.dependent_ns > 0.0 && two.independent_ns > 0.0);
    assert!(two.independent_mops() > 0.0 && two.dependent_mops() > 0.0);
}
