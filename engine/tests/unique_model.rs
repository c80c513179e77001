//! Differential test: random operation sequences run on `Unique` and on a `HashMap` model
//! must give the same result at every step.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use proptest::prelude::*;
use regent::{AlreadyRegistered, Pid, Unique};

#[derive(Debug, Clone)]
enum Op {
    Register(u64, u8, u32),
    Unregister(u64, u8),
    UpdateValue(u64, u8, u32),
    Lookup(u8),
    Whereis(u8),
    Keys(u64),
    ProcessDown(u64),
    Count,
    Monitors,
}

/// Few pids and keys, so that operations collide often.
const PIDS: Range<u64> = 0..6;
const KEYS: Range<u8> = 0..16;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (PIDS, KEYS, any::<u32>()).prop_map(|(p, k, v)| Op::Register(p, k, v)),
        2 => (PIDS, KEYS).prop_map(|(p, k)| Op::Unregister(p, k)),
        2 => (PIDS, KEYS, any::<u32>()).prop_map(|(p, k, v)| Op::UpdateValue(p, k, v)),
        2 => KEYS.prop_map(Op::Lookup),
        1 => KEYS.prop_map(Op::Whereis),
        1 => PIDS.prop_map(Op::Keys),
        1 => PIDS.prop_map(Op::ProcessDown),
        1 => Just(Op::Count),
        1 => Just(Op::Monitors),
    ]
}

/// The specification: each key maps to its owner and value.
#[derive(Default)]
struct Model(HashMap<u8, (Pid, u32)>);

/// One operation's result, comparable between the registry and the model.
#[derive(Debug, PartialEq)]
enum Outcome {
    Register(Result<(), AlreadyRegistered<Pid, u8, u32>>),
    Removed(bool),
    /// `update_value`'s result and whether it called `f`.
    Updated(Option<(u32, u32)>, bool),
    Lookup(Option<(Pid, u32)>),
    Whereis(Option<Pid>),
    Keys(Vec<u8>),
    Size(usize),
}

/// The update applied by `UpdateValue`: it depends on the old value, so a wrong `old`
/// passed to `f` shows in the result.
fn update(old: u32, operand: u32) -> u32 {
    old.wrapping_mul(31) ^ operand
}

impl Model {
    fn owns(&self, pid: u64, key: u8) -> bool {
        self.0.get(&key).is_some_and(|e| e.0 == Pid::new(pid))
    }

    fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Register(pid, key, value) => Outcome::Register(match self.0.get(&key) {
                Some(&(owner, _)) => Err(AlreadyRegistered { owner, key, value }),
                None => {
                    self.0.insert(key, (Pid::new(pid), value));
                    Ok(())
                }
            }),
            Op::Unregister(pid, key) => {
                let owned = self.owns(pid, key);
                if owned {
                    self.0.remove(&key);
                }
                Outcome::Removed(owned)
            }
            Op::UpdateValue(pid, key, operand) => {
                if !self.owns(pid, key) {
                    return Outcome::Updated(None, false);
                }
                let value = &mut self.0.get_mut(&key).unwrap().1;
                let old = std::mem::replace(value, update(*value, operand));
                Outcome::Updated(Some((*value, old)), true)
            }
            Op::Lookup(key) => Outcome::Lookup(self.0.get(&key).copied()),
            Op::Whereis(key) => Outcome::Whereis(self.0.get(&key).map(|e| e.0)),
            Op::Keys(pid) => {
                let owned = self.0.iter().filter(|(_, e)| e.0 == Pid::new(pid));
                let mut keys: Vec<u8> = owned.map(|(&k, _)| k).collect();
                keys.sort_unstable();
                Outcome::Keys(keys)
            }
            Op::ProcessDown(pid) => {
                let before = self.0.len();
                self.0.retain(|_, e| e.0 != Pid::new(pid));
                Outcome::Size(before - self.0.len())
            }
            Op::Count => Outcome::Size(self.0.len()),
            Op::Monitors => {
                Outcome::Size(self.0.values().map(|e| e.0).collect::<HashSet<_>>().len())
            }
        }
    }
}

fn apply(reg: &Unique<u8, u32>, op: &Op) -> Outcome {
    match *op {
        Op::Register(pid, key, value) => Outcome::Register(reg.register(Pid::new(pid), key, value)),
        Op::Unregister(pid, key) => Outcome::Removed(reg.unregister(Pid::new(pid), &key)),
        Op::UpdateValue(pid, key, operand) => {
            let called = Cell::new(false);
            let result = reg.update_value(Pid::new(pid), &key, |&old| {
                called.set(true);
                update(old, operand)
            });
            Outcome::Updated(result, called.get())
        }
        Op::Lookup(key) => Outcome::Lookup(reg.lookup(&key)),
        Op::Whereis(key) => Outcome::Whereis(reg.whereis(&key)),
        Op::Keys(pid) => {
            let mut keys = reg.keys(Pid::new(pid));
            keys.sort_unstable();
            Outcome::Keys(keys)
        }
        Op::ProcessDown(pid) => Outcome::Size(reg.process_down(Pid::new(pid))),
        Op::Count => Outcome::Size(reg.count()),
        Op::Monitors => Outcome::Size(reg.monitors()),
    }
}

fn run(partitions: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let reg = Unique::builder().partitions(partitions).build();
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        prop_assert_eq!(apply(&reg, op), model.apply(op), "step {}: {:?}", i, op);
    }
    let mut entries = reg.select(|&k, pid, &v| Some((k, (pid, v))));
    entries.sort_unstable();
    let mut expected: Vec<_> = model.0.into_iter().collect();
    expected.sort_unstable();
    prop_assert_eq!(entries, expected, "final contents");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_the_model_with_one_partition(ops in prop::collection::vec(op(), 0..200)) {
        run(1, &ops)?;
    }

    #[test]
    fn matches_the_model_with_eight_partitions(ops in prop::collection::vec(op(), 0..200)) {
        run(8, &ops)?;
    }
}
