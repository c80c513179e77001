//! Differential fuzzing of `Unique` against a `HashMap` model: long random sequences of
//! every operation (register, try_register at a `max_entries` limit, unregister,
//! update_value, lookup, whereis, contains_key, keys, count, is_empty, monitors, select,
//! count_select, process_down), comparing every result.
//!
//! Sequences come from a seeded splitmix generator, so a run is replayed exactly by its
//! seed. `REGENT_FUZZ_OPS` sets the total number of operations (default 1,000,000) and
//! `REGENT_FUZZ_SEED` the seed (default: random, printed). A mismatch is shrunk to a
//! short sequence (by dropping chunks of operations while it still fails) and printed with
//! the seed that replays it.

mod common;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use common::{env_count, random_seed, SplitMix};
use foldhash::fast::FixedState;
use regent::{AlreadyRegistered, Pid, TryRegisterError, Unique};

/// Operations per sequence: long enough to grow, churn and compact the tables.
const SEQUENCE: usize = 5_000;
/// Pid slots: each holds one live pid at a time; a slot's pid that went down is replaced by
/// a fresh one (`slot << 32 | generation`), as a runtime never reuses a pid.
const SLOTS: u64 = 8;

#[derive(Clone, Copy, Debug)]
enum Op {
    Register(u64, u16, u32),
    TryRegister(u64, u16, u32),
    Unregister(u64, u16),
    Update(u64, u16, u32),
    Lookup(u16),
    Whereis(u16),
    Contains(u16),
    Keys(u64),
    ProcessDown(u64),
    Count,
    IsEmpty,
    Monitors,
    /// `select` of the entries whose key is `r` modulo `m`.
    Select(u16, u16),
    /// `count_select` of the entries whose value is `r` modulo `m`.
    CountSelect(u32, u32),
}

/// One sequence's configuration.
#[derive(Clone, Copy, Debug)]
struct Config {
    partitions: usize,
    /// Keys are drawn from `0..keys`.
    keys: u16,
    /// `max_entries`, if any: only `try_register` registers then.
    limit: Option<usize>,
    /// The registry's hash seed.
    hash_seed: u64,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Register(Result<(), AlreadyRegistered<Pid, u16, u32>>),
    TryRegister(Result<(), TryRegisterError<Pid, u16, u32>>),
    Bool(bool),
    /// `update_value`'s result and whether it called `f`.
    Updated(Option<(u32, u32)>, bool),
    Lookup(Option<(Pid, u32)>),
    Whereis(Option<Pid>),
    Keys(Vec<u16>),
    Size(usize),
    Entries(Vec<(u16, Pid, u32)>),
}

fn update(old: u32, operand: u32) -> u32 {
    old.wrapping_mul(0x9E37_79B9) ^ operand
}

/// The specification: each key's owner and value.
#[derive(Default)]
struct Model(BTreeMap<u16, (Pid, u32)>);

impl Model {
    fn owns(&self, pid: u64, key: u16) -> bool {
        self.0.get(&key).is_some_and(|e| e.0 == Pid::new(pid))
    }

