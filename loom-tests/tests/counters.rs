//! Model 14: the counters' thread-owned and shared slots.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry_with_capacity};

const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);
const P3: Pid = Pid::new(3);

/// The main thread registers a key while a spawned thread registers another; a second
/// spawned thread then reports that pid down while the main thread reads the counts. Under
/// loom the counters have two owned slots, so the main thread and the first spawned one
/// count in slots of their own and the second spawned one in a shared slot.
///
/// Property: `count` and `monitors` are exact once no update is in flight: after the first
/// pair (2, 2), at the end (1, 1); mid-run the main thread's reads stay within what the
/// updates allow.
///
/// Why the interleavings matter: each thread index owns a slot of every counter and adds to
/// it with a plain load and store, no read-modify-write (`engine/src/counter.rs`). That is
/// sound only if two live threads never hold one index: two writers' loads and stores
/// would interleave and lose an update, and the sum would end wrong. Indices never change
/// hands under loom (loom's teardown runs a thread's last destructors where sync
/// operations upset its exploration); the engine's unit tests check the hand-over with
/// real threads.
#[test]
fn counter_slots_of_live_threads() {
    model(|| {
        // Sized so that no migration runs: its copying would only multiply interleavings.
        let reg = registry_with_capacity::<u64>(4);
        let first = {
            let reg = reg.clone();
            thread::spawn(move || reg.register(P2, 2, 2).unwrap())
        };
        reg.register(P1, 1, 1).unwrap();
        first.join().unwrap();
        assert_eq!((reg.count(), reg.monitors()), (2, 2));

        let second = {
            let reg = reg.clone();
            thread::spawn(move || {
                assert_eq!(reg.process_down(P2), 1);
            })
        };
        let (count, monitors) = (reg.count(), reg.monitors());
        assert!((1..=2).contains(&count) && (1..=2).contains(&monitors));
        second.join().unwrap();
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
        // The main thread still counts in its own slot.
        reg.register(P3, 3, 3).unwrap();
        assert_eq!((reg.count(), reg.monitors()), (2, 2));
    });
}
