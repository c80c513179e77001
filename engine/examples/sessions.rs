//! One session per user id: a second login is refused with the current owner, and a
//! session that exits frees the user id at once.
//!
//! Run with `cargo run --example sessions`.

use regent::{AlreadyRegistered, Pid, Unique};

#[derive(Clone, Debug, PartialEq)]
struct Session {
    device: &'static str,
}

/// Starts a session for `user` on `device` as process `pid`, unless one is running.
fn login(
    sessions: &Unique<u64, Session>,
    pid: Pid,
    user: u64,
    device: &'static str,
) -> Result<(), Pid> {
    sessions
        .register(pid, user, Session { device })
        .map_err(|AlreadyRegistered { owner, .. }| owner)
}

pub fn main() {
    let sessions: Unique<u64, Session> = Unique::new();
    let (phone, laptop, tablet) = (Pid::new(10), Pid::new(11), Pid::new(12));

    assert_eq!(login(&sessions, phone, 42, "phone"), Ok(()));
    // A duplicate submission is refused, naming the session that holds the user.
    assert_eq!(login(&sessions, laptop, 42, "laptop"), Err(phone));
    assert_eq!(
        sessions.lookup(&42),
        Some((phone, Session { device: "phone" }))
    );

    // The phone's session exits: the runtime reports it down and the user is free at once.
    assert_eq!(sessions.process_down(phone), 1);
    assert_eq!(sessions.whereis(&42), None);
    assert_eq!(login(&sessions, tablet, 42, "tablet"), Ok(()));
    assert_eq!(sessions.monitors(), 1);
    println!("user 42: phone refused the laptop, then exited; the tablet took over");
}
