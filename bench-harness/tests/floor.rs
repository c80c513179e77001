//! The floor: every phase answers as the peers must, on thread-private tables, and a
//! wrong answer or an entry left behind is an error, not a figure.

mod common;

use indicatif::ProgressBar;
use regent_bench::floor;
use regent_bench::workload::{Keys, Phase};

#[test]
fn every_phase_runs_on_private_tables_and_leaves_them_empty() {
    let keys = Keys::new(10_007);
    for threads in [1, 2, 3] {
        let phases = [
            Phase::Register,
            Phase::RegisterConflict,
            Phase::LookupHit,
            Phase::LookupMiss,
            Phase::Unregister,
            Phase::Register,
            Phase::ProcessDown,
        ];
        let pass = floor::run(keys, threads, &phases, &ProgressBar::hidden())
            .unwrap_or_else(|e| panic!("{threads} threads: {e}"));
        assert_eq!(pass.timings.len(), phases.len());
        for timing in &pass.timings {
            assert_eq!((timing.ops, timing.expected), (10_007, 10_007));
            assert!(timing.mops() > 0.0);
        }
        // Two hashbrown maps of 16-byte-plus entries: more than 16 bytes a key, and far
        // less than a kilobyte.
        assert!(
            (16.0..1024.0).contains(&pass.bytes_per_entry),
            "{}",
            pass.bytes_per_entry
        );
    }
}

#[test]
fn a_wrong_answer_is_an_error() {
    // A second registration of every key is refused, which `Register` counts as wrong.
    let phases = [Phase::Register, Phase::Register, Phase::ProcessDown];
    let err = floor::run(Keys::new(1_000), 2, &phases, &ProgressBar::hidden())
        .expect_err("the second registration must fail");
    assert_eq!(
        err.to_string(),
        "floor register: 1000 of 1000 operations returned a wrong result"
    );
}

#[test]
fn entries_left_behind_are_an_error() {
    let phases = [Phase::Register, Phase::LookupHit];
    let err = floor::run(Keys::new(1_000), 2, &phases, &ProgressBar::hidden())
        .expect_err("lookups leave every entry in place");
    assert_eq!(
        err.to_string(),
        "the floor holds 1000 entries after its last phase"
    );
}

#[test]
#[should_panic(expected = "the floor starts from empty tables")]
fn phases_must_start_with_registration() {
    let _ = floor::run(
        Keys::new(10),
        1,
        &[Phase::LookupHit],
        &ProgressBar::hidden(),
    );
}
