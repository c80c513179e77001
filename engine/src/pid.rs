//! Process identifiers.

use core::fmt;
use core::hash::Hash;

/// A process identifier.
///
/// Any `Copy + Eq + Hash + Send + Sync + 'static` type is a process id through the blanket
/// impl, so a runtime plugs in its own task or actor id unchanged. [`Pid`] is the default.
/// Its `Hash` and `Eq` should not panic (derived impls on plain ids never do): the
/// registries rehash pids when their tables grow, and a panic there aborts the process
/// (the crate docs, "Panics in `Hash` and `Eq`").
pub trait ProcessId: Copy + Eq + Hash + Send + Sync + 'static {}

impl<T: Copy + Eq + Hash + Send + Sync + 'static> ProcessId for T {}

/// The default process id: an opaque `u64`.
///
/// ```
/// use regent::Pid;
/// let pid = Pid::new(7);
/// assert_eq!(pid.get(), 7);
/// assert_eq!(Pid::from(7), pid);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct Pid(u64);

impl Pid {
    /// Wraps a raw id.
    #[must_use]
    pub const fn new(id: u64) -> Pid {
        Pid(id)
    }

    /// The raw id.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for Pid {
    fn from(id: u64) -> Pid {
        Pid(id)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#PID<{}>", self.0)
    }
}
