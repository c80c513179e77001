//! Differential test: random operation sequences run on `Duplicate` and on a `Vec` model
//! must give the same result at every step, for both partitionings.
//!
//! Two drivers: proptest (short sequences, shrunk on failure) and a long seeded fuzz run
//! (`REGENT_FUZZ_OPS` operations in all, default 1,000,000; `REGENT_FUZZ_SEED` replays one).

use std::collections::HashSet;
use std::ops::Range;

mod common;

use common::{env_count, random_seed, SplitMix};
use proptest::prelude::*;
use regent::{Duplicate, PartitionBy, Pid};

#[derive(Debug, Clone)]
enum Op {
    Register(u64, u8, u32),
    Unregister(u64, u8),
    /// Removes the pid's entries under the key whose value is odd.
    UnregisterOdd(u64, u8),
    Lookup(u8),
    /// Entries under the key whose pid is even.
    MatchingEvenPid(u8),
    Values(u8, u64),
    Keys(u64),
    ProcessDown(u64),
    Count,
    Monitors,
}

/// Few pids and keys, so that operations collide often.
const PIDS: Range<u64> = 0..6;
const KEYS: Range<u8> = 0..6;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (PIDS, KEYS, 0..8u32).prop_map(|(p, k, v)| Op::Register(p, k, v)),
        2 => (PIDS, KEYS).prop_map(|(p, k)| Op::Unregister(p, k)),
        1 => (PIDS, KEYS).prop_map(|(p, k)| Op::UnregisterOdd(p, k)),
        2 => KEYS.prop_map(Op::Lookup),
        1 => KEYS.prop_map(Op::MatchingEvenPid),
        1 => (KEYS, PIDS).prop_map(|(k, p)| Op::Values(k, p)),
        1 => PIDS.prop_map(Op::Keys),
        1 => PIDS.prop_map(Op::ProcessDown),
        1 => Just(Op::Count),
        1 => Just(Op::Monitors),
    ]
}

/// The specification: a list of `(key, pid, value)` entries.
#[derive(Default)]
struct Model(Vec<(u8, Pid, u32)>);

/// One operation's result, comparable between the registry and the model. Lists are
/// sorted: the registry promises no order.
#[derive(Debug, PartialEq)]
enum Outcome {
    Unit,
    Size(usize),
    Entries(Vec<(Pid, u32)>),
    Values(Vec<u32>),
    Keys(Vec<u8>),
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v
}

impl Model {
    fn remove(&mut self, keep: impl Fn(&(u8, Pid, u32)) -> bool) -> Outcome {
        let before = self.0.len();
        self.0.retain(keep);
        Outcome::Size(before - self.0.len())
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Register(pid, key, value) => {
                self.0.push((key, Pid::new(pid), value));
                Outcome::Unit
            }
            Op::Unregister(pid, key) => self.remove(|e| (e.0, e.1) != (key, Pid::new(pid))),
            Op::UnregisterOdd(pid, key) => {
                self.remove(|e| (e.0, e.1) != (key, Pid::new(pid)) || e.2 % 2 == 0)
            }
            Op::Lookup(key) => Outcome::Entries(sorted(
                self.0
                    .iter()
                    .filter(|e| e.0 == key)
                    .map(|e| (e.1, e.2))
                    .collect(),
            )),
            Op::MatchingEvenPid(key) => Outcome::Entries(sorted(
                self.0
                    .iter()
                    .filter(|e| e.0 == key && e.1.get() % 2 == 0)
                    .map(|e| (e.1, e.2))
                    .collect(),
            )),
            Op::Values(key, pid) => Outcome::Values(sorted(
                self.0
                    .iter()
                    .filter(|e| (e.0, e.1) == (key, Pid::new(pid)))
                    .map(|e| e.2)
                    .collect(),
            )),
            Op::Keys(pid) => Outcome::Keys(sorted(
                self.0
                    .iter()
                    .filter(|e| e.1 == Pid::new(pid))
                    .map(|e| e.0)
                    .collect(),
            )),
            Op::ProcessDown(pid) => self.remove(|e| e.1 != Pid::new(pid)),
            Op::Count => Outcome::Size(self.0.len()),
            Op::Monitors => Outcome::Size(self.0.iter().map(|e| e.1).collect::<HashSet<_>>().len()),
        }
    }
}

