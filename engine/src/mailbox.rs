//! Naming like a via tuple: sending to a process by the name it registered.
//!
//! A registry whose values are mailboxes ([`Mailbox`]) delivers by name with
//! [`Unique::send`](crate::Unique::send). Implementations exist for std's channel senders
//! and, behind the `crossbeam-channel` and `tokio` features, for theirs.

use core::fmt;

/// Something a message can be delivered to: a process's mailbox.
pub trait Mailbox<M> {
    /// Delivers `msg`, or hands it back if the mailbox refuses it (closed, or full for a
    /// bounded mailbox that does not wait).
    ///
    /// # Errors
    ///
    /// The message, when it was not delivered.
    fn send(&self, msg: M) -> Result<(), M>;
}

impl<M> Mailbox<M> for std::sync::mpsc::Sender<M> {
    fn send(&self, msg: M) -> Result<(), M> {
        std::sync::mpsc::Sender::send(self, msg).map_err(|e| e.0)
    }
}

/// Never blocks: a full channel hands the message back.
impl<M> Mailbox<M> for std::sync::mpsc::SyncSender<M> {
    fn send(&self, msg: M) -> Result<(), M> {
        self.try_send(msg).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(m)
            | std::sync::mpsc::TrySendError::Disconnected(m) => m,
        })
    }
}

/// Never blocks: a full bounded channel hands the message back.
#[cfg(feature = "crossbeam-channel")]
impl<M> Mailbox<M> for crossbeam_channel::Sender<M> {
    fn send(&self, msg: M) -> Result<(), M> {
        self.try_send(msg)
            .map_err(crossbeam_channel::TrySendError::into_inner)
    }
}

#[cfg(feature = "tokio")]
impl<M> Mailbox<M> for tokio::sync::mpsc::UnboundedSender<M> {
    fn send(&self, msg: M) -> Result<(), M> {
        tokio::sync::mpsc::UnboundedSender::send(self, msg).map_err(|e| e.0)
    }
}

/// Never waits: a full channel hands the message back.
#[cfg(feature = "tokio")]
impl<M> Mailbox<M> for tokio::sync::mpsc::Sender<M> {
    fn send(&self, msg: M) -> Result<(), M> {
        self.try_send(msg).map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(m)
            | tokio::sync::mpsc::error::TrySendError::Closed(m) => m,
        })
    }
}

/// Why [`Unique::send`](crate::Unique::send) did not deliver; hands the message back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SendError<M> {
    /// No process holds the name (Elixir raises `badarg`).
    NotRegistered(M),
    /// The owner's mailbox refused the message (closed or full).
    Rejected(M),
}

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_inner(self) -> M {
        match self {
            SendError::NotRegistered(m) | SendError::Rejected(m) => m,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotRegistered(_) => f.write_str("NotRegistered(..)"),
            SendError::Rejected(_) => f.write_str("Rejected(..)"),
        }
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotRegistered(_) => f.write_str("no process is registered under the name"),
            SendError::Rejected(_) => f.write_str("the process's mailbox refused the message"),
        }
    }
}

impl<M> std::error::Error for SendError<M> {}
