//! Bounded garbage: a dispatch callback that stays pinned while other threads churn holds
//! back reclamation only for its duration. Its own test binary: `retired_bytes` is
//! process-wide.

mod common;

use std::time::Duration;

use common::Watchdog;
use regent::{Duplicate, Pid};

fn pid(n: u64) -> Pid {
    Pid::new(n)
}

/// A dispatch callback that runs for a long time keeps the epoch pinned while other
/// threads churn: removed values and slots wait for it (the documented bound is the bytes
/// removed while it runs, shown by `stats().retired_bytes`), and drain once it returns.
#[test]
fn a_long_dispatch_holds_garbage_back_only_while_it_runs() {
    let _watchdog = Watchdog::new("bounded garbage", Duration::from_secs(120));
    const CHURN: u64 = 200_000;
    let reg: Duplicate<u64, [u64; 4]> = Duplicate::new();
    // One standing subscriber per key keeps every bag open through the churn.
    for key in 0..=64 {
        reg.register(pid(u64::MAX - key), key, [0; 4]);
    }
    let during = std::thread::scope(|s| {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let reg = &reg;
        let reader = s.spawn(move || {
            reg.dispatch(&0, |_, _| {
                started_tx.send(()).unwrap();
                done_rx.recv().unwrap();
            })
        });
        started_rx.recv().unwrap();
        for i in 0..CHURN {
            reg.register(pid(i), 1 + i % 64, [i; 4]);
            assert_eq!(reg.unregister(pid(i), &(1 + i % 64)), 1);
        }
        regent::reclaim();
        let during = reg.stats().retired_bytes;
        done_tx.send(()).unwrap();
        assert_eq!(reader.join().unwrap(), 1);
        eprintln!("{CHURN} joins and leaves under a pinned dispatch: {during} bytes held back");
        during
    });
    // Every removed value (32 bytes) is still waiting, and nothing more than what was
    // removed during the pin (values, plus the bags of keys that emptied).
    assert!(during >= CHURN as usize * 32, "{during} bytes held back");
    assert!(
        during <= CHURN as usize * (32 + 512),
        "{during} bytes held back"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reg.stats().retired_bytes > 0 && std::time::Instant::now() < deadline {
        regent::reclaim();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(
        reg.stats().retired_bytes,
        0,
        "drains once the dispatch returned"
    );
}
