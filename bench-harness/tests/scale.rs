//! `scale` end to end, in-process on a small run.

mod common;

use std::fs;
use std::num::NonZeroUsize;

use regent_bench::count::Count;
use regent_bench::scale::{self, ScaleArgs};

#[test]
fn small_scale_run_empties_the_registry_and_writes_json() {
    let out = common::scratch_dir("scale");
    let args = ScaleArgs {
        processes: Some(Count(20_000)),
        threads: NonZeroUsize::new(2),
        partitions: NonZeroUsize::new(4),
        out: out.clone(),
        quick: false,
    };
    let path = scale::run(&args).expect("scale run");
    assert!(path.starts_with(&out));
    let json = common::read_json(&path);
    fs::remove_dir_all(&out).unwrap();

    assert_eq!(json["run"]["processes"], 20_000);
    assert_eq!(json["run"]["threads"], 2);
    assert_eq!(json["run"]["partitions"], 4);
    assert_eq!(json["final"]["unique_count"], 0);
    assert_eq!(json["final"]["monitors"], 0);
    assert_eq!(
        common::strings(&json["phases"], "name"),
        ["register", "lookup_hit", "process_down"]
    );
    for phase in json["phases"].as_array().unwrap() {
        assert_eq!(phase["ops"], 20_000);
        assert!(phase["mops"].as_f64().unwrap() > 0.0);
    }
    let memory = &json["memory"];
    // Registrations cost memory, so the counting allocator is really installed.
    assert!(memory["bytes_per_process"].as_f64().unwrap() > 8.0);
    assert!(memory["peak_bytes"].as_u64() >= memory["baseline_bytes"].as_u64());
    // Entries are freed on teardown: what may stay is crossbeam-epoch's own few KiB.
    assert!(memory["leaked_bytes"].as_i64().unwrap() < 16 * 1024);
}
