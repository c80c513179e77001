//! Linearizability of `Unique`, checked on recorded concurrent histories.
//!
//! Each history is a short run of 3–4 threads doing register / unregister / lookup /
//! update_value / process_down on 2–3 keys of a fresh registry. Every call is stamped with
//! an invocation and a response time from one shared counter (a `fetch_add` right before
//! the call and one right after it), so "A returned before B was invoked" is exact. The
//! checker then searches for a sequential order of the calls that respects that real-time
//! order and in which every call returns what the sequential specification (a map from key
//! to owner and value) says it returns: Wing & Gong's search, with Lowe's memoization of
//! (calls linearized, state) pairs already explored, which keeps it linear on histories
//! with little overlap. `process_down` is one atomic step like the others: to readers its
//! pid's entries all go at one instant (`Unique`'s docs, "Exits are atomic"; until session
//! 20 the specification let another thread see an exit half done while it ran).
//!
//! The runtime's contract holds throughout: each thread has its own pids, registers with
//! a pid only while it is alive, is the only one to report it down, and never reuses a pid
//! that went down (it takes a fresh one instead).
//!
//! `REGENT_LIN_HISTORIES` sets the number of histories (default 2000, half with one
//! partition, half with eight). A violation prints the whole history and fails.

mod common;

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;

use common::{env_count, random_seed, SplitMix};
use regent::{Pid, TryRegisterError, Unique};

/// At most this many keys: the model's state is a fixed array.
const MAX_KEYS: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Register {
        pid: u64,
        key: u8,
        value: u64,
    },
    /// `try_register` on a registry built with `max_entries(limit)`.
    TryRegister {
        pid: u64,
        key: u8,
        value: u64,
        limit: u8,
    },
    Unregister {
        pid: u64,
        key: u8,
    },
    Lookup {
        key: u8,
    },
    Update {
        pid: u64,
        key: u8,
        operand: u64,
    },
    ProcessDown {
        pid: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Registered,
    Taken {
        owner: u64,
    },
    Full,
    Unregistered(bool),
    Found(Option<(u64, u64)>),
    /// `update_value`'s `(new, old)`.
    Updated(Option<(u64, u64)>),
    Down(usize),
}

/// One completed call.
#[derive(Clone, Copy, Debug)]
struct Op {
    thread: usize,
    call: Call,
    ret: Ret,
    invoked: u64,
    returned: u64,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>4} .. {:>4}] thread {}: {:?} -> {:?}",
            self.invoked, self.returned, self.thread, self.call, self.ret
        )
    }
}

/// The sequential specification's state: each key's owner and value.
type State = [Option<(u64, u64)>; MAX_KEYS];

/// `update_value`'s function: it depends on the old value, so a wrong `old` shows.
fn update(old: u64, operand: u64) -> u64 {
    old.wrapping_mul(31) ^ operand
}

/// The sequential specification: the state after `call` and what `call` returns.
fn step(mut state: State, call: Call) -> (State, Ret) {
    let ret = match call {
        Call::Register { pid, key, value } => match state[key as usize] {
            Some((owner, _)) => Ret::Taken { owner },
            None => {
                state[key as usize] = Some((pid, value));
                Ret::Registered
            }
        },
        Call::TryRegister {
            pid,
            key,
            value,
            limit,
        } => {
            // The limit is checked first: at the limit even a taken key is Full.
            if state.iter().flatten().count() >= usize::from(limit) {
                Ret::Full
            } else {
                return step(state, Call::Register { pid, key, value });
            }
        }
        Call::Unregister { pid, key } => {
            let owned = matches!(state[key as usize], Some((owner, _)) if owner == pid);
            if owned {
                state[key as usize] = None;
            }
            Ret::Unregistered(owned)
        }
        Call::Lookup { key } => Ret::Found(state[key as usize]),
        Call::Update { pid, key, operand } => match &mut state[key as usize] {
            Some((owner, value)) if *owner == pid => {
                let old = *value;
                *value = update(old, operand);
                Ret::Updated(Some((*value, old)))
            }
            _ => Ret::Updated(None),
        },
        Call::ProcessDown { pid } => {
            let mut removed = 0;
            for slot in &mut state {
                if matches!(slot, Some((owner, _)) if *owner == pid) {
                    *slot = None;
                    removed += 1;
                }
            }
            Ret::Down(removed)
        }
    };
    (state, ret)
}

