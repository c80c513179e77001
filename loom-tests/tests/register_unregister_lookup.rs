//! Model 2: a reader racing the publication, retirement and reuse of one key's entry.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry};

const KEY: u64 = 7;
const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);

/// Pid 1 registers a key and unregisters it; meanwhile the model's thread looks the key up,
/// registers it as pid 2 and looks it up again. Every value is its owner's pid.
///
/// Property: a lookup returns nothing or a complete entry whose value agrees with its pid;
/// pid 1's unregister removes exactly what its register added; pid 2 loses only to a live
/// pid 1, and once pid 2 holds the key every lookup returns pid 2; the final state matches
/// who won.
///
/// Why the interleavings matter: an entry is published by one pointer CAS and retired by
/// another, and the key can be claimed again at once. A reader racing both must never see a
/// half-initialised entry, a retired entry come back, or pid 2's key with pid 1's value; an
/// unregister must never remove the next owner's entry.
#[test]
fn register_unregister_lookup() {
    model(|| {
        let reg = registry::<u64>();
        let first = {
            let reg = reg.clone();
            thread::spawn(move || {
                let registered = reg.register(P1, KEY, P1.get());
                let unregistered = reg.unregister(P1, &KEY);
                assert_eq!(
                    unregistered,
                    registered.is_ok(),
                    "unregister removes exactly pid 1's own entry"
                );
                registered
            })
        };

        let before = reg.lookup(&KEY);
        assert!(
            before.is_none() || before == Some((P1, P1.get())),
            "lookup returned {before:?}"
        );
        let second = reg.register(P2, KEY, P2.get());
        let after = reg.lookup(&KEY);
        match &second {
            Ok(()) => assert_eq!(after, Some((P2, P2.get())), "pid 2's entry is gone or torn"),
            Err(lost) => {
                assert_eq!(lost.owner, P1, "pid 2 can only lose to pid 1");
                assert!(
                    after.is_none() || after == Some((P1, P1.get())),
                    "lookup returned {after:?}"
                );
            }
        }

        let first = first.join().unwrap();
        if let Err(lost) = &first {
            assert_eq!(lost.owner, P2, "pid 1 can only lose to pid 2");
        }
        let held = second.is_ok().then_some((P2, P2.get()));
        assert_eq!(reg.lookup(&KEY), held);
        let held = usize::from(held.is_some());
        assert_eq!((reg.count(), reg.monitors()), (held, held));
        assert!(reg.keys(P1).is_empty());
    });
}