    fn apply(&mut self, op: Op, limit: Option<usize>) -> Outcome {
        match op {
            Op::Register(pid, key, value) => Outcome::Register(match self.0.get(&key) {
                Some(&(owner, _)) => Err(AlreadyRegistered { owner, key, value }),
                None => {
                    self.0.insert(key, (Pid::new(pid), value));
                    Ok(())
                }
            }),
            Op::TryRegister(pid, key, value) => {
                Outcome::TryRegister(if limit.is_some_and(|max| self.0.len() >= max) {
                    // The limit is checked first: a full registry reports Full even for a
                    // taken key.
                    Err(TryRegisterError::Full { key, value })
                } else {
                    match self.0.get(&key) {
                        Some(&(owner, _)) => Err(TryRegisterError::Taken(AlreadyRegistered {
                            owner,
                            key,
                            value,
                        })),
                        None => {
                            self.0.insert(key, (Pid::new(pid), value));
                            Ok(())
                        }
                    }
                })
            }
            Op::Unregister(pid, key) => {
                let owned = self.owns(pid, key);
                if owned {
                    self.0.remove(&key);
                }
                Outcome::Bool(owned)
            }
            Op::Update(pid, key, operand) => {
                if !self.owns(pid, key) {
                    return Outcome::Updated(None, false);
                }
                let value = &mut self.0.get_mut(&key).unwrap().1;
                let old = std::mem::replace(value, update(*value, operand));
                Outcome::Updated(Some((*value, old)), true)
            }
            Op::Lookup(key) => Outcome::Lookup(self.0.get(&key).copied()),
            Op::Whereis(key) => Outcome::Whereis(self.0.get(&key).map(|e| e.0)),
            Op::Contains(key) => Outcome::Bool(self.0.contains_key(&key)),
            Op::Keys(pid) => Outcome::Keys(
                self.0
                    .iter()
                    .filter(|(_, e)| e.0 == Pid::new(pid))
                    .map(|(&k, _)| k)
                    .collect(),
            ),
            Op::ProcessDown(pid) => {
                let before = self.0.len();
                self.0.retain(|_, e| e.0 != Pid::new(pid));
                Outcome::Size(before - self.0.len())
            }
            Op::Count => Outcome::Size(self.0.len()),
            Op::IsEmpty => Outcome::Bool(self.0.is_empty()),
            Op::Monitors => {
                Outcome::Size(self.0.values().map(|e| e.0).collect::<BTreeSet<_>>().len())
            }
            Op::Select(m, r) => Outcome::Entries(
                self.0
                    .iter()
                    .filter(|(&k, _)| k % m == r)
                    .map(|(&k, &(p, v))| (k, p, v))
                    .collect(),
            ),
            Op::CountSelect(m, r) => {
                Outcome::Size(self.0.values().filter(|e| e.1 % m == r).count())
            }
        }
    }
}

/// The registry under test: foldhash, as by default, but seeded from the sequence seed so
/// that a run (and every rerun while shrinking) is deterministic.
type Reg = Unique<u16, u32, Pid, FixedState>;

fn apply(reg: &Reg, op: Op) -> Outcome {
    match op {
        Op::Register(pid, key, value) => Outcome::Register(reg.register(Pid::new(pid), key, value)),
        Op::TryRegister(pid, key, value) => {
            Outcome::TryRegister(reg.try_register(Pid::new(pid), key, value))
        }
        Op::Unregister(pid, key) => Outcome::Bool(reg.unregister(Pid::new(pid), &key)),
        Op::Update(pid, key, operand) => {
            let called = Cell::new(false);
            let result = reg.update_value(Pid::new(pid), &key, |&old| {
                assert!(!called.replace(true), "f called twice");
                update(old, operand)
            });
            Outcome::Updated(result, called.get())
        }
        Op::Lookup(key) => Outcome::Lookup(reg.lookup(&key)),
        Op::Whereis(key) => Outcome::Whereis(reg.whereis(&key)),
        Op::Contains(key) => Outcome::Bool(reg.contains_key(&key)),
        Op::Keys(pid) => {
            let mut keys = reg.keys(Pid::new(pid));
            keys.sort_unstable();
            Outcome::Keys(keys)
        }
        Op::ProcessDown(pid) => Outcome::Size(reg.process_down(Pid::new(pid))),
        Op::Count => Outcome::Size(reg.count()),
        Op::IsEmpty => Outcome::Bool(reg.is_empty()),
        Op::Monitors => Outcome::Size(reg.monitors()),
        Op::Select(m, r) => {
            let mut entries = reg.select(|&k, p, &v| (k % m == r).then_some((k, p, v)));
            entries.sort_unstable();
            Outcome::Entries(entries)
        }
        Op::CountSelect(m, r) => Outcome::Size(reg.count_select(|_, _, &v| v % m == r)),
    }
}