/// Searches for a linearization of `history` from the empty state; returns the indices of
/// its calls in linearization order. Every call is one atomic step, `process_down` too: to
/// readers its pid's entries all go at one instant (`Unique`'s docs, "Exits are atomic").
fn linearize(history: &[Op]) -> Option<Vec<usize>> {
    assert!(history.len() <= 128, "the checker tracks calls in a u128");
    let all = u128::MAX >> (128 - history.len());
    let mut seen = HashSet::new();
    let mut order = Vec::with_capacity(history.len());
    search(history, all, 0, [None; MAX_KEYS], &mut seen, &mut order).then_some(order)
}

fn search(
    history: &[Op],
    all: u128,
    done: u128,
    state: State,
    seen: &mut HashSet<(u128, State)>,
    order: &mut Vec<usize>,
) -> bool {
    if done == all {
        return true;
    }
    // Lowe's memoization: the rest of the search depends only on what is linearized and
    // the state it left.
    if !seen.insert((done, state)) {
        return false;
    }
    let pending = || (0..history.len()).filter(move |&i| done & (1 << i) == 0);
    // A call can go next only if no pending call returned before it was invoked.
    let horizon = pending().map(|i| history[i].returned).min().unwrap();
    for i in pending().filter(|&i| history[i].invoked < horizon) {
        let (next, got) = step(state, history[i].call);
        if got != history[i].ret {
            continue;
        }
        order.push(i);
        if search(history, all, done | 1 << i, next, seen, order) {
            return true;
        }
        order.pop();
    }
    false
}

/// Fails with the whole history if it is not linearizable.
fn assert_linearizable(history: &[Op], what: &str) {
    if linearize(history).is_none() {
        let mut sorted = history.to_vec();
        sorted.sort_by_key(|op| op.invoked);
        let lines: Vec<String> = sorted.iter().map(|op| op.to_string()).collect();
        panic!(
            "{what}: not linearizable ({} calls):\n{}",
            history.len(),
            lines.join("\n")
        );
    }
}

/// The shape of one recorded history.
#[derive(Clone, Copy, Debug)]
struct Shape {
    partitions: usize,
    threads: usize,
    keys: u8,
    pids_per_thread: usize,
    calls_per_thread: usize,
    /// Upper bound of the spin-loop pause before each call.
    pause: u64,
    /// `max_entries`, if any: registrations then use `try_register`.
    limit: Option<u8>,
}

/// One history to record: a fresh registry, its clock, and what each thread does.
struct Round {
    reg: Unique<u8, u64>,
    clock: AtomicU64,
    shape: Shape,
    seed: u64,
}

/// Worker threads that live for the whole test and record one history per round: waking
/// threads that already run (they poll, yielding) makes their calls overlap far more often
/// than spawning threads per history would.
struct Pool {
    round: RwLock<Option<Arc<Round>>>,
    /// Bumped to start a round; `u64::MAX` stops the workers.
    generation: AtomicU64,
    finished: AtomicUsize,
    ops: Mutex<Vec<Op>>,
}

/// The most threads a history uses.
const WORKERS: usize = 4;

impl Pool {
    fn worker(&self, t: usize) {
        let mut seen = 0;
        loop {
            let generation = loop {
                let g = self.generation.load(SeqCst);
                if g != seen {
                    break g;
                }
                thread::yield_now();
            };
            if generation == u64::MAX {
                return;
            }
            seen = generation;
            let round = self.round.read().unwrap().clone().unwrap();
            if t < round.shape.threads {
                let ops = round.run(t);
                self.ops.lock().unwrap().extend(ops);
            }
            drop(round);
            self.finished.fetch_add(1, SeqCst);
        }
    }

    /// Runs one history on the workers and returns it.
    fn record(&self, shape: Shape, seed: u64) -> Vec<Op> {
        let mut builder = Unique::builder().partitions(shape.partitions);
        if let Some(limit) = shape.limit {
            builder = builder.max_entries(usize::from(limit));
        }
        let reg = builder.build();
        let round = Round {
            reg,
            clock: AtomicU64::new(0),
            shape,
            seed,
        };
        *self.round.write().unwrap() = Some(Arc::new(round));
        self.finished.store(0, SeqCst);
        self.generation.fetch_add(1, SeqCst);
        while self.finished.load(SeqCst) < WORKERS {
            thread::yield_now();
        }
        self.round.write().unwrap().take();
        std::mem::take(&mut *self.ops.lock().unwrap())
    }
}

