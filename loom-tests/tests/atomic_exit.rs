//! Model 18: a pid with two names exits while another thread looks both up and registers
//! the second: the exit is atomic to readers (`Unique`'s docs, "Exits are atomic").
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use regent::Pid;
use regent_loom::{model, registry_with_capacity, Registry};

/// The exiting pid's names, `FIRST` removed first (the monitor walks its keys in the order
/// they were registered).
const FIRST: u64 = 7;
const SECOND: u64 = 8;
const EXITING: Pid = Pid::new(1);
const HEIR: Pid = Pid::new(2);

/// A registry in which `EXITING` holds `FIRST` and `SECOND`, and a thread running its exit.
/// The tables are sized so that no migration runs: models 5, 13 and 16 cover reads and
/// writes across one.
fn exit_under_way() -> (Arc<Registry<u64>>, thread::JoinHandle<usize>) {
    let reg = registry_with_capacity::<u64>(8);
    reg.register(EXITING, FIRST, 1).unwrap();
    reg.register(EXITING, SECOND, 2).unwrap();
    let exit = {
        let reg = reg.clone();
        thread::spawn(move || reg.process_down(EXITING))
    };
    (reg, exit)
}

/// Pid 1 holds `FIRST` and `SECOND` and exits in one thread, while the model's thread looks
/// `FIRST` up and then `SECOND`.
///
/// Property: a reader that sees `FIRST` gone never sees pid 1 hold `SECOND` afterwards.
/// Without the exit's mark this fails: the exit removes its names one at a time, and a
/// reader between the two removals finds `SECOND` still in the table.
#[test]
fn readers_see_an_exit_whole() {
    model(|| {
        let (reg, exit) = exit_under_way();
        let first = reg.whereis(&FIRST);
        let second = reg.whereis(&SECOND);
        assert!(
            first.is_some() || second.is_none(),
            "saw {FIRST} gone and then {SECOND} still held by the exiting pid"
        );
        assert_eq!(exit.join().unwrap(), 2);
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        assert_eq!(reg.whereis(&SECOND), None);
    });
}

/// As above, but the model's thread then registers `SECOND` for pid 2.
///
/// Property: once the thread has seen `FIRST` gone, its registration of `SECOND` is never
/// refused in the exiting pid's name (it waits for the exit to take the entry out); before
/// that, it wins or loses to pid 1. Afterwards exactly what it registered is left.
#[test]
fn a_registration_after_a_seen_removal_wins() {
    model(|| {
        let (reg, exit) = exit_under_way();
        let first = reg.whereis(&FIRST);
        let registered = reg.register(HEIR, SECOND, 10);
        if first.is_none() {
            assert!(
                registered.is_ok(),
                "refused in the name of a pid whose exit was seen"
            );
        }
        if let Err(taken) = &registered {
            assert_eq!(taken.owner, EXITING);
        }
        assert_eq!(exit.join().unwrap(), 2);
        let held = usize::from(registered.is_ok());
        assert_eq!(reg.whereis(&SECOND), registered.is_ok().then_some(HEIR));
        assert_eq!((reg.count(), reg.monitors()), (held, held));
    });
}
