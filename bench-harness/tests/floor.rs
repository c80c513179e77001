//! The floor: every phase answers as the peers must, on thread-private tables, in any
//! order, and the tables end empty.

mod common;

use indicatif::ProgressBar;
use regent_bench::floor;
use regent_bench::workload::{Keys, Phase};

/// Two hashbrown maps of 16-byte-plus entries: more than 16 bytes a key, and far less
/// than a kilobyte.
fn plausible(bytes: Option<f64>) -> bool {
    bytes.is_some_and(|b| (16.0..1024.0).contains(&b))
}

#[test]
fn every_phase_in_compare_order_on_one_to_three_threads() {
    let keys = Keys::new(10_007);
    for threads in [1, 2, 3] {
        let pass = floor::run(keys, threads, &Phase::ALL, true, &ProgressBar::hidden())
            .unwrap_or_else(|e| panic!("{threads} threads: {e}"));
        assert_eq!(pass.timings.len(), Phase::ALL.len());
        for timing in &pass.timings {
            assert_eq!((timing.ops, timing.expected), (10_007, 10_007));
            assert!(timing.mops() > 0.0);
        }
        assert!(
            plausible(pass.bytes_per_entry),
            "{:?}",
            pass.bytes_per_entry
        );
    }
}

#[test]
fn phases_start_from_the_state_they_need() {
    // Lookups need a populated table, the read mix leaves a mixed one that a
    // registration must first tear down, and so must the end of the pass.
    let phases = [
        Phase::LookupHit,
        Phase::ReadMix,
        Phase::Register,
        Phase::ReadMix,
    ];
    let pass = floor::run(Keys::new(5_000), 2, &phases, false, &ProgressBar::hidden())
        .expect("every phase answers as expected");
    assert_eq!(pass.timings.len(), 4);
    assert!(pass.timings.iter().all(|t| t.expected == 5_000));
    assert_eq!(pass.bytes_per_entry, None, "no reading asked for");
}

#[test]
fn memory_alone_registers_every_key_untimed() {
    let pass = floor::run(Keys::new(5_000), 2, &[], true, &ProgressBar::hidden())
        .expect("a memory reading");
    assert!(pass.timings.is_empty());
    assert!(
        plausible(pass.bytes_per_entry),
        "{:?}",
        pass.bytes_per_entry
    );
}
