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

use core::alloc::Layout;
use core::ptr;

use crossbeam_epoch::Guard;

use crate::counter::Counter;
use crate::entry::Monitor;
use crate::partition::Partitioned;
use crate::raw::Locked;
use crate::reclaim::retire;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The word's data is a `KeyList` pointer, not a mark (marks have their low 3 bits clear).
const LIST: u64 = 0b100;

/// The marks of a pid that holds more than one key: one allocation, this header followed by
/// `cap` marks, so that the common list (a process in two topics) costs 24 bytes.
#[repr(C)]
struct KeyList {
    /// Marks published to lock-free readers.
    len: AtomicU32,
    /// Marks allocated after the header.
    cap: u32,
}

/// A pointer to a [`KeyList`] and the marks after it.
#[derive(Clone, Copy)]
struct ListPtr(*mut KeyList);

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
    // A list a monitor pointed to is retired through the epoch, after `_guard`.
    let list = as_list(data);
    // Acquire: pairs with the Release in `add`, so marks below `len` are written.
    let len = list.len().load(Ordering::Acquire) as usize;
    for mark in &list.marks()[..len] {
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
        lock.set_data(new_list(&[data, mark], 2, lists));
        return;
    }
    let list = as_list(data);
    // Relaxed: only the lock holder writes `len`.
    let len = list.len().load(Ordering::Relaxed) as usize;
    let marks = list.marks();
    if len < marks.len() {
        marks[len].store(mark, Ordering::Relaxed);
        // Release: publishes the mark to lock-free readers (pairs with `for_each_mark`).
        list.len().store(len as u32 + 1, Ordering::Release);
        return;
    }
    let mut all: Vec<u64> = marks.iter().map(|m| m.load(Ordering::Relaxed)).collect();
    all.push(mark);
    lock.set_data(new_list(&all, 2 * len, lists));
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
    let (len, marks) = (list.len().load(Ordering::Relaxed) as usize, list.marks());
    let at = marks[..len]
        .iter()
        .position(|m| m.load(Ordering::Relaxed) == mark);
    let at = at.expect("the pid holds this key");
    // Removal from a pid's list is O(its keys), as in Elixir's pid table. A concurrent
    // reader may miss the moved mark or see it twice: `keys` is weakly consistent.
    let last = marks[len - 1].load(Ordering::Relaxed);
    marks[at].store(last, Ordering::Relaxed);
    // Release: pairs with the Acquire in `for_each_mark`.
    list.len().store(len as u32 - 1, Ordering::Release);
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
    let (mut len, marks) = (list.len().load(Ordering::Relaxed) as usize, list.marks());
    // Downwards, so that the mark a removal moves into place was visited already.
    for at in (0..len).rev() {
        if keep(marks[at].load(Ordering::Relaxed)) {
            continue;
        }
        let last = marks[len - 1].load(Ordering::Relaxed);
        marks[at].store(last, Ordering::Relaxed);
        len -= 1;
        // Release: pairs with the Acquire in `for_each_mark`.
        list.len().store(len as u32, Ordering::Release);
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
    let cap = capacity.max(marks.len());
    let cap32 = u32::try_from(cap).expect("a pid holds fewer than 2^32 entries");
    let layout = list_layout(cap);
    // SAFETY: the layout has a non-zero size (the header).
    let list = unsafe { std::alloc::alloc(layout) }.cast::<KeyList>();
    if list.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: freshly allocated for the header and `cap` marks; each is written once here.
    unsafe {
        ptr::write(
            list,
            KeyList {
                len: AtomicU32::new(marks.len() as u32),
                cap: cap32,
            },
        );
        let first = ListPtr(list).first();
        for at in 0..cap {
            ptr::write(first.add(at), AtomicU64::new(marks.get(at).copied().unwrap_or(0)));
        }
    }
    lists.add(layout.size());
    list as usize as u64 | LIST
}

impl ListPtr {
    fn header(&self) -> &KeyList {
        // SAFETY: a live list (see `as_list`).
        unsafe { &*self.0 }
    }

    fn len(&self) -> &AtomicU32 {
        &self.header().len
    }

    fn first(self) -> *mut AtomicU64 {
        // SAFETY: the marks follow the header inside the allocation (`list_layout`); the
        // pointer keeps the provenance of the whole allocation.
        unsafe { self.0.cast::<u8>().add(marks_offset()).cast::<AtomicU64>() }
    }

    fn marks<'a>(self) -> &'a [AtomicU64] {
        // SAFETY: `cap` initialized marks follow the header of a live list.
        unsafe { core::slice::from_raw_parts(self.first(), self.header().cap as usize) }
    }
}

/// The list a monitor's data word points to. The caller keeps it alive: the lock holder,
/// or a reader pinned since it read the word (lists are retired through the epoch).
fn as_list(data: u64) -> ListPtr {
    ListPtr((data & !LIST) as usize as *mut KeyList)
}

/// # Safety
///
/// `data`'s list is unreachable for threads that pin from now on, and retired once.
unsafe fn retire_list(guard: &Guard, data: u64, lists: &Counter) {
    let list = as_list(data);
    let bytes = list_layout(list.header().cap as usize).size();
    lists.sub(bytes);
    // SAFETY: as the caller guarantees; `free_list` frees what `new_list` allocated.
    unsafe { retire(guard, list.0, bytes, free_list) };
}

/// # Safety
///
/// `list` came from `new_list` and is unreachable.
unsafe fn free_list(list: *mut KeyList) {
    let list = ListPtr(list);
    let cap = list.header().cap as usize;
    // SAFETY: as the caller guarantees: every mark and the header were written by
    // `new_list` and are dropped once, here (loom's atomics have destructors).
    unsafe {
        for at in 0..cap {
            ptr::drop_in_place(list.first().add(at));
        }
        ptr::drop_in_place(list.0);
        std::alloc::dealloc(list.0.cast::<u8>(), list_layout(cap));
    }
}

/// The allocation of a list of `capacity` marks: the header, then the marks.
fn list_layout(capacity: usize) -> Layout {
    let marks = Layout::array::<AtomicU64>(capacity).expect("a list of marks fits in memory");
    let (layout, _) = Layout::new::<KeyList>()
        .extend(marks)
        .expect("a list of marks fits in memory");
    layout.pad_to_align()
}

/// Where the marks start, after the header.
fn marks_offset() -> usize {
    let marks = Layout::new::<AtomicU64>();
    Layout::new::<KeyList>()
        .extend(marks)
        .expect("a header and a mark fit in memory")
        .1
}
