//! The monitor index: pid → the pid's entries, for `keys(pid)` and `process_down(pid)`.
//!
//! A pid's slot in the index table points at the head of a singly linked list threaded
//! through the pid's entries (`Entry::next`). Editing the list takes the slot's lock bit
//! (`RawTable::lock`), so register, unregister, update and exit of one pid serialize, while
//! different pids never contend and lookups by key never see the lock. A pid's slot exists
//! exactly while the pid holds at least one entry, which makes `monitors()` exact.
//!
//! The list can also be walked without the lock (`keys`): an unlinked or replaced node keeps
//! its `next`, and retired nodes outlive the walker's guard, so a walker always reaches the
//! end, seeing every entry that stays in the list for the whole walk.

use crate::entry::Entry;
use crate::raw::Locked;

pub(crate) type PidLock<'t, 'g, K, V, P, R> = Locked<'t, 'g, Entry<K, V, P>, R>;

/// Prepends `node` to the pid's list.
///
/// # Safety
///
/// `node` is live and not in any list.
pub(crate) unsafe fn push<K, V, P, R: Fn(&Entry<K, V, P>) -> u64>(
    lock: &mut PidLock<'_, '_, K, V, P, R>,
    node: *mut Entry<K, V, P>,
) {
    // SAFETY: live (caller).
    unsafe { (*node).set_next(lock.head()) };
    lock.set_head(node);
}

/// Unlinks `target` from the pid's list; if `replacement` is non-null it takes `target`'s
/// place (and must already point at `target`'s successor).
///
/// # Safety
///
/// `target` is in the locked pid's list; `replacement`, if non-null, is live.
pub(crate) unsafe fn unlink<K, V, P, R: Fn(&Entry<K, V, P>) -> u64>(
    lock: &mut PidLock<'_, '_, K, V, P, R>,
    target: *mut Entry<K, V, P>,
    replacement: *mut Entry<K, V, P>,
) {
    let successor = if replacement.is_null() {
        // SAFETY: `target` is in the list (caller), so live until retired by us.
        unsafe { (*target).next() }
    } else {
        replacement
    };
    let mut prev = lock.head();
    if prev == target {
        lock.set_head(successor);
        return;
    }
    // Walking the list costs O(entries of this pid), as removing from Elixir's pid table does.
    loop {
        debug_assert!(!prev.is_null(), "target is not in the pid's list");
        // SAFETY: list members are live while the pid's lock is held.
        let p = unsafe { &*prev };
        if p.next() == target {
            p.set_next(successor);
            return;
        }
        prev = p.next();
    }
}

/// Iterates a list from `head`.
///
/// # Safety
///
/// The list's nodes must stay allocated while iterating: hold the pid's lock, or an epoch
/// guard pinned before any of them was retired.
pub(crate) unsafe fn iter<'a, K: 'a, V: 'a, P: 'a>(
    head: *mut Entry<K, V, P>,
) -> impl Iterator<Item = *mut Entry<K, V, P>> + 'a {
    let mut cur = head;
    core::iter::from_fn(move || {
        if cur.is_null() {
            return None;
        }
        let this = cur;
        // SAFETY: members are live (caller).
        cur = unsafe { (*cur).next() };
        Some(this)
    })
}