impl Round {
    /// Thread `t`'s calls.
    fn run(&self, t: usize) -> Vec<Op> {
        let shape = self.shape;
        let mut rng = SplitMix::new(self.seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        // Thread t's pids are t * 1000 + n; a pid that went down is replaced by a fresh
        // one, never reused.
        let mut fresh = (t as u64) * 1000;
        let mut pids: Vec<u64> = (0..shape.pids_per_thread)
            .map(|_| {
                fresh += 1;
                fresh
            })
            .collect();
        let mut ops = Vec::with_capacity(shape.calls_per_thread);
        for n in 0..shape.calls_per_thread {
            // A short random pause spreads the calls out, so that threads that woke up at
            // different times still overlap.
            for _ in 0..rng.below(shape.pause) {
                std::hint::spin_loop();
            }
            let slot = rng.below(pids.len() as u64) as usize;
            let pid = pids[slot];
            let key = rng.below(u64::from(shape.keys)) as u8;
            let roll = rng.below(100);
            let call = if roll < 35 {
                let value = ((t as u64) << 32) | n as u64;
                match shape.limit {
                    None => Call::Register { pid, key, value },
                    Some(limit) => Call::TryRegister {
                        pid,
                        key,
                        value,
                        limit,
                    },
                }
            } else if roll < 50 {
                Call::Unregister { pid, key }
            } else if roll < 72 {
                Call::Lookup { key }
            } else if roll < 90 {
                let operand = rng.below(1 << 16);
                Call::Update { pid, key, operand }
            } else {
                Call::ProcessDown { pid }
            };
            let invoked = self.clock.fetch_add(1, SeqCst);
            let ret = perform(&self.reg, call);
            let returned = self.clock.fetch_add(1, SeqCst);
            if let Call::ProcessDown { .. } = call {
                fresh += 1;
                pids[slot] = fresh;
            }
            ops.push(Op {
                thread: t,
                call,
                ret,
                invoked,
                returned,
            });
        }
        ops
    }
}

/// Makes `call` on the registry, checking what the caller can check locally (a rejected
/// key and value come back; `f` runs exactly when `update_value` succeeds and sees the old
/// value it reports).
fn perform(reg: &Unique<u8, u64>, call: Call) -> Ret {
    match call {
        Call::Register { pid, key, value } => match reg.register(Pid::new(pid), key, value) {
            Ok(()) => Ret::Registered,
            Err(e) => {
                assert_eq!((e.key, e.value), (key, value), "key and value handed back");
                Ret::Taken {
                    owner: e.owner.get(),
                }
            }
        },
        Call::TryRegister {
            pid, key, value, ..
        } => match reg.try_register(Pid::new(pid), key, value) {
            Ok(()) => Ret::Registered,
            Err(TryRegisterError::Taken(e)) => {
                assert_eq!((e.key, e.value), (key, value), "key and value handed back");
                Ret::Taken {
                    owner: e.owner.get(),
                }
            }
            Err(TryRegisterError::Full { key: k, value: v }) => {
                assert_eq!((k, v), (key, value), "key and value handed back");
                Ret::Full
            }
        },
        Call::Unregister { pid, key } => Ret::Unregistered(reg.unregister(Pid::new(pid), &key)),
        Call::Lookup { key } => Ret::Found(reg.lookup(&key).map(|(p, v)| (p.get(), v))),
        Call::Update { pid, key, operand } => {
            let seen = Cell::new(None);
            let result = reg.update_value(Pid::new(pid), &key, |&old| {
                assert!(seen.replace(Some(old)).is_none(), "f called twice");
                update(old, operand)
            });
            match (result, seen.get()) {
                (Some((new, old)), Some(saw)) => {
                    assert_eq!((new, old), (update(saw, operand), saw), "update_value");
                }
                (None, None) => {}
                (result, saw) => panic!("update_value returned {result:?} but f saw {saw:?}"),
            }
            Ret::Updated(result)
        }
        Call::ProcessDown { pid } => Ret::Down(reg.process_down(Pid::new(pid))),
    }
}

/// Pairs of calls from different threads whose intervals overlap: a measure of how
/// concurrent the recorded histories really were.
fn overlaps(history: &[Op]) -> usize {
    let mut n = 0;
    for (i, a) in history.iter().enumerate() {
        for b in &history[i + 1..] {
            if a.thread != b.thread && a.invoked < b.returned && b.invoked < a.returned {
                n += 1;
            }
        }
    }
    n
}

/// Records and checks `REGENT_LIN_HISTORIES` histories (half with one partition, half
/// with eight); `limit` picks each history's `max_entries`.
fn check_histories(what: &str, limit: impl Fn(&mut SplitMix) -> Option<u8>) {
    // One recording at a time: two pools yielding to each other on a small machine would
    // leave the threads of either little chance to overlap.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let histories = env_count("REGENT_LIN_HISTORIES", 2000);
    let seed = env_count("REGENT_LIN_SEED", random_seed());
    let mut rng = SplitMix::new(seed);
    let (mut calls, mut overlapping, mut concurrent) = (0, 0, 0);
    let pool = Pool {
        round: RwLock::new(None),
        generation: AtomicU64::new(0),
        finished: AtomicUsize::new(0),
        ops: Mutex::new(Vec::new()),
    };
    // Stops the workers however the test ends, so that a failure is reported, not hung.
    struct Stop<'a>(&'a Pool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.generation.store(u64::MAX, SeqCst);
        }
    }
    thread::scope(|s| {
        for t in 0..WORKERS {
            let pool = &pool;
            s.spawn(move || pool.worker(t));
        }
        let _stop = Stop(&pool);
        for h in 0..histories {
            let shape = Shape {
                partitions: if h % 2 == 0 { 1 } else { 8 },
                threads: 3 + rng.below(2) as usize,
                keys: 2 + rng.below(2) as u8,
                pids_per_thread: 2 + rng.below(2) as usize,
                calls_per_thread: 8 + rng.below(7) as usize,
                pause: [1, 200, 2000][rng.below(3) as usize],
                limit: limit(&mut rng),
            };
            let history_seed = rng.next_u64();
            let history = pool.record(shape, history_seed);
            let name = format!(
                "{what}: history {h} of REGENT_LIN_SEED={seed} ({shape:?}, history seed \
                 {history_seed})"
            );
            assert_linearizable(&history, &name);
            calls += history.len();
            let o = overlaps(&history);
            overlapping += o;
            concurrent += usize::from(o > 0);
        }
    });
    eprintln!(
        "{what}: {histories} histories linearizable, {calls} calls, {concurrent} histories \
         with overlapping calls, {overlapping} overlapping pairs in all (seed {seed})"
    );
}

