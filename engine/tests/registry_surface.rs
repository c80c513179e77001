//! The rest of the surface: meta, `lock`, naming (`send`), `await_registered`,
//! `register_or_lookup` and `give_away`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{for_each_config, unique};
use regent::{Duplicate, Event, Existing, Pid, SendError, Unique};

fn pid(n: u64) -> Pid {
    Pid::new(n)
}

#[test]
fn meta_is_typed_and_per_registry() {
    let names: Unique<u64> = Unique::new();
    let topics: Duplicate<u64> = Duplicate::new();
    names.put_meta("region", "eu-west".to_string());
    names.put_meta("shards", 16usize);
    assert_eq!(
        names
            .meta::<String>("region")
            .as_deref()
            .map(String::as_str),
        Some("eu-west")
    );
    assert_eq!(names.meta::<usize>("shards").as_deref(), Some(&16));
    assert!(names.meta::<u32>("shards").is_none(), "wrong type");
    assert!(names.meta::<usize>("missing").is_none());
    names.put_meta("shards", 32usize);
    assert_eq!(names.meta::<usize>("shards").as_deref(), Some(&32));
    assert!(names.delete_meta("shards"));
    assert!(!names.delete_meta("shards"));
    assert!(
        topics.meta::<String>("region").is_none(),
        "registries do not share meta"
    );
    topics.put_meta("region", 1u8);
    assert_eq!(topics.meta::<u8>("region").as_deref(), Some(&1));
}

