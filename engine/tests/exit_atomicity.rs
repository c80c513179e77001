//! An exit is atomic to readers (`Unique`'s docs, "Exits are atomic"): once any reader can
//! see that one of an exiting pid's names is gone, no reader sees it hold another, and a
//! registration of a name it held is never refused in its name.
//!
//! The exits here are held still half-way: a key whose `Hash` blocks in the exiting thread
//! pauses `process_down` between removing the pid's first name and finding its second,
//! while the test thread looks at the registry.

mod common;

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_consistent, for_each_config, Watchdog};
use regent::{Pid, Unique};

/// Hashes a `u64` to itself, so that the test chooses where keys land and their tags.
type Fixed = nohash_hasher::BuildNoHashHasher<u64>;

/// The key whose `Hash` blocks (`u64::MAX`: none), in a thread that armed itself.
static GATE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Set by the blocked `Hash` once it waits.
static PAUSED: AtomicBool = AtomicBool::new(false);
/// Lets the blocked `Hash` go on.
static OPEN: AtomicBool = AtomicBool::new(false);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// The gate is process-wide: the tests of this file run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    GATE.store(u64::MAX, Ordering::SeqCst);
    PAUSED.store(false, Ordering::SeqCst);
    OPEN.store(false, Ordering::SeqCst);
    serial
}

/// A key whose `Hash` waits at the gate when it is the gated key and the hashing thread is
/// armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Gated(u64);

impl Hash for Gated {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if ARMED.with(Cell::get) && GATE.load(Ordering::SeqCst) == self.0 {
            PAUSED.store(true, Ordering::SeqCst);
            while !OPEN.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(1));
            }
        }
        state.write_u64(self.0);
    }
}

/// Keys with different homes and different tags (bits 40-47), so that removing the first
/// never hashes the second.
const FIRST: Gated = Gated(0x01_0000_0000_0040);
const SECOND: Gated = Gated(0x02_0000_0000_0480);
const THIRD: Gated = Gated(0x03_0000_0000_0900);
const EXITING: Pid = Pid::new(0x0A_0000_0000_1000);
const HEIR: Pid = Pid::new(0x0B_0000_0000_2000);
const BYSTANDER: Pid = Pid::new(0x0C_0000_0000_3000);

type Registry = Unique<Gated, u32, Pid, Fixed>;

fn registry(partitions: usize) -> Arc<Registry> {
    Arc::new(
        Unique::builder()
            .partitions(partitions)
            .hasher(Fixed::default())
            .build(),
    )
}

