//! The monitor index: pid → the marks of the keys it holds, for `keys(pid)` and
//! `process_down(pid)`.
//!
//! A pid has one `Monitor` record, inline in the index table, exactly while it holds at
//! least one entry (so `monitors()` is exact). Its word holds the *mark* of its key (the
//! key's hash, whose low 3 bits the tables ignore) or, once it holds more than one, a
//! pointer to a list of marks. A mark is enough to find the entry again: probe the name
//! table with it and take the entry owned by the pid whose key has that mark. A runtime
//! process usually holds one name, so the common case costs one 16-byte record and no
//! allocation.
//!
//! A list is an array of words. If its first word is odd, it is a header (`len << 32 |
//! cap << 1 | 1`) followed by `cap` marks, of which the first `len` are the pid's. If it
//! is even, it is a mark, and the array is a *pair*: exactly two marks, never changed
//! once published (a change replaces it). A process in two topics, the common list, thus
//! costs 16 bytes, and a longer one a header word more than its marks.
//!
//! In a duplicate registry a mark is a slot's address instead, and the record has no pid
//! field (`entry::SlotMonitor`): the pid is read from the first mark's slot.
//!
//! Changes to a pid's monitor take its lock (`raw::Locked`), so register, unregister,
//! update and exit of one pid serialize while different pids never contend. Readers
//! (`keys`) walk the marks without the lock: a list only grows in place (the new length is
//! published after the new mark), and a list replaced or freed is retired through the epoch.

use core::alloc::Layout;
use core::ptr;

use crossbeam_epoch::Guard;

use crate::counter::Counter;
use crate::partition::Partitioned;
use crate::raw::{LockWord, Lockable, Locked};
use crate::reclaim::retire;
use crate::sync::{AtomicU64, Ordering};

/// The word's data is a list pointer, not a mark (marks have their low 3 bits clear).
const LIST: u64 = 0b100;

/// The data a unique registry's exit shows lock-free readers while it removes the names of
/// a pid that holds more than one: a null list, which no monitor otherwise holds. From the
/// moment it is stored the pid holds none of its names, to every reader (`Unique`'s docs,
/// "Exits are atomic"); the exit itself keeps the real data and walks it.
pub(crate) const DOWN: u64 = LIST;

/// Whether `data` is a list (a pid that holds, or held, more than one key).
pub(crate) fn is_list(data: u64) -> bool {
    data & LIST != 0
}

/// A pid's list of marks: a pair or a headed list (module docs).
#[derive(Clone, Copy)]
struct List(*mut AtomicU64);

/// A pid's locked monitor: a [`Monitor`](crate::entry::Monitor) in a unique registry, a
/// [`SlotMonitor`](crate::entry::SlotMonitor) in a duplicate one.
pub(crate) type PidLock<'t, 'g, E, R> = Locked<'t, 'g, E, R>;

/// The data word of a pid's first key.
pub(crate) fn first(mark: u64) -> u64 {
    debug_assert_eq!(mark & 0b111, 0);
    mark
}

/// The first mark in `data` (a monitor's data bits). A list's first word stays one of the
/// pid's marks, or the last one it lost, while the list is reachable, so that a duplicate
/// registry can read the pid from its slot (`SlotMonitor`).
///
/// # Safety
///
/// `data` was read from a monitor under `guard`, which must be pinned while this runs.
pub(crate) unsafe fn first_mark(data: u64, _guard: &Guard) -> u64 {
    debug_assert_ne!(data, DOWN, "an exiting pid has no first mark to read");
    if data & LIST == 0 {
        return data;
    }
    let list = as_list(data);
    match list.header() {
        // A headed list's capacity is at least 4: its first mark's word exists, written
        // when the list was made and changed only to another of the pid's marks.
        Some(_) => list.marks()[0].load(Ordering::Relaxed),
        None => list.pair()[0],
    }
}