#[test]
fn lock_returns_the_result_and_excludes_other_holders() {
    let names: Arc<Unique<&'static str>> = Arc::new(Unique::new());
    assert_eq!(names.lock("job", || 41 + 1), 42);
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    thread::scope(|s| {
        for _ in 0..4 {
            let (names, inside, max) = (&names, &inside, &max);
            s.spawn(move || {
                for _ in 0..200 {
                    names.lock("job", || {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
    });
    assert_eq!(max.load(Ordering::SeqCst), 1, "two holders at once");
    // Lock keys are a namespace of their own: the registry's entries are untouched.
    assert_eq!(names.count(), 0);
}

#[test]
fn lock_is_fifo_among_waiters() {
    let topics: Arc<Duplicate<u8>> = Arc::new(Duplicate::new());
    let order = Arc::new(Mutex::new(Vec::new()));
    let (holding_tx, holding_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let topics = topics.clone();
        thread::spawn(move || {
            topics.lock(1, || {
                holding_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        })
    };
    holding_rx.recv().unwrap();
    // Waiters arrive one at a time, each after the previous one is surely queued.
    let mut waiters = Vec::new();
    for i in 0..5 {
        let (topics, order) = (topics.clone(), order.clone());
        waiters.push(thread::spawn(move || {
            topics.lock(1, || order.lock().unwrap().push(i))
        }));
        thread::sleep(Duration::from_millis(30));
    }
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    for w in waiters {
        w.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn lock_is_released_when_the_body_panics() {
    let names: Unique<u8> = Unique::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        names.lock(7, || panic!("boom"))
    }));
    assert!(caught.is_err());
    // Neither blocked nor poisoned.
    assert_eq!(names.lock(7, || "again"), "again");
}

#[test]
fn send_delivers_by_name_and_hands_the_message_back() {
    for_each_config(|partitions| {
        let names: Unique<&str, mpsc::Sender<u32>> = unique(partitions);
        let (tx, rx) = mpsc::channel();
        names.register(pid(1), "room:1", tx).unwrap();
        assert_eq!(names.send("room:1", 5), Ok(pid(1)));
        assert_eq!(rx.recv().unwrap(), 5);
        assert_eq!(names.send("room:2", 6), Err(SendError::NotRegistered(6)));
        drop(rx);
        let err = names.send("room:1", 7).unwrap_err();
        assert_eq!(err, SendError::Rejected(7));
        assert_eq!(err.into_inner(), 7);
        assert_eq!(
            SendError::NotRegistered(0u8).to_string(),
            "no process is registered under the name"
        );
    });
}

#[test]
fn send_to_a_full_sync_channel_does_not_block() {
    let names: Unique<&str, mpsc::SyncSender<u32>> = Unique::new();
    let (tx, _rx) = mpsc::sync_channel(1);
    names.register(pid(1), "worker", tx).unwrap();
    assert_eq!(names.send("worker", 1), Ok(pid(1)));
    assert_eq!(names.send("worker", 2), Err(SendError::Rejected(2)));
}

#[cfg(feature = "crossbeam-channel")]
#[test]
fn send_through_crossbeam_channels() {
    let names: Unique<&str, crossbeam_channel::Sender<u32>> = Unique::new();
    let (tx, rx) = crossbeam_channel::bounded(1);
    names.register(pid(1), "worker", tx).unwrap();
    assert_eq!(names.send("worker", 1), Ok(pid(1)));
    assert_eq!(names.send("worker", 2), Err(SendError::Rejected(2)));
    assert_eq!(rx.recv().unwrap(), 1);
}

#[cfg(feature = "tokio")]
#[test]
fn send_through_tokio_channels() {
    let names: Unique<&str, tokio::sync::mpsc::UnboundedSender<u32>> = Unique::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    names.register(pid(1), "worker", tx).unwrap();
    assert_eq!(names.send("worker", 1), Ok(pid(1)));
    assert_eq!(rx.try_recv().unwrap(), 1);
    let bounded: Unique<&str, tokio::sync::mpsc::Sender<u32>> = Unique::new();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    bounded.register(pid(2), "worker", tx).unwrap();
    assert_eq!(bounded.send("worker", 1), Ok(pid(2)));
    assert_eq!(bounded.send("worker", 2), Err(SendError::Rejected(2)));
}

#[test]
fn await_registered_returns_at_once_waits_and_times_out() {
    let names: Arc<Unique<u64>> = Arc::new(Unique::new());
    names.register(pid(1), 1, ()).unwrap();
    assert_eq!(names.await_registered(&1, Duration::ZERO), Some(pid(1)));
    let started = Instant::now();
    assert_eq!(names.await_registered(&2, Duration::from_millis(50)), None);
    assert!(started.elapsed() >= Duration::from_millis(50));
    let waiter = {
        let names = names.clone();
        thread::spawn(move || names.await_registered(&3, Duration::from_secs(30)))
    };
    thread::sleep(Duration::from_millis(20));
    names.register(pid(3), 3, ()).unwrap();
    assert_eq!(waiter.join().unwrap(), Some(pid(3)));
}

/// Many waiters and registrations racing: every waiter is woken (none sleeps to its
/// timeout), which a lost wake-up would break.
#[test]
fn await_registered_never_misses_a_wake_up() {
    let names: Arc<Unique<u64>> = Arc::new(Unique::new());
    for round in 0..200u64 {
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let names = names.clone();
                thread::spawn(move || names.await_registered(&round, Duration::from_secs(20)))
            })
            .collect();
        names.register(pid(round), round, ()).unwrap();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Some(pid(round)));
        }
    }
}

#[cfg(feature = "tokio")]
#[test]
fn await_registered_async_waits_without_blocking() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let names: Arc<Unique<u64>> = Arc::new(Unique::new());
    rt.block_on(async {
        assert_eq!(
            names
                .await_registered_async(&1, Duration::from_millis(20))
                .await,
            None
        );
        let registrar = {
            let names = names.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                names.register(pid(1), 1, ()).unwrap();
            })
        };
        // One thread runs both tasks: the wait must yield for the registration to happen.
        assert_eq!(
            names
                .await_registered_async(&1, Duration::from_secs(20))
                .await,
            Some(pid(1))
        );
        registrar.await.unwrap();
    });
}

#[test]
fn register_or_lookup_registers_once_and_then_finds() {
    for_each_config(|partitions| {
        let names: Unique<&str, u32> = unique(partitions);
        assert_eq!(names.register_or_lookup(pid(1), "session:7", 10), Ok(()));
        assert_eq!(
            names.register_or_lookup(pid(2), "session:7", 20),
            Err(Existing {
                owner: pid(1),
                value: 10
            })
        );
        assert_eq!(names.monitors(), 1, "the loser left no monitor");
        assert_eq!(names.lookup("session:7"), Some((pid(1), 10)));
    });
}