fn apply(reg: &Duplicate<u8, u32>, op: &Op) -> Outcome {
    match *op {
        Op::Register(pid, key, value) => {
            reg.register(Pid::new(pid), key, value);
            Outcome::Unit
        }
        Op::Unregister(pid, key) => Outcome::Size(reg.unregister(Pid::new(pid), &key)),
        Op::UnregisterOdd(pid, key) => {
            Outcome::Size(reg.unregister_match(Pid::new(pid), &key, |v| v % 2 == 1))
        }
        Op::Lookup(key) => Outcome::Entries(sorted(reg.lookup(&key))),
        Op::MatchingEvenPid(key) => {
            Outcome::Entries(sorted(reg.matching(&key, |p, _| p.get() % 2 == 0)))
        }
        Op::Values(key, pid) => Outcome::Values(sorted(reg.values(&key, Pid::new(pid)))),
        Op::Keys(pid) => Outcome::Keys(sorted(reg.keys(Pid::new(pid)))),
        Op::ProcessDown(pid) => Outcome::Size(reg.process_down(Pid::new(pid))),
        Op::Count => Outcome::Size(reg.count()),
        Op::Monitors => Outcome::Size(reg.monitors()),
    }
}

fn run(partitions: usize, by: PartitionBy, ops: &[Op]) -> Result<(), TestCaseError> {
    let reg = Duplicate::builder()
        .partitions(partitions)
        .partition_by(by)
        .build();
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        prop_assert_eq!(apply(&reg, op), model.apply(op), "step {}: {:?}", i, op);
    }
    let entries = sorted(reg.select(|&k, pid, &v| Some((k, pid, v))));
    prop_assert_eq!(entries, sorted(model.0), "final contents");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn matches_the_model_with_one_partition_by_key(ops in prop::collection::vec(op(), 0..200)) {
        run(1, PartitionBy::Key, &ops)?;
    }

    #[test]
    fn matches_the_model_with_eight_partitions_by_key(ops in prop::collection::vec(op(), 0..200)) {
        run(8, PartitionBy::Key, &ops)?;
    }

    #[test]
    fn matches_the_model_with_one_partition_by_pid(ops in prop::collection::vec(op(), 0..200)) {
        run(1, PartitionBy::Pid, &ops)?;
    }

    #[test]
    fn matches_the_model_with_eight_partitions_by_pid(ops in prop::collection::vec(op(), 0..200)) {
        run(8, PartitionBy::Pid, &ops)?;
    }
}

/// One random operation, with the same mix as the proptest strategy.
fn random_op(rng: &mut SplitMix) -> Op {
    let mut below = |n: u64| rng.next_u64() % n;
    let (pid, key) = (below(PIDS.end), below(u64::from(KEYS.end)) as u8);
    match below(16) {
        0..=4 => Op::Register(pid, key, below(8) as u32),
        5 | 6 => Op::Unregister(pid, key),
        7 => Op::UnregisterOdd(pid, key),
        8 | 9 => Op::Lookup(key),
        10 => Op::MatchingEvenPid(key),
        11 => Op::Values(key, pid),
        12 => Op::Keys(pid),
        13 => Op::ProcessDown(pid),
        14 => Op::Count,
        _ => Op::Monitors,
    }
}

/// Long random sequences against the model, every configuration, seeded and replayable.
#[test]
fn fuzz_against_the_model() {
    let total = env_count("REGENT_FUZZ_OPS", 1_000_000);
    let seed = std::env::var("REGENT_FUZZ_SEED")
        .map_or_else(|_| random_seed(), |s| s.parse().expect("a u64 seed"));
    let mut rng = SplitMix::new(seed);
    let configs = [
        (1, PartitionBy::Key),
        (8, PartitionBy::Key),
        (1, PartitionBy::Pid),
        (8, PartitionBy::Pid),
    ];
    // Sequences of 10,000 operations, so the model's linear scans stay cheap.
    let sequences = total.div_ceil(10_000);
    for n in 0..sequences {
        let (partitions, by) = configs[n as usize % configs.len()];
        let ops: Vec<Op> = (0..10_000).map(|_| random_op(&mut rng)).collect();
        if let Err(e) = run(partitions, by, &ops) {
            panic!("fuzz seed {seed} (REGENT_FUZZ_SEED={seed} replays it), sequence {n}: {e}");
        }
    }
    eprintln!(
        "fuzzed {} operations on Duplicate (seed {seed})",
        sequences * 10_000
    );
}
