//! Model 1: racing registrations of one key.
#![cfg(loom)]

use loom::thread;
use regent::Pid;
use regent_loom::{model, registry};

const KEY: u64 = 7;
const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);

/// Two processes register the same key at once; each value is its registrant's pid.
///
/// Property: exactly one registration succeeds; the loser gets `AlreadyRegistered` naming
/// the winner as owner and handing back the loser's own key and value; afterwards `lookup`,
/// `keys` and the counters all show the winner alone.
///
/// Why the interleavings matter: register-if-absent locks the pid's monitor slot, probes for
/// the key, publishes the entry with a CAS and links it into the pid's list. A racer can see
/// the slot empty and lose the CAS, or meet an entry published but not yet counted; it must
/// then report the entry that beat it, never retry into a duplicate or name a half-published
/// owner, and its own monitor slot must not survive the loss.
#[test]
fn register_race() {
    model(|| {
        let reg = registry::<u64>();
        let racer = {
            let reg = reg.clone();
            thread::spawn(move || reg.register(P2, KEY, P2.get()))
        };
        let results = [
            (P1, reg.register(P1, KEY, P1.get())),
            (P2, racer.join().unwrap()),
        ];

        let winners: Vec<Pid> = results
            .iter()
            .filter(|(_, result)| result.is_ok())
            .map(|&(pid, _)| pid)
            .collect();
        let [winner] = winners[..] else {
            panic!("exactly one registration must win: {results:?}");
        };
        for (pid, result) in results {
            if let Err(lost) = result {
                assert_eq!(lost.owner, winner, "the error names the winner");
                assert_eq!(
                    (lost.key, lost.value),
                    (KEY, pid.get()),
                    "the error hands back the loser's key and value"
                );
            }
        }
        assert_eq!(reg.lookup(&KEY), Some((winner, winner.get())));
        assert_eq!(reg.keys(winner), [KEY]);
        assert_eq!((reg.count(), reg.monitors()), (1, 1));
    });
}