#[test]
fn recorded_histories_are_linearizable() {
    check_histories("unlimited", |_| None);
}

#[test]
fn recorded_histories_at_an_entry_limit_are_linearizable() {
    // Limits of 1 and 2 entries on 2-3 keys: try_register meets Full, Taken and success.
    check_histories("max_entries", |rng| Some(1 + rng.below(2) as u8));
}

// ---------- the checker bites: hand-written histories ----------

/// A hand-written history: `(thread, invoked, returned, call, ret)`.
fn history(ops: &[(usize, u64, u64, Call, Ret)]) -> Vec<Op> {
    ops.iter()
        .map(|&(thread, invoked, returned, call, ret)| Op {
            thread,
            call,
            ret,
            invoked,
            returned,
        })
        .collect()
}

const REG_A: Call = Call::Register {
    pid: 1,
    key: 0,
    value: 10,
};
const REG_B: Call = Call::Register {
    pid: 2,
    key: 0,
    value: 20,
};
const LOOKUP: Call = Call::Lookup { key: 0 };

#[test]
fn checker_accepts_overlapping_calls_in_either_order() {
    // A lookup overlapping a registration may see it or not.
    for seen in [None, Some((1, 10))] {
        let h = history(&[
            (0, 0, 3, REG_A, Ret::Registered),
            (1, 1, 2, LOOKUP, Ret::Found(seen)),
        ]);
        assert!(linearize(&h).is_some(), "{seen:?}");
    }
    // Two racing registrations: the loser names the winner, whichever was invoked first.
    let h = history(&[
        (0, 0, 3, REG_A, Ret::Taken { owner: 2 }),
        (1, 1, 2, REG_B, Ret::Registered),
    ]);
    assert_eq!(linearize(&h), Some(vec![1, 0]));
}