/// Calls `f` with every mark in `data` (a monitor's data bits).
///
/// # Safety
///
/// `data` was read from a monitor under `guard`, which must be pinned while this runs.
pub(crate) unsafe fn for_each_mark(data: u64, guard: &Guard, f: impl FnMut(u64)) {
    // SAFETY: as the caller guarantees.
    unsafe { for_each_mark_ahead(data, guard, |_| {}, f) }
}

/// Marks whose removal a pid's exit starts ahead of the one it waits for.
const AHEAD: usize = 8;

/// Calls `f` with every mark in `data` (a monitor's data bits), and `ahead` with each mark
/// [`AHEAD`] marks before `f` gets it (the first ones before any), so that `f`'s cache
/// misses on a mark can be started early.
///
/// # Safety
///
/// `data` was read from a monitor under `guard`, which must be pinned while this runs.
pub(crate) unsafe fn for_each_mark_ahead(
    data: u64,
    _guard: &Guard,
    mut ahead: impl FnMut(u64),
    mut f: impl FnMut(u64),
) {
    debug_assert_ne!(
        data, DOWN,
        "an exiting pid's marks are walked from its real data"
    );
    if data & LIST == 0 {
        ahead(data);
        f(data);
        return;
    }
    // A list a monitor pointed to is retired through the epoch, after `_guard`.
    // Acquire: pairs with the Release in `add`, so marks below `len` are written.
    let marks = as_list(data).live(Ordering::Acquire);
    for mark in marks.iter().take(AHEAD) {
        ahead(mark.load(Ordering::Relaxed));
    }
    for (at, mark) in marks.iter().enumerate() {
        if let Some(later) = marks.get(at + AHEAD) {
            ahead(later.load(Ordering::Relaxed));
        }
        f(mark.load(Ordering::Relaxed));
    }
}

/// Adds `mark` to the locked pid's keys.
pub(crate) fn add<E: Lockable, R: Fn(&E) -> u64>(
    lock: &mut PidLock<'_, '_, E, R>,
    mark: u64,
    lists: &Counter,
    guard: &Guard,
) {
    let data = lock.data();
    if data & LIST == 0 {
        lock.set_data(new_pair(data, mark, lists));
        return;
    }
    let list = as_list(data);
    if let Some(header) = list.header() {
        // Relaxed: only the lock holder writes the header.
        let (len, cap) = unpack(header.load(Ordering::Relaxed));
        if len < cap {
            list.marks()[len].store(mark, Ordering::Relaxed);
            // Release: publishes the mark to lock-free readers (pairs with `for_each_mark`).
            header.store(pack(len + 1, cap), Ordering::Release);
            return;
        }
    }
    let mut all: Vec<u64> = list
        .live(Ordering::Relaxed)
        .iter()
        .map(|m| m.load(Ordering::Relaxed))
        .collect();
    all.push(mark);
    let cap = (2 * all.len() - 2).max(4);
    replace_list(lock, new_list(&all, cap, lists), lists, guard);
}

/// Removes one occurrence of `mark` from the locked pid's keys; returns whether none are
/// left (the caller then lets the monitor go).
pub(crate) fn remove<E: Lockable, R: Fn(&E) -> u64>(
    lock: &mut PidLock<'_, '_, E, R>,
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
    let Some(header) = list.header() else {
        // A pair: the other mark becomes the pid's one key.
        let [a, b] = list.pair();
        assert!(a == mark || b == mark, "the pid holds this key");
        replace_list(lock, if a == mark { b } else { a }, lists, guard);
        return false;
    };
    let (len, cap) = unpack(header.load(Ordering::Relaxed));
    let marks = list.marks();
    let at = marks[..len]
        .iter()
        .position(|m| m.load(Ordering::Relaxed) == mark);
    let at = at.expect("the pid holds this key");
    // Removal from a pid's list is O(its keys), as in Elixir's pid table. A concurrent
    // reader may miss the moved mark or see it twice: `keys` is weakly consistent.
    let last = marks[len - 1].load(Ordering::Relaxed);
    marks[at].store(last, Ordering::Relaxed);
    // Release: pairs with the Acquire in `for_each_mark`.
    header.store(pack(len - 1, cap), Ordering::Release);
    if len == 1 {
        clear(lock, lists, guard);
        return true;
    }
    false
}