/// A random sequence for `config`. Pids are fresh per slot generation; keys and values
/// are small so that operations collide. The generator keeps its own model so that most
/// unregistrations and updates target an entry that exists (by its owner).
fn generate(config: Config, seed: u64, len: usize) -> Vec<Op> {
    let mut rng = SplitMix::new(seed);
    let mut model = Model::default();
    let mut generation = [0u64; SLOTS as usize];
    let mut ops = Vec::with_capacity(len);
    // Phases shift the mix between growth and drain, so that the tables grow, churn and
    // compact within one sequence.
    let (mut registers, mut removals) = (40, 10);
    for n in 0..len {
        if n % 500 == 0 {
            (registers, removals) = [(15, 45), (40, 10), (60, 5)][rng.below(3) as usize];
        }
        let slot = rng.below(SLOTS);
        let mut pid = slot << 32 | generation[slot as usize];
        let mut key = rng.below(u64::from(config.keys)) as u16;
        if !model.0.is_empty() && rng.percent(70) {
            // An existing entry, by its owner.
            let i = rng.below(model.0.len() as u64) as usize;
            let (&k, &(owner, _)) = model.0.iter().nth(i).unwrap();
            (key, pid) = (k, owner.get());
        }
        let value = rng.below(1000) as u32;
        let op = match rng.below(47 + removals + registers) {
            0..=9 => Op::Update(pid, key, value),
            10..=21 => Op::Lookup(key),
            22..=25 => Op::Whereis(key),
            26..=28 => Op::Contains(key),
            29..=34 => Op::Keys(pid),
            // Growth phases let pids live, so that the tables reach a few thousand entries.
            35..=37 if registers < 60 => Op::ProcessDown(pid),
            35..=37 => Op::Lookup(key),
            38..=40 => Op::Count,
            41 => Op::IsEmpty,
            42..=44 => Op::Monitors,
            45 => Op::Select(1 + rng.below(4) as u16, 0),
            46 => Op::CountSelect(1 + rng.below(3) as u32, 0),
            r if r < 47 + removals => Op::Unregister(pid, key),
            // Register panics at a limit: limited registries only see try_register.
            r => {
                // Mostly a random key (growth), sometimes a taken one (a conflict).
                if rng.percent(85) {
                    key = rng.below(u64::from(config.keys)) as u16;
                }
                let slot = rng.below(SLOTS);
                let pid = slot << 32 | generation[slot as usize];
                // Register panics at a limit: limited registries only see try_register.
                if config.limit.is_some() || r % 3 == 0 {
                    Op::TryRegister(pid, key, value)
                } else {
                    Op::Register(pid, key, value)
                }
            }
        };
        if let Op::ProcessDown(pid) = op {
            generation[(pid >> 32) as usize] += 1;
        }
        model.apply(op, config.limit);
        ops.push(op);
    }
    ops
}

/// Runs `ops` on a fresh registry built for `config` and on the model, told `limit` (the
/// same as `config`'s, except to show that a wrong model is caught); the first mismatch is
/// the error.
fn run(config: Config, ops: &[Op], limit: Option<usize>) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut builder = Unique::builder().partitions(config.partitions);
    if let Some(max) = config.limit {
        builder = builder.max_entries(max);
    }
    let reg: Reg = builder
        .hasher(FixedState::with_seed(config.hash_seed))
        .build();
    let mut model = Model::default();
    for (i, &op) in ops.iter().enumerate() {
        let (got, want) = (apply(&reg, op), model.apply(op, limit));
        if got != want {
            return Err(format!(
                "step {i}: {op:?}\n  registry: {got:?}\n  model:    {want:?}"
            ));
        }
        tally.count(op, &want, model.0.len());
    }
    let all = apply(&reg, Op::Select(1, 0));
    let expected = model.apply(Op::Select(1, 0), None);
    if all != expected {
        return Err(format!(
            "final contents\n  registry: {all:?}\n  model:    {expected:?}"
        ));
    }
    Ok(tally)
}

/// How often each interesting outcome came up: evidence that the sequences reach them.
#[derive(Debug, Default)]
struct Tally {
    registered: usize,
    taken: usize,
    full: usize,
    removed: usize,
    updated: usize,
    missed: usize,
    most_entries: usize,
}

