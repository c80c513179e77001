//! `scale --quick` end to end, in-process: the JSON schema, the zero counts, the leak.

mod common;

use std::fs;

use regent_bench::scale::{self, ScaleArgs, EXPLAINED_LEAK_BYTES};
use serde_json::Value;

/// The fields of `object`, sorted.
fn fields(object: &Value) -> Vec<&str> {
    let mut fields: Vec<&str> = object
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    fields
}

fn has_all(object: &Value, required: &[&str]) {
    let present = fields(object);
    for field in required {
        assert!(present.contains(field), "no `{field}` in {present:?}");
    }
}

#[test]
fn quick_scale_run_leaves_nothing_behind_and_writes_json_and_report() {
    let out = common::scratch_dir("scale");
    let report = out.join("scale.md");
    let args = ScaleArgs {
        quick: true,
        out: out.clone(),
        report: report.clone(),
        ..ScaleArgs::default()
    };
    let path = scale::run(&args).expect("scale run");
    assert!(path.starts_with(&out));
    let json = common::read_json(&path);
    let markdown = fs::read_to_string(&report).expect("report");
    let charts: Vec<String> = ["throughput", "memory", "growth"]
        .iter()
        .map(|c| fs::read_to_string(out.join(format!("scale-{c}.svg"))).expect("chart"))
        .collect();
    // `--from` renders that result into another report, with its own charts, without
    // running again.
    let again = out.join("again.md");
    let from = ScaleArgs {
        from: Some(path.clone()),
        report: again.clone(),
        ..ScaleArgs::default()
    };
    assert_eq!(scale::run(&from).expect("render"), path);
    let rendered = fs::read_to_string(&again).expect("rendered report");
    assert_eq!(rendered.replace("again-", "scale-"), markdown);
    assert!(out.join("again-growth.svg").exists());
    // An older result with more processes keeps its own section in the regenerated report;
    // a smaller one does not.
    assert!(!markdown.contains("## The largest run"));
    let mut larger = json.clone();
    larger["run"]["processes"] = (json["run"]["processes"].as_u64().unwrap() * 10).into();
    let older = out.join("scale-20000101T000000Z.json");
    fs::write(&older, serde_json::to_string(&larger).unwrap()).unwrap();
    scale::markdown::regenerate(&out, &again).expect("regenerate");
    let with_larger = fs::read_to_string(&again).expect("regenerated report");
    assert!(
        with_larger.contains("## The largest run: 500k processes"),
        "{with_larger}"
    );
    assert!(with_larger.contains("scale-20000101T000000Z.json"));
    fs::remove_dir_all(&out).unwrap();

    // The schema of the issue, exactly as named there.
    assert_eq!(
        fields(&json),
        ["final", "growth", "memory", "phases", "run"]
    );
    let run = &json["run"];
    has_all(
        run,
        &[
            "processes",
            "threads",
            "partitions",
            "topics",
            "commit",
            "rustc",
            "cpu",
            "allocator",
            "hasher",
        ],
    );
    assert_eq!(run["processes"], 50_000);
    assert_eq!(run["topics"], 2);
    assert!(run["threads"].as_u64().unwrap() >= 1);
    assert!(run["command"].as_str().unwrap().contains("--processes 50k"));

    assert_eq!(
        common::strings(&json["phases"], "name"),
        ["spawn", "steady", "teardown"]
    );
    for phase in json["phases"].as_array().unwrap() {
        has_all(
            phase,
            &[
                "name", "ops", "seconds", "mops", "p50_ns", "p99_ns", "p999_ns", "max_ns",
            ],
        );
        assert!(phase["ops"].as_u64().unwrap() > 0);
        assert!(phase["mops"].as_f64().unwrap() > 0.0);
        assert!(phase["p50_ns"].as_u64() <= phase["p99_ns"].as_u64());
    }
    let phases = json["phases"].as_array().unwrap();
    // Every process registers a name and two topics, and is reported down in both.
    assert_eq!(phases[0]["ops"], 150_000);
    assert_eq!(phases[2]["ops"], 100_000);
    let mix = &phases[1]["mix"];
    assert_eq!(
        common::strings(mix, "name"),
        ["send", "broadcast", "restart"]
    );
    for kind in mix.as_array().unwrap() {
        assert!(kind["ops"].as_u64().unwrap() > 0, "{kind}");
    }
    assert!(!json["growth"].as_array().unwrap().is_empty());

    let memory = &json["memory"];
    has_all(
        memory,
        &[
            "baseline_bytes",
            "peak_bytes",
            "bytes_per_process",
            "after_teardown_bytes",
            "leaked_bytes",
        ],
    );
    // Registrations cost memory, so the counting allocator is really installed, and the
    // registries' own count agrees with it.
    let per_process = memory["bytes_per_process"].as_f64().unwrap();
    let by_stats = memory["registry_bytes_per_process"].as_f64().unwrap();
    assert!(per_process > 24.0, "{per_process}");
    assert!(
        (per_process / by_stats - 1.0).abs() < 0.05,
        "{per_process} vs {by_stats}"
    );
    let split: f64 = [
        "unique_entry_bytes_per_process",
        "duplicate_entry_bytes_per_process",
        "monitor_bytes_per_process",
    ]
    .iter()
    .map(|f| memory[f].as_f64().expect("a split figure"))
    .sum();
    assert!(
        (split - by_stats).abs() < 1e-6 * by_stats,
        "{split} vs {by_stats}"
    );
    assert!(memory["peak_bytes"].as_u64() > memory["baseline_bytes"].as_u64());
    assert!(memory["timeline"].as_array().unwrap().len() > 2);
    // Entries are freed on teardown: what may stay is crossbeam-epoch's own queue node.
    let leaked = memory["leaked_bytes"].as_i64().unwrap();
    assert!(leaked <= EXPLAINED_LEAK_BYTES, "{leaked} bytes leaked");
    assert_eq!(memory["explained_leak_bytes"], EXPLAINED_LEAK_BYTES);

    let left = &json["final"];
    has_all(
        left,
        &[
            "unique_count",
            "duplicate_count",
            "monitors",
            "stale_lookups",
            "dead_deliveries",
        ],
    );
    for zero in [
        "unique_count",
        "duplicate_count",
        "monitors",
        "stale_lookups",
        "dead_deliveries",
        "lost_names",
        "wrong_results",
    ] {
        assert_eq!(left[zero], 0, "final.{zero}");
    }
    assert!(left["delivered"].as_u64().unwrap() > 0);
    assert_eq!(left["delivered"], left["mailbox_total"]);

    assert!(markdown.contains("scale --processes 50k"));
    assert!(markdown.contains("| stale lookups "));
    assert!(markdown.contains("Every check passed"));
    for chart in &charts {
        assert!(
            chart.starts_with("<svg") && chart.contains("<polyline") && chart.contains("<text")
        );
    }
}
