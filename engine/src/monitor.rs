//! The monitor index: pid → the marks of the keys it holds, for `keys(pid)` and
//! `process_down(pid)`.
//!
//! A pid has one `Monitor` record, inline in the index table, exactly while it holds at
//! least one entry (so `monitors()` is exact). Its word holds the *mark* of its key (the
//! key's hash, whose low 3 bits the tables ignore) or, once it holds more than one, a
//! pointer to a `KeyList` of marks. A mark is enough to find the entry again: probe the
//! name table with it and take the entry owned by the pid whose key has that mark. A
//! runtime process usually holds one name, so the common case costs one 16-byte record
//! and no allocation.
//!
//! Changes to a pid's monitor take its lock (`raw::Locked`), so register, unregister,
//! update and exit of one pid serialize while different pids never contend. Readers
//! (`keys`) walk the marks without the lock: a list only grows in place (the new length is
//! published after the new mark), and a list replaced or freed is retired through the epoch.

use core::mem::size_of;

use crossbeam_epoch::Guard;

use crate::counter::Counter;
use crate::entry::Monitor;
use crate::partition::Partitioned;
use crate::raw::Locked;
use crate::reclaim::retire;
use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// The word's data is a `KeyList` pointer, not a mark (marks have their low 3 bits clear).
const LIST: u64 = 0b100;

/// The marks of a pid that holds more than one key.
struct KeyList {
    len: AtomicUsize,
    marks: Box<[AtomicU64]>,
}

pub(crate) type PidLock<'t, 'g, P, R> = Locked<'t, 'g, Monitor<P>, R>;

/// The data word of a pid's first key.
pub(crate) fn first(mark: u64) -> u64 {
    debug_assert_eq!(mark & 0b111, 0);
    mark
}

/// Calls `f` with every mark in `data` (a monitor's data bits).
///
/// # Safety
///
/// `data` was read from a monitor under `guard`, which must be pinned while this runs.
pub(crate) unsafe fn for_each_mark(data: u64, _guard: &Guard, mut f: impl FnMut(u64)) {
    if data & LIST == 0 {
        f(data);
        return;
    }
    // SAFETY: a list a monitor pointed to is retired through the epoch, after `_guard`.
    let list = unsafe { &*((data & !LIST) as usize as *const KeyList) };
    // Acquire: pairs with the Release in `add`, so marks below `len` are written.
    let len = list.len.load(Ordering::Acquire);
    for mark in &list.marks[..len] {
        f(mark.load(Ordering::Relaxed));
    }
}

/// Adds `mark` to the locked pid's keys.
pub(crate) fn add<P: Copy + Eq, R: Fn(&Monitor<P>) -> u64>(
    lock: &mut PidLock<'_, '_, P, R>,
    mark: u64,
    lists: &Counter,
    guard: &Guard,
) {
    let data = lock.data();
    if data & LIST == 0 {
        lock.set_data(new_list(&[data, mark], 4, lists));
        return;
    }
    let list = as_list(data);
    // Relaxed: only the lock holder writes `len`.
    let len = list.len.load(Ordering::Relaxed);
    if len < list.marks.len() {
        list.marks[len].store(mark, Ordering::Relaxed);
        // Release: publishes the mark to lock-free readers (pairs with `for_each_mark`).
        list.len.store(len + 1, Ordering::Release);
        return;
    }
    let mut marks: Vec<u64> = list
        .marks
        .iter()
        .map(|m| m.load(Ordering::Relaxed))
        .collect();
    marks.push(mark);
    lock.set_data(new_list(&marks, 2 * len, lists));
    // SAFETY: replaced in the word (readers pinned now may still walk it).
    unsafe { retire_list(guard, data, lists) };
}

/// Removes one occurrence of `mark` from the locked pid's keys; returns whether none are
/// left (the caller then lets the monitor go).
pub(crate) fn remove<P: Copy + Eq, R: Fn(&Monitor<P>) -> u64>(
    lock: &mut PidLock<'_, '_, P, R>,
    mark: u64,
    lists: &Counter,
    guard: &Guard,
) -> bool {
    let data = lock.data();
    if data & LIST == 0 {
        debug_assert_eq!(data, mark, "the pid holds this key");
        clear(lock, lists, guard);
        return true;
    }
    let list = as_list(data);
    let len = list.len.load(Ordering::Relaxed);
    let at = list.marks[..len]
        .iter()
        .position(|m| m.load(Ordering::Relaxed) == mark);
    let at = at.expect("the pid holds this key");
    // Removal from a pid's list is O(its keys), as in Elixir's pid table. A concurrent
    // reader may miss the moved mark or see it twice: `keys` is weakly consistent.
    let last = list.marks[len - 1].load(Ordering::Relaxed);
    list.marks[at].store(last, Ordering::Relaxed);
    // Release: pairs with the Acquire in `for_each_mark`.
    list.len.store(len - 1, Ordering::Release);
    if len == 1 {
        clear(lock, lists, guard);
        return true;
    }
    false
}

