//! Model 7: the monitor index (`keys`, `monitors`) under concurrent changes.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry_with_capacity};

const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);
const K1: u64 = 1;
const K2: u64 = 2;
const K3: u64 = 3;

/// Pid 1's thread registers two keys, unregisters one and then exits (`process_down`), while
/// pid 2's thread registers a key of its own and watches `keys(1)` and `monitors()`.
///
/// Property: mid-run, `keys(1)` lists only pid 1's keys, each once, and `monitors()` counts
/// pid 2 and at most pid 1 besides; `process_down` removes exactly the one key left; at the
/// end the index is exact: pid 1 is forgotten, pid 2 holds its key, one monitor, one entry.
///
/// Why the interleavings matter: the monitor index is a second table, edited under a per-pid
/// slot lock around the name-table change, so for a moment a key can be in one table and
/// not yet (or no longer) in the other, and two pids insert into the index at once. A pid
/// whose last key goes must leave `monitors()` even when that races a first insert for
/// another pid; a miscount, a stale key or a monitor left behind surfaces only in some orders.
/// The tables are pre-sized: migrations are model 5's subject and would only slow this one.
#[test]
fn monitor_index_is_exact() {
    model(|| {
        let reg = registry_with_capacity::<u64>(4);

        let first = {
            let reg = reg.clone();
            thread::spawn(move || {
                reg.register(P1, K1, 0).unwrap();
                reg.register(P1, K2, 0).unwrap();
                assert!(reg.unregister(P1, &K1));
                assert_eq!(reg.process_down(P1), 1);
            })
        };
        reg.register(P2, K3, 0).unwrap();
        let mut keys = reg.keys(P1);
        keys.sort_unstable();
        assert!(
            keys.is_empty() || keys == [K1] || keys == [K2] || keys == [K1, K2],
            "keys(1) = {keys:?}"
        );
        let monitors = reg.monitors();
        assert!((1..=2).contains(&monitors), "monitors() = {monitors}");
        first.join().unwrap();

        assert!(reg.keys(P1).is_empty());
        assert_eq!(reg.keys(P2), [K3]);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}