#[test]
fn checker_rejects_an_exit_seen_half_done_while_it_runs() {
    // While process_down(1) runs, a reader sees key 0 free and then key 1 still held.
    let reg = |key, value| Call::Register { pid: 1, key, value };
    let h = history(&[
        (0, 0, 1, reg(0, 10), Ret::Registered),
        (0, 2, 3, reg(1, 11), Ret::Registered),
        (0, 4, 9, Call::ProcessDown { pid: 1 }, Ret::Down(2)),
        (1, 5, 6, LOOKUP, Ret::Found(None)),
        (1, 7, 8, Call::Lookup { key: 1 }, Ret::Found(Some((1, 11)))),
    ]);
    assert!(linearize(&h).is_none());
    // Both still held, or both gone, or held then gone, is an exit seen whole.
    for (first, second) in [
        (Some((1, 10)), Some((1, 11))),
        (None, None),
        (Some((1, 10)), None),
    ] {
        let mut whole = h.clone();
        whole[3].ret = Ret::Found(first);
        whole[4].ret = Ret::Found(second);
        assert!(linearize(&whole).is_some(), "{first:?} then {second:?}");
    }
    // Not once it returned, and not with more or fewer entries than it reports.
    let mut late = h.clone();
    late[3].ret = Ret::Found(Some((1, 10)));
    late[4].invoked = 10;
    late[4].returned = 11;
    assert!(linearize(&late).is_none());
    let mut miscounted = h;
    miscounted[3].ret = Ret::Found(None);
    miscounted[4].ret = Ret::Found(None);
    miscounted[2].ret = Ret::Down(1);
    assert!(linearize(&miscounted).is_none());
}

#[test]
fn checker_rejects_a_lookup_that_misses_a_completed_registration() {
    let h = history(&[
        (0, 0, 1, REG_A, Ret::Registered),
        (1, 2, 3, LOOKUP, Ret::Found(None)),
    ]);
    assert!(linearize(&h).is_none());
}

#[test]
fn checker_rejects_two_winners() {
    let h = history(&[
        (0, 0, 3, REG_A, Ret::Registered),
        (1, 1, 2, REG_B, Ret::Registered),
    ]);
    assert!(linearize(&h).is_none());
}

#[test]
fn checker_rejects_a_stale_pid_after_process_down() {
    let h = history(&[
        (0, 0, 1, REG_A, Ret::Registered),
        (0, 2, 3, Call::ProcessDown { pid: 1 }, Ret::Down(1)),
        (1, 4, 5, LOOKUP, Ret::Found(Some((1, 10)))),
    ]);
    assert!(linearize(&h).is_none());
}

#[test]
fn checker_rejects_a_read_that_goes_back_in_time() {
    // The registration is still in flight, but once one lookup saw it, a later lookup
    // (invoked after the first returned) must see it too.
    let h = history(&[
        (0, 0, 9, REG_A, Ret::Registered),
        (1, 1, 2, LOOKUP, Ret::Found(Some((1, 10)))),
        (2, 3, 4, LOOKUP, Ret::Found(None)),
    ]);
    assert!(linearize(&h).is_none());
}

#[test]
fn checker_rejects_a_lost_update() {
    let upd = |operand| Call::Update {
        pid: 1,
        key: 0,
        operand,
    };
    let first = update(10, 1);
    let h = history(&[
        (0, 0, 1, REG_A, Ret::Registered),
        (0, 2, 5, upd(1), Ret::Updated(Some((first, 10)))),
        // Concurrent with the first update, but both claim the original value as `old`.
        (1, 3, 4, upd(2), Ret::Updated(Some((update(10, 2), 10)))),
    ]);
    assert!(linearize(&h).is_none());
}

#[test]
fn assert_linearizable_prints_the_history() {
    let h = history(&[
        (0, 0, 1, REG_A, Ret::Registered),
        (1, 2, 3, LOOKUP, Ret::Found(None)),
    ]);
    let panic = std::panic::catch_unwind(|| assert_linearizable(&h, "hand-written"))
        .expect_err("a violation fails");
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("not linearizable"), "{message}");
    assert!(
        message.contains("Lookup { key: 0 } -> Found(None)"),
        "{message}"
    );
}
