//! Model 17: a duplicate registration whose pid `Eq` panics gives its bag place back.
#![cfg(loom)]

use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use loom::thread;
use regent::{Duplicate, PartitionBy, Pid};
use regent_loom::{model_tracked, pid_sharing_probes_with, FixedHasher, Tracked};

const TOPIC: u64 = 3;
const JOINER: u64 = 1;
const POISON: &str = "pid Eq panicked";

/// A pid whose `Eq` panics when a probe for [`JOINER`] meets another pid's record: the
/// joiner's registration then panics after its entry was written into the bag, while it
/// looks for its monitor. Probes for any other pid compare as usual. Hashes as the `Pid`
/// of the same id.
#[derive(Clone, Copy, Debug)]
struct Touchy(u64);

impl Hash for Touchy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Pid::new(self.0).hash(state);
    }
}

impl PartialEq for Touchy {
    fn eq(&self, other: &Self) -> bool {
        // A probe compares a stored record's pid (`self`) with the one it looks for.
        if other.0 == JOINER && self.0 != JOINER {
            std::panic::panic_any(POISON);
        }
        self.0 == other.0
    }
}

impl Eq for Touchy {}

/// The joiner registers on `TOPIC` while a spawned thread reports the topic's only other
/// subscriber, the holder, down. The holder's pid shares the joiner's home group and tag in
/// the monitor index, so while the holder's monitor is there the joiner's probe compares
/// the two and panics, after its entry was written (unpublished) into the topic's bag.
///
/// Property: whichever way it goes (the joiner panics, or registers after the holder's
/// monitor left), the bag ends consistent: no dispatch ever sees the abandoned entry, the
/// topic and the counts are exact, and once the joiner too is down the bag closes and
/// every value is dropped exactly once (`model_tracked`).
///
/// Why the interleavings matter: the abandoned place is given back with the same count the
/// holder's leave decrements. If the leave comes first, it closes the bag only if the
/// joiner had not reserved its place yet (the joiner then makes a new bag); if it comes
/// after the reservation, the abandonment is the last leave and must close the bag, take
/// it out of its table and retire it. A place never given back would keep the bag open
/// for good (and its value alive); a bag closed twice would be retired twice.
#[test]
fn an_abandoned_entry_races_the_last_leave() {
    // Executions in which the joiner's registration panicked, and in which it went in.
    static OUTCOMES: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    quiet_poison();
    let holder = Touchy(pid_sharing_probes_with(Pid::new(JOINER)).get());
    model_tracked(move |ledger| {
        let reg: Duplicate<u64, Tracked, Touchy, FixedHasher> = Duplicate::builder()
            .partitions(1)
            .partition_by(PartitionBy::Key)
            .hasher(FixedHasher::default())
            .build();
        let reg = loom::sync::Arc::new(reg);
        reg.register(holder, TOPIC, ledger.value(Pid::new(holder.0)));
        let down = {
            let reg = reg.clone();
            thread::spawn(move || reg.process_down(holder))
        };
        let joiner = Touchy(JOINER);
        let value = ledger.value(Pid::new(JOINER));
        let joined = catch_unwind(AssertUnwindSafe(|| reg.register(joiner, TOPIC, value))).is_ok();
        OUTCOMES[usize::from(joined)].fetch_add(1, Ordering::Relaxed);
        let mut seen = Vec::new();
        reg.dispatch(&TOPIC, |pid, v| seen.push((pid.0, v.owner.get())));
        assert!(seen.iter().all(|&(pid, owner)| pid == owner), "{seen:?}");
        assert!(
            joined || seen.iter().all(|&(pid, _)| pid != JOINER),
            "{seen:?}"
        );
        assert_eq!(down.join().unwrap(), 1);

        let expected = usize::from(joined);
        assert_eq!(reg.count(), expected);
        assert_eq!(reg.monitors(), expected);
        assert_eq!(reg.dispatch(&TOPIC, |_, _| {}), expected);
        assert_eq!(reg.process_down(joiner), expected);
        assert_eq!((reg.count(), reg.monitors()), (0, 0));
        assert_eq!(reg.keys(holder), Vec::<u64>::new());
        // The topic's bag (one, or two if the joiner made a new one after the holder's
        // leave closed the first) closed and left its table: no bag bytes are counted.
        assert_eq!(reg.stats().entry_bytes, 0);
        for _ in 0..3 {
            regent::reclaim();
        }
    });
    let [panicked, joined] = OUTCOMES.each_ref().map(|n| n.load(Ordering::Relaxed));
    assert!(
        panicked > 0 && joined > 0,
        "panicked {panicked}, joined {joined}"
    );
}

/// Keeps the panic hook from printing the joiner's panics, one per execution where it
/// panics; any other panic prints as usual.
fn quiet_poison() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&POISON) {
                previous(info);
            }
        }));
    });
}