/// Starts `EXITING`'s exit in another thread and returns once it is held at the gate, past
/// the removal of `FIRST` and before that of `gated`.
fn exit_held_at(reg: &Arc<Registry>, gated: Gated) -> thread::JoinHandle<usize> {
    GATE.store(gated.0, Ordering::SeqCst);
    let exit = {
        let reg = Arc::clone(reg);
        thread::spawn(move || {
            ARMED.with(|armed| armed.set(true));
            reg.process_down(EXITING)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !PAUSED.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the exit never reached the gate");
        thread::sleep(Duration::from_millis(1));
    }
    exit
}

fn open_gate() {
    OPEN.store(true, Ordering::SeqCst);
}

/// Runs `test` for every configuration, one test of this file at a time, the gate closed
/// and no exit paused at the start of each.
fn each_config(name: &str, mut test: impl FnMut(usize)) {
    let _serial = serial();
    let _watchdog = Watchdog::new(name, Duration::from_secs(120));
    for_each_config(|partitions| {
        PAUSED.store(false, Ordering::SeqCst);
        OPEN.store(false, Ordering::SeqCst);
        test(partitions);
    });
    // The threads the test started have exited, leaving their epoch records marked for
    // unlinking: collections unlink them and free them once the epoch has moved on, so
    // that valgrind (scripts/valgrind.sh) finds none lost behind a tagged pointer.
    for _ in 0..100 {
        regent::reclaim();
        thread::sleep(Duration::from_millis(1));
    }
}

/// A registry in which `EXITING` holds `keys`, the `i`th with value `i + 1`.
fn holding(partitions: usize, keys: &[Gated]) -> Arc<Registry> {
    let reg = registry(partitions);
    for (value, &key) in (1..).zip(keys) {
        reg.register(EXITING, key, value).unwrap();
    }
    reg
}

#[test]
fn lookups_see_an_exit_whole() {
    each_config("lookups_see_an_exit_whole", |partitions| {
        let reg = holding(partitions, &[FIRST, SECOND, THIRD]);
        reg.register(BYSTANDER, Gated(7), 7).unwrap();

        let exit = exit_held_at(&reg, SECOND);
        // The exit has taken `FIRST` out and waits in `SECOND`'s hash: `SECOND` and `THIRD`
        // are still in the table, but their pid is gone to every reader.
        assert_eq!(reg.whereis(&FIRST), None);
        assert_eq!(
            reg.whereis(&SECOND),
            None,
            "a half-done exit showed a name held"
        );
        assert_eq!(
            reg.whereis(&THIRD),
            None,
            "a half-done exit showed a name held"
        );
        assert_eq!(reg.lookup(&SECOND), None);
        assert!(!reg.contains_key(&THIRD));
        assert_eq!(
            reg.whereis_many([&FIRST, &SECOND, &THIRD, &Gated(7)]),
            [None, None, None, Some(BYSTANDER)]
        );
        assert_eq!(reg.lookup_many([&THIRD]), [None]);
        {
            let pinned = reg.pin();
            assert_eq!(pinned.whereis(&SECOND), None);
            assert!(pinned.get(&THIRD).is_none());
        }
        assert!(reg.keys(EXITING).is_empty(), "keys of an exiting pid");
        // Other pids are untouched.
        assert_eq!(reg.lookup(&Gated(7)), Some((BYSTANDER, 7)));
        assert_eq!(reg.keys(BYSTANDER), [Gated(7)]);
        // The name already removed is free at once.
        reg.register(HEIR, FIRST, 10).unwrap();
        assert_eq!(reg.whereis(&FIRST), Some(HEIR));

        open_gate();
        assert_eq!(exit.join().unwrap(), 3);
        assert_eq!(reg.whereis(&SECOND), None);
        assert_eq!(reg.count(), 2);
        assert_eq!(reg.monitors(), 2);
        assert_consistent(&reg);
    });
}

#[test]
fn a_registration_waits_out_an_exiting_holder() {
    each_config("a_registration_waits_out_an_exiting_holder", |partitions| {
        let reg = holding(partitions, &[FIRST, SECOND]);
        let exit = exit_held_at(&reg, SECOND);

        // `SECOND` is still in the table, held by a pid that is gone to every reader: a
        // registration of it must not be refused in that pid's name. It waits for the exit
        // to take the entry out, then wins.
        let (register, register_or_lookup) = {
            let (a, b) = (Arc::clone(&reg), Arc::clone(&reg));
            (
                thread::spawn(move || a.register(HEIR, SECOND, 10)),
                thread::spawn(move || b.register_or_lookup(BYSTANDER, SECOND, 20)),
            )
        };
        thread::sleep(Duration::from_millis(100));
        assert!(
            !register.is_finished() && !register_or_lookup.is_finished(),
            "a registration ended while the name's holder was half-way through its exit"
        );

        open_gate();
        assert_eq!(exit.join().unwrap(), 2);
        let register = register.join().unwrap();
        let register_or_lookup = register_or_lookup.join().unwrap();
        // One of the two wins; the other loses to the winner, never to the exited pid.
        let owner = reg.whereis(&SECOND).expect("one registration won");
        match (register, register_or_lookup) {
            (Ok(()), Err(existing)) => {
                assert_eq!((owner, existing.owner, existing.value), (HEIR, HEIR, 10));
            }
            (Err(taken), Ok(())) => {
                assert_eq!((owner, taken.owner), (BYSTANDER, BYSTANDER));
            }
            (a, b) => panic!("both or neither registered: {a:?} / {b:?}"),
        }
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
        assert_consistent(&reg);
    });
}

/// A pid with one name has nothing to make atomic: its exit marks nothing and readers check
/// nothing, and a registration of its name is refused while the name is in the table.
#[test]
fn a_single_name_exit_is_one_removal() {
    each_config("a_single_name_exit_is_one_removal", |partitions| {
        let reg = holding(partitions, &[FIRST]);
        // Held in `FIRST`'s hash, before its removal.
        let exit = exit_held_at(&reg, FIRST);
        assert_eq!(reg.whereis(&FIRST), Some(EXITING));
        assert_eq!(reg.keys(EXITING), [FIRST]);
        let refused = reg.register(HEIR, FIRST, 10).unwrap_err();
        assert_eq!(refused.owner, EXITING);
        open_gate();
        assert_eq!(exit.join().unwrap(), 1);
        assert_eq!(reg.whereis(&FIRST), None);
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
    });
}

/// Exits racing readers with no pause: one thread gives each new pid three names and then
/// reports it down, over and over, while the others look up the first name and then the
/// third. A reader that finds the first name free and then the third held by a pid whose
/// three names were all in place before it started has seen that pid's exit half done.
#[test]
fn readers_racing_exits_never_see_one_half_done() {
    use std::sync::atomic::AtomicUsize;

    each_config(
        "readers_racing_exits_never_see_one_half_done",
        |partitions| {
            let reg = registry(partitions);
            // Pids `0..registered` have held all three names (`Pid::new(g)` for generation `g`).
            let registered = AtomicU64::new(0);
            let stop = AtomicBool::new(false);
            let (anomalies, checks) = (AtomicUsize::new(0), AtomicUsize::new(0));
            let run_for = Duration::from_millis(if cfg!(debug_assertions) { 300 } else { 700 });
            thread::scope(|s| {
                s.spawn(|| {
                    let start = Instant::now();
                    let mut generation = 0;
                    // Until the readers have had their turn too: under valgrind, which runs one
                    // thread at a time, they may not start before the time is up.
                    while start.elapsed() < run_for || checks.load(Ordering::Relaxed) < 10_000 {
                        let pid = Pid::new(generation);
                        for key in [FIRST, SECOND, THIRD] {
                            reg.register(pid, key, 0).unwrap();
                        }
                        registered.store(generation + 1, Ordering::SeqCst);
                        assert_eq!(reg.process_down(pid), 3);
                        generation += 1;
                        if start.elapsed() >= run_for {
                            // Time is up and the readers are still short of their checks:
                            // under valgrind, whose scheduler may keep this thread running,
                            // hand them the core instead of churning on towards the
                            // watchdog (a run of 120 s ended there once).
                            thread::yield_now();
                        }
                    }
                    stop.store(true, Ordering::SeqCst);
                });
                for _ in 0..2 {
                    s.spawn(|| {
                        while !stop.load(Ordering::SeqCst) {
                            let before = registered.load(Ordering::SeqCst);
                            let first = reg.whereis(&FIRST);
                            let third = reg.whereis(&THIRD);
                            checks.fetch_add(1, Ordering::Relaxed);
                            if let (None, Some(pid)) = (first, third) {
                                if pid.get() < before {
                                    anomalies.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    });
                }
            });
            let (anomalies, checks) = (anomalies.into_inner(), checks.into_inner());
            assert!(checks > 0);
            assert_eq!(
                anomalies, 0,
                "{anomalies} of {checks} reader passes saw an exit half done"
            );
            assert_eq!((reg.count(), reg.monitors()), (0, 0));
        },
    );
}
