//! Model 3: `process_down` racing a lookup and a takeover of the dead process's keys.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry};

const TAKEN: u64 = 7;
const OTHER: u64 = 8;
const DEAD: Pid = Pid::new(1);
const HEIR: Pid = Pid::new(2);

/// Pid 1 holds two keys and exits: one thread runs `process_down(1)` and then looks the first
/// key up, while the model's thread looks the second key up and registers the first as pid 2.
/// Every value is its owner's pid.
///
/// Property: cleanup is linearizable. `process_down` removes exactly pid 1's two entries;
/// once it has returned, no lookup, in its own thread or in one ordered after it by `join`,
/// returns pid 1; pid 2's registration either wins or fails naming pid 1 (it saw a live
/// owner); the racing lookup sees pid 1 or nothing, never a torn entry; the monitor index
/// forgets pid 1.
///
/// Why the interleavings matter: `process_down` locks pid 1's monitor slot and removes its
/// entries from the name table one by one, while a register may claim a key the moment it is
/// vacated and a reader may still hold an old entry. A removal that returns before every
/// entry is unreachable, or that removes pid 2's fresh entry instead, shows only in some
/// orders.
#[test]
fn process_down_races_lookup_and_register() {
    model(|| {
        let reg = registry::<u64>();
        reg.register(DEAD, TAKEN, DEAD.get()).unwrap();
        reg.register(DEAD, OTHER, DEAD.get()).unwrap();

        let down = {
            let reg = reg.clone();
            thread::spawn(move || {
                assert_eq!(reg.process_down(DEAD), 2);
                let after = reg.lookup(&TAKEN);
                assert_ne!(
                    after.map(|(pid, _)| pid),
                    Some(DEAD),
                    "lookup after process_down returned the dead pid"
                );
            })
        };

        let racing = reg.lookup(&OTHER);
        assert!(
            racing.is_none() || racing == Some((DEAD, DEAD.get())),
            "lookup returned {racing:?}"
        );
        let takeover = reg.register(HEIR, TAKEN, HEIR.get());
        if let Err(lost) = &takeover {
            assert_eq!(lost.owner, DEAD, "pid 2 can only lose to a live pid 1");
        }
        down.join().unwrap();

        let expected = takeover.is_ok().then_some((HEIR, HEIR.get()));
        assert_eq!(reg.lookup(&TAKEN), expected);
        assert_eq!(reg.lookup(&OTHER), None);
        assert!(reg.keys(DEAD).is_empty());
        let held = usize::from(takeover.is_ok());
        assert_eq!((reg.count(), reg.monitors()), (held, held));
    });
}