impl Tally {
    fn count(&mut self, op: Op, outcome: &Outcome, entries: usize) {
        match outcome {
            Outcome::Register(Ok(())) | Outcome::TryRegister(Ok(())) => self.registered += 1,
            Outcome::Register(Err(_)) | Outcome::TryRegister(Err(TryRegisterError::Taken(_))) => {
                self.taken += 1;
            }
            Outcome::TryRegister(Err(TryRegisterError::Full { .. })) => self.full += 1,
            Outcome::Updated(Some(_), _) => self.updated += 1,
            Outcome::Updated(None, _) | Outcome::Lookup(None) => self.missed += 1,
            _ => {}
        }
        if let (Op::Unregister(..), Outcome::Bool(true))
        | (Op::ProcessDown(_), Outcome::Size(1..)) = (op, outcome)
        {
            self.removed += 1;
        }
        self.most_entries = self.most_entries.max(entries);
    }

    fn add(&mut self, other: &Tally) {
        self.registered += other.registered;
        self.taken += other.taken;
        self.full += other.full;
        self.removed += other.removed;
        self.updated += other.updated;
        self.missed += other.missed;
        self.most_entries = self.most_entries.max(other.most_entries);
    }
}

/// Shrinks a failing sequence: drops chunks of operations (halving the chunk size down to
/// one) as long as what is left still fails.
fn shrink(mut ops: Vec<Op>, fails: impl Fn(&[Op]) -> bool) -> Vec<Op> {
    let mut chunk = ops.len() / 2;
    while chunk > 0 {
        let mut at = 0;
        while at < ops.len() {
            let mut candidate = ops.clone();
            candidate.drain(at..(at + chunk).min(ops.len()));
            if fails(&candidate) {
                ops = candidate;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    ops
}

#[test]
fn long_random_sequences_match_the_model() {
    let total = env_count("REGENT_FUZZ_OPS", 1_000_000) as usize;
    let seed = env_count("REGENT_FUZZ_SEED", random_seed());
    // (partitions, keys, max_entries)
    let configs = [
        (1, 64, None),
        (8, 64, None),
        (1, 512, None),
        (8, 512, None),
        (1, 4096, None),
        (8, 4096, None),
        (1, 128, Some(40)),
        (8, 128, Some(40)),
        (8, 16, Some(0)),
    ];
    let mut rng = SplitMix::new(seed);
    let (mut done, mut sequences, mut tally) = (0, 0, Tally::default());
    while done < total {
        let (partitions, keys, limit) = configs[sequences % configs.len()];
        let len = SEQUENCE.min(total - done);
        let sequence_seed = rng.next_u64();
        let config = Config {
            partitions,
            keys,
            limit,
            hash_seed: sequence_seed,
        };
        let ops = generate(config, sequence_seed, len);
        let result = run(config, &ops, config.limit);
        if let Ok(t) = &result {
            tally.add(t);
        }
        if let Err(first) = result {
            let small = shrink(ops, |ops| run(config, ops, config.limit).is_err());
            let mut listing = String::new();
            for op in &small {
                writeln!(listing, "    {op:?},").unwrap();
            }
            let last = run(config, &small, config.limit).err().unwrap_or_default();
            panic!(
                "sequence {sequences} ({config:?}) diverged from the model: {first}\n\
                 replay the run with REGENT_FUZZ_SEED={seed} REGENT_FUZZ_OPS={total} \
                 (sequence seed {sequence_seed}); shrunk to {} operations:\n{listing}{last}",
                small.len()
            );
        }
        done += len;
        sequences += 1;
    }
    eprintln!(
        "fuzz: {done} operations in {sequences} sequences matched the model (seed {seed}); \
         outcomes: {tally:?}"
    );
}

#[test]
fn a_wrong_model_is_caught_and_shrunk_to_the_two_calls_that_show_it() {
    // The model believes in a limit of one entry that the registry does not have: the
    // second registration while one entry is live tells them apart.
    let limited = Config {
        partitions: 1,
        keys: 8,
        limit: Some(1),
        hash_seed: 7,
    };
    let unlimited = Config {
        limit: None,
        ..limited
    };
    let ops = generate(limited, 42, 400);
    let fails = |ops: &[Op]| run(unlimited, ops, limited.limit).is_err();
    assert!(fails(&ops));
    let small = shrink(ops, fails);
    assert_eq!(small.len(), 2, "{small:?}");
    assert!(small.iter().all(|op| matches!(op, Op::TryRegister(..))));
}
