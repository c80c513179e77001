//! Every Rust peer against the same sequence of registry operations and its expected
//! results: the semantics the benchmarks rely on, checked before any figure is trusted.

mod common;

use std::thread;

use regent_bench::peers::{
    DashMapPeer, FlurryPeer, PapayaPeer, RegentPeer, Registry, RwLockPeer, SccPeer,
};

fn semantics<R: Registry>() {
    let r = R::default();
    let name = R::NAME;
    assert!(r.register(1, 10, 100), "{name}");
    assert!(!r.register(2, 10, 200), "{name}: a held key is refused");
    assert_eq!(r.lookup(10), Some((1, 100)), "{name}");
    assert_eq!(r.lookup(99), None, "{name}");
    assert!(r.register(1, 11, 101), "{name}: a pid holds several keys");

    assert!(!r.unregister(2, 10), "{name}: only the owner unregisters");
    assert_eq!(r.lookup(10), Some((1, 100)), "{name}");
    assert!(r.unregister(1, 10), "{name}");
    assert!(!r.unregister(1, 10), "{name}: already gone");
    assert_eq!(r.lookup(10), None, "{name}");
    assert_eq!(r.count(), 1, "{name}");

    // The pid index forgot the unregistered key: the exit removes only the other one.
    assert_eq!(r.process_down(1), 1, "{name}");
    assert_eq!(r.process_down(1), 0, "{name}");
    assert_eq!(r.count(), 0, "{name}");

    assert!(r.register(2, 10, 200), "{name}: a freed key can be taken");
    assert!(r.register(2, 12, 201), "{name}");
    assert!(r.unregister(2, 12), "{name}");
    assert!(r.register(2, 13, 202), "{name}");
    assert_eq!(r.process_down(2), 2, "{name}");
    assert_eq!(r.count(), 0, "{name}");
}

/// Four threads race to register the same keys: exactly one wins each, and exits then
/// remove exactly the winners' keys.
fn races<R: Registry>() {
    const KEYS: u64 = 2_000;
    let r = R::default();
    let wins: Vec<u64> = thread::scope(|s| {
        let spawned: Vec<_> = (0..4u64)
            .map(|t| {
                let r = &r;
                s.spawn(move || (0..KEYS).filter(|&k| r.register(t, k, t)).count() as u64)
            })
            .collect();
        spawned.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().sum::<u64>(), KEYS, "{}", R::NAME);
    for k in 0..KEYS {
        let (owner, value) = r.lookup(k).expect("every key has a winner");
        assert_eq!(owner, value, "{}", R::NAME);
    }
    let removed: usize = (0..4).map(|t| r.process_down(t)).sum();
    assert_eq!(removed as u64, KEYS, "{}", R::NAME);
    assert_eq!(r.count(), 0, "{}", R::NAME);
}

#[test]
fn every_peer_keeps_registry_semantics() {
    semantics::<RegentPeer>();
    semantics::<DashMapPeer>();
    semantics::<SccPeer>();
    semantics::<PapayaPeer>();
    semantics::<FlurryPeer>();
    semantics::<RwLockPeer>();

    races::<RegentPeer>();
    races::<DashMapPeer>();
    races::<SccPeer>();
    races::<PapayaPeer>();
    races::<FlurryPeer>();
    races::<RwLockPeer>();
}