/// Removes every mark of the locked pid for which `keep` returns false; returns whether none
/// are left (the monitor then goes with the lock). `keep` sees each mark once and may act
/// on the ones it drops.
pub(crate) fn retain<E: Lockable, R: Fn(&E) -> u64>(
    lock: &mut PidLock<'_, '_, E, R>,
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
    let Some(header) = list.header() else {
        let kept: Vec<u64> = list.pair().into_iter().filter(|&m| keep(m)).collect();
        return match kept[..] {
            [_, _] => false,
            [one] => {
                replace_list(lock, one, lists, guard);
                false
            }
            _ => {
                clear(lock, lists, guard);
                true
            }
        };
    };
    let (mut len, cap) = unpack(header.load(Ordering::Relaxed));
    let marks = list.marks();
    // Downwards, so that the mark a removal moves into place was visited already.
    for at in (0..len).rev() {
        if keep(marks[at].load(Ordering::Relaxed)) {
            continue;
        }
        let last = marks[len - 1].load(Ordering::Relaxed);
        marks[at].store(last, Ordering::Relaxed);
        len -= 1;
        // Release: pairs with the Acquire in `for_each_mark`.
        header.store(pack(len, cap), Ordering::Release);
    }
    if len == 0 {
        clear(lock, lists, guard);
        return true;
    }
    false
}

/// Puts `data` (a mark or a new list) in the locked pid's word in place of its list, and
/// retires the list.
fn replace_list<E: Lockable, R: Fn(&E) -> u64>(
    lock: &mut PidLock<'_, '_, E, R>,
    data: u64,
    lists: &Counter,
    guard: &Guard,
) {
    let old = lock.data();
    debug_assert_ne!(old & LIST, 0, "the pid holds a list");
    lock.set_data(data);
    // SAFETY: replaced in the word (readers pinned now may still walk it), retired once.
    unsafe { retire_list(guard, old, lists) };
}

/// Removes the locked pid's monitor (now: it stays locked until the lock drops) and
/// retires its list. Its marks are out of every reader's reach once this returns, so what
/// they point to may be retired after it.
pub(crate) fn clear<E: Lockable, R: Fn(&E) -> u64>(
    lock: &mut PidLock<'_, '_, E, R>,
    lists: &Counter,
    guard: &Guard,
) {
    let data = lock.data();
    clear_exited(lock, data, lists, guard);
}

/// [`clear`] for a monitor whose word shows [`DOWN`] while its exit runs: `data` is what
/// the word held before.
pub(crate) fn clear_exited<E: Lockable, R: Fn(&E) -> u64>(
    lock: &mut PidLock<'_, '_, E, R>,
    data: u64,
    lists: &Counter,
    guard: &Guard,
) {
    // Removed before its list is retired: a thread that pins after the retirement must not
    // find the monitor, or the collector could free the list under it.
    lock.remove_now();
    if data & LIST != 0 {
        // SAFETY: unreachable for threads that pin from now on (the monitor is gone);
        // readers pinned now may still walk it.
        unsafe { retire_list(guard, data, lists) };
    }
}

/// Frees every monitor's list when the registry is dropped (`&mut`: no thread is inside).
pub(crate) fn free_all<E: LockWord>(pids: &mut Partitioned<E>) {
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
    if data & LIST != 0 && data != DOWN {
        // SAFETY: as the caller guarantees.
        unsafe { free_words(as_list(data).0) };
    }
}

/// A pair of marks (module docs).
fn new_pair(a: u64, b: u64, lists: &Counter) -> u64 {
    debug_assert_eq!((a | b) & 0b111, 0);
    alloc_words(&[a, b], lists)
}

