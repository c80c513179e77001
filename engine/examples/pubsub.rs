//! An event bus on a `Duplicate` registry: subscribers join topics, publishers fan out with
//! `dispatch`, and a subscriber that exits stops receiving the moment it is reported down.
//!
//! Run with `cargo run --example pubsub`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};

use regent::{Duplicate, PartitionBy, Pid};

#[derive(Clone, Debug, PartialEq)]
enum BusEvent {
    OrderPlaced(u64),
    OrderShipped(u64),
}

/// Publishes `event` to every subscriber of `topic`; returns how many it reached.
fn publish(
    bus: &Duplicate<&'static str, Sender<BusEvent>>,
    topic: &str,
    event: &BusEvent,
) -> usize {
    bus.dispatch(topic, |_pid, mailbox| {
        let _ = mailbox.send(event.clone());
    })
}

pub fn main() {
    let bus: Duplicate<&'static str, Sender<BusEvent>> = Duplicate::new();
    let (billing, billing_rx) = channel();
    let (shipping, shipping_rx) = channel();
    let (audit, audit_rx) = channel();
    bus.register(Pid::new(1), "orders", billing);
    bus.register(Pid::new(2), "orders", shipping.clone());
    bus.register(Pid::new(2), "shipments", shipping);
    bus.register(Pid::new(3), "orders", audit.clone());
    bus.register(Pid::new(3), "shipments", audit);

    assert_eq!(publish(&bus, "orders", &BusEvent::OrderPlaced(7)), 3);
    assert_eq!(publish(&bus, "shipments", &BusEvent::OrderShipped(7)), 2);
    assert_eq!(billing_rx.try_iter().count(), 1);
    assert_eq!(shipping_rx.try_iter().count(), 2);
    assert_eq!(audit_rx.try_iter().count(), 2);

    // The shipping service exits: once reported down it is in no topic.
    assert_eq!(bus.process_down(Pid::new(2)), 2);
    assert_eq!(publish(&bus, "orders", &BusEvent::OrderPlaced(8)), 2);
    assert_eq!(shipping_rx.try_iter().count(), 0);

    // A hot topic with many subscribers, spread by pid so that joins from many cores do
    // not contend; a parallel dispatch splits the walk over worker threads.
    let metrics: Duplicate<&'static str, u64> =
        Duplicate::builder().partition_by(PartitionBy::Pid).build();
    for i in 0..100_000 {
        metrics.register(Pid::new(i), "ticks", i);
    }
    let sum = AtomicUsize::new(0);
    let seen = metrics.dispatch_parallel(&"ticks", 2, |_pid, &v| {
        sum.fetch_add(v as usize, Ordering::Relaxed);
    });
    assert_eq!(seen, 100_000);
    assert_eq!(sum.into_inner(), (0..100_000).sum::<usize>());
    println!("3 topics, 100,000 subscribers on one; every event reached every live subscriber");
}