/// Removes every mark of the locked pid for which `keep` returns false; returns whether none
/// are left (the monitor then goes with the lock). `keep` sees each mark once and may act
/// on the ones it drops.
pub(crate) fn retain<P: Copy + Eq, R: Fn(&Monitor<P>) -> u64>(
    lock: &mut PidLock<'_, '_, P, R>,
    mut keep: impl FnMut(u64) -> bool,
    lists: &Counter,
    guard: &Guard,
) -> bool {
    let data = lock.data();
    if data & LIST == 0 {
        if keep(data) {
            return false;
        }
        clear(lock, lists, guard);
        return true;
    }
    let list = as_list(data);
    let mut len = list.len.load(Ordering::Relaxed);
    // Downwards, so that the mark a removal moves into place was visited already.
    for at in (0..len).rev() {
        if keep(list.marks[at].load(Ordering::Relaxed)) {
            continue;
        }
        let last = list.marks[len - 1].load(Ordering::Relaxed);
        list.marks[at].store(last, Ordering::Relaxed);
        len -= 1;
        // Release: pairs with the Acquire in `for_each_mark`.
        list.len.store(len, Ordering::Release);
    }
    if len == 0 {
        clear(lock, lists, guard);
        return true;
    }
    false
}

/// Lets the locked pid's monitor go when the lock is released, freeing its list.
pub(crate) fn clear<P: Copy + Eq, R: Fn(&Monitor<P>) -> u64>(
    lock: &mut PidLock<'_, '_, P, R>,
    lists: &Counter,
    guard: &Guard,
) {
    let data = lock.data();
    if data & LIST != 0 {
        // SAFETY: the monitor goes with the lock's release; readers pinned now may still
        // walk the list.
        unsafe { retire_list(guard, data, lists) };
    }
    lock.set_empty();
}

/// Frees every monitor's list when the registry is dropped (`&mut`: no thread is inside).
pub(crate) fn free_all<P>(pids: &mut Partitioned<Monitor<P>>) {
    for table in pids.iter_mut() {
        // SAFETY: `&mut` excludes every other thread, and a monitor's list is reachable
        // only through its monitor, which is drained once here.
        table.drain(|m| unsafe { free((*m).data()) });
    }
}

/// Frees a monitor's list.
///
/// # Safety
///
/// No thread can reach `data`'s list any more.
unsafe fn free(data: u64) {
    if data & LIST != 0 {
        // SAFETY: as the caller guarantees.
        unsafe { free_list((data & !LIST) as usize as *mut KeyList) };
    }
}

fn new_list(marks: &[u64], capacity: usize, lists: &Counter) -> u64 {
    let mut all: Vec<AtomicU64> = marks.iter().map(|&m| AtomicU64::new(m)).collect();
    all.resize_with(capacity.max(marks.len()), || AtomicU64::new(0));
    lists.add(list_bytes(all.len()));
    let list = Box::new(KeyList {
        len: AtomicUsize::new(marks.len()),
        marks: all.into_boxed_slice(),
    });
    Box::into_raw(list) as usize as u64 | LIST
}

fn as_list<'a>(data: u64) -> &'a KeyList {
    // SAFETY: only called by the lock holder, which keeps the list alive.
    unsafe { &*((data & !LIST) as usize as *const KeyList) }
}

/// # Safety
///
/// `data`'s list is unreachable for threads that pin from now on, and retired once.
unsafe fn retire_list(guard: &Guard, data: u64, lists: &Counter) {
    let list = (data & !LIST) as usize as *mut KeyList;
    // SAFETY: as the caller guarantees.
    let bytes = list_bytes(unsafe { &*list }.marks.len());
    lists.sub(bytes);
    // SAFETY: as the caller guarantees; `free_list` frees a `Box<KeyList>`.
    unsafe { retire(guard, list, bytes, free_list) };
}

/// # Safety
///
/// `list` came from `new_list` and is unreachable.
unsafe fn free_list(list: *mut KeyList) {
    // SAFETY: as the caller guarantees.
    drop(unsafe { Box::from_raw(list) });
}

/// Heap bytes of a list of `capacity` marks.
fn list_bytes(capacity: usize) -> usize {
    size_of::<KeyList>() + capacity * size_of::<AtomicU64>()
}