/// A headed list of `marks`, with room for `cap`.
fn new_list(marks: &[u64], cap: usize, lists: &Counter) -> u64 {
    let mut words = Vec::with_capacity(1 + cap);
    words.push(pack(marks.len(), cap));
    words.extend_from_slice(marks);
    words.resize(1 + cap, 0);
    alloc_words(&words, lists)
}

fn alloc_words(words: &[u64], lists: &Counter) -> u64 {
    let layout = words_layout(words.len());
    let list = crate::raw::allocate(layout, false).cast::<AtomicU64>();
    for (at, &word) in words.iter().enumerate() {
        // SAFETY: freshly allocated for `words.len()` words; each is written once here.
        unsafe { ptr::write(list.add(at), AtomicU64::new(word)) };
    }
    lists.add(layout.size());
    list as usize as u64 | LIST
}

/// A header word: `len` live marks of `cap`.
fn pack(len: usize, cap: usize) -> u64 {
    let cap = u32::try_from(cap)
        .ok()
        .filter(|&c| c < 1 << 31)
        .expect("a pid holds fewer than 2^31 entries");
    (len as u64) << 32 | u64::from(cap) << 1 | 1
}

/// `(len, cap)` of a header word.
fn unpack(header: u64) -> (usize, usize) {
    ((header >> 32) as usize, (header as u32 >> 1) as usize)
}

impl List {
    /// The header, or `None` for a pair.
    fn header<'a>(self) -> Option<&'a AtomicU64> {
        // SAFETY: a live list (see `as_list`). Relaxed: the first word never changes
        // between a header and a mark, and its kind was published with the list.
        let first = unsafe { &*self.0 };
        (first.load(Ordering::Relaxed) & 1 == 1).then_some(first)
    }

    /// A pair's two marks.
    fn pair(self) -> [u64; 2] {
        // SAFETY: a live pair has two words, never changed.
        unsafe { [0, 1].map(|at| (*self.0.add(at)).load(Ordering::Relaxed)) }
    }

    /// A headed list's marks, `cap` of them.
    fn marks<'a>(self) -> &'a [AtomicU64] {
        let header = self.header().expect("a headed list");
        let (_, cap) = unpack(header.load(Ordering::Relaxed));
        // SAFETY: `cap` initialized marks follow the header of a live list.
        unsafe { core::slice::from_raw_parts(self.0.add(1), cap) }
    }

    /// The pid's marks: both of a pair, or the first `len` of a headed list, with `len`
    /// read with `order`.
    fn live<'a>(self, order: Ordering) -> &'a [AtomicU64] {
        match self.header() {
            // SAFETY: a live pair has two initialized words.
            None => unsafe { core::slice::from_raw_parts(self.0, 2) },
            Some(header) => &self.marks()[..unpack(header.load(order)).0],
        }
    }

    /// Words in the allocation.
    fn words(self) -> usize {
        self.header()
            .map_or(2, |h| 1 + unpack(h.load(Ordering::Relaxed)).1)
    }
}

/// The list a monitor's data word points to. The caller keeps it alive: the lock holder,
/// or a reader pinned since it read the word (lists are retired through the epoch).
fn as_list(data: u64) -> List {
    List((data & !LIST) as usize as *mut AtomicU64)
}

/// # Safety
///
/// `data`'s list is unreachable for threads that pin from now on, and retired once.
unsafe fn retire_list(guard: &Guard, data: u64, lists: &Counter) {
    let list = as_list(data);
    let bytes = words_layout(list.words()).size();
    lists.sub(bytes);
    // SAFETY: as the caller guarantees; `free_words` frees what `alloc_words` allocated.
    unsafe { retire(guard, list.0, bytes, free_words) };
}

