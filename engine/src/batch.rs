//! The pipeline of the batch calls (`register_many`, `process_down_many`): each item's
//! cache misses are started some items before its turn, so that they overlap instead of
//! queueing. `whereis_many` has a pipeline of its own, as its lookups keep references into
//! the array they started on.

use core::hash::BuildHasher;

use crossbeam_epoch::Guard;

use crate::partition::Partitioned;
use crate::pid::ProcessId;
use crate::raw::mark;
use crate::reclaim::Epoch;

/// Items in flight: enough to cover a miss's latency with the work of the items between.
const AHEAD: usize = 16;

/// Items handled under one pin, so that what they remove can be freed meanwhile.
const PER_PIN: usize = 256;

/// Runs `f` on each item, in order, with `start` run on the item `AHEAD` items before `f`
/// gets it and `middle` halfway between: `start` begins the item's cache misses, `middle`
/// the ones that depend on what `start` fetched, and `f` finds them served. The hints may
/// be stale by the time `f` runs (other threads change the registry meanwhile); `f` does
/// the whole operation regardless, so they change only how fast it goes.
///
/// No reference outlives an item's step, so the guard is renewed every `PER_PIN` items. A
/// panic in `f` stops the batch: the items before it are done, the rest are dropped.
pub(crate) fn for_each_ahead<T>(
    epoch: &Epoch,
    items: impl IntoIterator<Item = T>,
    mut start: impl FnMut(&T, &Guard),
    mut middle: impl FnMut(&T, &Guard),
    mut f: impl FnMut(T, &Guard),
) {
    let mut guard = epoch.pin();
    // Slot `i % AHEAD` holds item `i` from its start to its turn, `AHEAD` steps later.
    let mut ring: [Option<T>; AHEAD] = [const { None }; AHEAD];
    let mut items = items.into_iter();
    let mut i = 0usize;
    loop {
        if let Some(item) = &ring[(i + AHEAD / 2) % AHEAD] {
            middle(item, &guard);
        }
        let slot = &mut ring[i % AHEAD];
        if let Some(item) = slot.take() {
            f(item, &guard);
            if i % PER_PIN == 0 {
                guard.repin();
            }
        }
        match items.next() {
            Some(item) => {
                start(&item, &guard);
                ring[i % AHEAD] = Some(item);
            }
            // Drained: the ring holds the last items, the oldest next.
            None if ring.iter().all(Option::is_none) => return,
            None => {}
        }
        i = i.wrapping_add(1);
    }
}

/// The pipeline of `process_down_many`, for both registry kinds: each pid's monitor group
/// is fetched `AHEAD` exits before its turn, `warm` starts what the exit reads next, and
/// `down` makes the exit and says how many entries went. Returns their sum.
pub(crate) fn exits<P: ProcessId, E>(
    epoch: &Epoch,
    hasher: &impl BuildHasher,
    monitors: &Partitioned<E>,
    pids: impl IntoIterator<Item = P>,
    warm: impl FnMut(&P, &Guard),
    mut down: impl FnMut(P, &Guard) -> usize,
) -> usize {
    let mut total = 0;
    for_each_ahead(
        epoch,
        pids,
        |pid, guard| {
            let hash = mark(hasher.hash_one(pid));
            monitors.get(hash).prefetch(hash, guard);
        },
        warm,
        |pid, guard| total += down(pid, guard),
    );
    total
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Every item reaches `f` once, in order, after its `start` and its `middle`, for
    /// batches shorter and longer than the ring.
    #[test]
    fn items_pass_each_stage_once_in_order() {
        for n in [
            0,
            1,
            7,
            AHEAD - 1,
            AHEAD,
            AHEAD + 1,
            3 * AHEAD + 5,
            PER_PIN + 40,
        ] {
            let log = core::cell::RefCell::new(Vec::new());
            for_each_ahead(
                &Epoch::Global,
                0..n,
                |&x, _| log.borrow_mut().push(('s', x)),
                |&x, _| log.borrow_mut().push(('m', x)),
                |x, _| log.borrow_mut().push(('f', x)),
            );
            let log = log.into_inner();
            for stage in ['s', 'm', 'f'] {
                let seen: Vec<usize> = log.iter().filter(|e| e.0 == stage).map(|e| e.1).collect();
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "stage {stage}, n {n}");
            }
            let at = |e| log.iter().position(|x| *x == e).unwrap();
            for x in 0..n {
                assert!(at(('s', x)) < at(('m', x)) && at(('m', x)) < at(('f', x)));
                // The pipeline is full: `start` runs `AHEAD` items ahead when there are.
                if x + AHEAD < n {
                    assert!(at(('s', x + AHEAD - 1)) < at(('f', x)));
                }
            }
        }
    }
}
