//! Model 10: the entry limit (`max_entries`) and its gate.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use regent::{Pid, TryRegisterError, Unique};
use regent_loom::{model, FixedHasher, Registry};

const P1: Pid = Pid::new(1);
const P2: Pid = Pid::new(2);
const P3: Pid = Pid::new(3);

/// A registry of one partition limited to `max` entries.
fn limited(max: usize) -> Arc<Registry<u64>> {
    let registry = Unique::builder()
        .partitions(1)
        .capacity(4)
        .max_entries(max)
        .hasher(FixedHasher::default())
        .build();
    Arc::new(registry)
}

/// At a limit of one, pid 1 unregisters the only entry while another thread looks the key
/// up and, once it is gone, registers another key.
///
/// Property: a registration that starts after a lookup saw the old entry gone is never
/// refused as `Full`; the limit holds (never two entries).
///
/// Why the interleavings matter: the removal takes the entry out of the table before it
/// gives its place back. A registration that runs in between finds no place; it must not
/// answer `Full` then, because the registry already holds fewer than the limit: it waits
/// at the gate for the removal in flight and takes the place it gives back.
#[test]
fn a_removal_seen_gone_frees_its_place() {
    model(|| {
        let reg = limited(1);
        reg.register(P1, 1, 10).unwrap();
        let remover = {
            let reg = reg.clone();
            thread::spawn(move || assert!(reg.unregister(P1, &1)))
        };
        if reg.lookup(&1).is_none() {
            assert!(
                reg.try_register(P2, 2, 20).is_ok(),
                "refused after the only entry was seen gone"
            );
        }
        remover.join().unwrap();
        assert!(reg.count() <= 1, "the limit was exceeded");
        reg.try_register(P3, 3, 30).ok();
        assert_eq!(reg.count(), 1);
    });
}

/// At a limit of two with one entry in, pid 2 registers the taken key (and loses) while
/// pid 3 registers a free one.
///
/// Property: pid 3 is registered: until it is, the registry holds one entry, so `Full`
/// would be wrong; and the losing registration leaves no place or monitor behind.
///
/// Why the interleavings matter: the loser reserves the last place before it learns that
/// the key is taken, so pid 3's reservation can fail while the registry holds one entry;
/// pid 3 must then wait at the gate for the loser to give its place back.
#[test]
fn a_losing_registration_does_not_fill_the_registry() {
    model(|| {
        let reg = limited(2);
        reg.register(P1, 1, 10).unwrap();
        let loser = {
            let reg = reg.clone();
            // `Full` is right too once pid 3's entry is in: the limit is checked first.
            thread::spawn(move || match reg.try_register(P2, 1, 20) {
                Err(TryRegisterError::Taken(e)) => assert_eq!(e.owner, P1),
                Err(TryRegisterError::Full { .. }) => {}
                Ok(()) => panic!("the key is taken"),
            })
        };
        assert!(
            reg.try_register(P3, 3, 30).is_ok(),
            "refused while one entry was registered"
        );
        loser.join().unwrap();
        assert_eq!((reg.count(), reg.monitors()), (2, 2));
        assert!(matches!(
            reg.try_register(P2, 4, 40),
            Err(TryRegisterError::Full { .. })
        ));
    });
}