/// # Safety
///
/// `first` came from `alloc_words` and is unreachable.
unsafe fn free_words(first: *mut AtomicU64) {
    let words = List(first).words();
    // SAFETY: as the caller guarantees: every word was written by `alloc_words` and is
    // dropped once, here (loom's atomics have destructors).
    unsafe {
        for at in 0..words {
            ptr::drop_in_place(first.add(at));
        }
        std::alloc::dealloc(first.cast::<u8>(), words_layout(words));
    }
}

/// The allocation of a list of `words` words.
fn words_layout(words: usize) -> Layout {
    Layout::array::<AtomicU64>(words).expect("a list of marks fits in memory")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::entry::Monitor;

    /// A pid's marks: `(k + 1) << 3`, so that none has its low 3 bits set.
    fn marks(n: usize) -> Vec<u64> {
        (1..=n as u64).map(|k| k << 3).collect()
    }

    /// Asserts that `ahead` saw each of `marks` once, and each `AHEAD` marks before the
    /// visit that took it (the first ones before any): `log` holds the walk's calls, in
    /// order, as `(is_ahead, mark)`.
    fn assert_ahead(log: &[(bool, u64)], marks: &[u64]) {
        let (mut aheads, mut visits) = (Vec::new(), Vec::new());
        for &(is_ahead, mark) in log {
            if is_ahead {
                aheads.push(mark);
                continue;
            }
            assert!(
                aheads.contains(&mark),
                "{mark} visited before its look-ahead"
            );
            assert_eq!(aheads.len(), marks.len().min(AHEAD + visits.len() + 1));
            visits.push(mark);
        }
        for seen in [&mut aheads, &mut visits] {
            seen.sort_unstable();
            assert_eq!(seen.as_slice(), marks);
        }
    }

    #[test]
    fn marks_are_walked_ahead_and_retained() {
        let pids: Partitioned<Monitor<u64>> = Partitioned::new(1, 16);
        let lists = Counter::new();
        let rehash = |m: &Monitor<u64>| m.pid << 3;
        // A single mark, a pair, and headed lists shorter and longer than the look-ahead.
        for (pid, n) in [1, 2, 3, AHEAD, AHEAD + 1, 3 * AHEAD + 5]
            .into_iter()
            .enumerate()
        {
            let pid = pid as u64;
            let all = marks(n);
            let guard = &crossbeam_epoch::pin();
            let hash = pid << 3;
            let fresh = Monitor::locked(pid, first(all[0]));
            let mut lock = pids
                .get(hash)
                .lock(hash, |m| m.pid == pid, Some(fresh), &rehash, guard)
                .unwrap();
            for &mark in &all[1..] {
                add(&mut lock, mark, &lists, guard);
            }

            let log = core::cell::RefCell::new(Vec::new());
            // SAFETY: read under the lock and `guard`.
            unsafe {
                for_each_mark_ahead(
                    lock.data(),
                    guard,
                    |m| log.borrow_mut().push((true, m)),
                    |m| log.borrow_mut().push((false, m)),
                );
            }
            assert_ahead(&log.take(), &all);

            // Keep every third mark: `retain` moves marks into the places it empties.
            let kept: Vec<u64> = all.iter().copied().filter(|m| (m >> 3) % 3 == 0).collect();
            let mut visited = Vec::new();
            let emptied = retain(
                &mut lock,
                |m| {
                    visited.push(m);
                    kept.contains(&m)
                },
                &lists,
                guard,
            );
            visited.sort_unstable();
            assert_eq!(visited, all, "retain visits each mark once");
            assert_eq!(emptied, kept.is_empty());
            if !emptied {
                let mut left = Vec::new();
                // SAFETY: as above.
                unsafe { for_each_mark(lock.data(), guard, |m| left.push(m)) };
                left.sort_unstable();
                assert_eq!(left, kept, "{n} marks");
                clear(&mut lock, &lists, guard);
            }
        }
        assert_eq!(lists.sum(), 0, "every list was retired");
    }
}