#[test]
fn register_or_lookup_has_one_winner_under_races() {
    let names: Unique<u64, u64> = Unique::new();
    for key in 0..200 {
        let outcomes: Vec<Result<(), Existing<Pid, u64>>> = thread::scope(|s| {
            let handles: Vec<_> = (1..=4)
                .map(|p| {
                    let names = &names;
                    s.spawn(move || names.register_or_lookup(pid(p), key, p))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<u64> = (1..=4)
            .filter(|&p| outcomes[p as usize - 1].is_ok())
            .collect();
        assert_eq!(winners.len(), 1);
        for o in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert_eq!((o.owner, o.value), (pid(winners[0]), winners[0]));
        }
    }
}

#[test]
fn give_away_moves_the_name_and_its_monitor() {
    for_each_config(|partitions| {
        let events = Arc::new(Mutex::new(Vec::new()));
        let log = events.clone();
        let names: Unique<&str, u32> = Unique::builder()
            .partitions(partitions)
            .listener(move |e: &Event<'_, &str, u32, Pid>| {
                log.lock().unwrap().push(match e {
                    Event::Registered { pid, .. } => format!("reg {}", pid.get()),
                    Event::Unregistered { pid, .. } => format!("unreg {}", pid.get()),
                    Event::Down { pid, .. } => format!("down {}", pid.get()),
                });
            })
            .build();
        names.register(pid(1), "a", 1).unwrap();
        names.register(pid(1), "b", 2).unwrap();
        events.lock().unwrap().clear();
        assert!(!names.give_away(pid(2), "a", pid(3)), "not the owner");
        assert!(!names.give_away(pid(1), "c", pid(3)), "not a key");
        assert!(names.give_away(pid(1), "a", pid(1)), "to itself");
        assert_eq!(names.lookup("a"), Some((pid(1), 1)));
        assert!(names.give_away(pid(1), "a", pid(2)));
        assert_eq!(*events.lock().unwrap(), vec!["unreg 1", "reg 2"]);
        assert_eq!(names.lookup("a"), Some((pid(2), 1)));
        assert_eq!((names.count(), names.monitors()), (2, 2));
        assert_eq!(names.keys(pid(1)), vec!["b"]);
        assert_eq!(names.keys(pid(2)), vec!["a"]);
        assert!(!names.unregister(pid(1), "a"), "the old owner lost it");
        assert!(names.give_away(pid(1), "b", pid(2)));
        assert_eq!(names.monitors(), 1, "pid 1 holds nothing");
        assert_eq!(names.process_down(pid(1)), 0);
        assert_eq!(names.process_down(pid(2)), 2);
        assert!(names.is_empty());
        common::assert_consistent(&names);
    });
}

/// Two threads hand names back and forth while a reader looks them up: a name is never
/// missing, and owners and monitors add up at the end.
#[test]
fn give_away_races_keep_every_name_owned() {
    let names: Unique<u64, u64> = Unique::builder().partitions(2).build();
    for key in 0..8 {
        names.register(pid(1), key, key).unwrap();
    }
    let workers = common::Workers::new(2);
    thread::scope(|s| {
        for (from, to) in [(1, 2), (2, 1)] {
            let (names, workers) = (&names, &workers);
            s.spawn(move || {
                workers.run(|| {
                    for i in 0..20_000u64 {
                        names.give_away(pid(from), &(i % 8), pid(to));
                    }
                });
            });
        }
        s.spawn(|| {
            while workers.running() {
                for key in 0..8 {
                    let owner = names.whereis(&key).expect("a name went missing");
                    assert!(owner == pid(1) || owner == pid(2));
                }
            }
        });
    });
    common::assert_consistent(&names);
    assert_eq!(names.process_down(pid(1)) + names.process_down(pid(2)), 8);
}

#[test]
fn lookup_many_and_whereis_many_agree_with_single_lookups() {
    for_each_config(|partitions| {
        let names: Unique<u64, u64> = unique(partitions);
        for k in (0..2000).step_by(2) {
            names.register(pid(k % 7), k, k * 10).unwrap();
        }
        for n in [0, 1, 5, 16, 17, 33, 1000] {
            let keys: Vec<u64> = (0..n).map(|i| (i * 7919) % 2100).collect();
            let single: Vec<Option<(Pid, u64)>> = keys.iter().map(|k| names.lookup(k)).collect();
            assert_eq!(names.lookup_many(&keys), single, "{n} keys");
            let pids: Vec<Option<Pid>> = single.iter().map(|e| e.map(|(p, _)| p)).collect();
            assert_eq!(names.whereis_many(keys.iter()), pids, "{n} keys");
        }
        // Borrowed forms: `String` keys looked up by `&str`.
        let strings: Unique<String, u8> = unique(partitions);
        strings.register(pid(1), "a".to_string(), 1).unwrap();
        let found = strings.whereis_many(["a", "b"]);
        assert_eq!(found, vec![Some(pid(1)), None]);
    });
}
