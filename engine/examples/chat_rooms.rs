//! The chat application from the registry walkthrough, on regent.
//!
//! Rooms are processes (threads here) named through a `Unique` registry: a message for
//! "room:lobby" is sent by name, whatever incarnation of the room is running. A supervisor
//! restarts a room that crashes; the new incarnation re-registers the same name at once,
//! because the supervisor reported the old pid down first (regent's cleanup is
//! linearizable, so the name is free the moment `process_down` returns). Members subscribe
//! to a room's topic in a `Duplicate` registry and receive each broadcast.
//!
//! Run with `cargo run --example chat_rooms`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use regent::{Duplicate, Pid, Unique};

enum RoomMsg {
    Post(String),
    Crash,
}

struct Chat {
    rooms: Unique<String, Sender<RoomMsg>>,
    members: Duplicate<String, Sender<String>>,
    next_pid: AtomicU64,
}

impl Chat {
    fn spawn_pid(&self) -> Pid {
        Pid::new(self.next_pid.fetch_add(1, Ordering::Relaxed))
    }

    /// Starts an incarnation of room `name`; returns its pid and thread.
    fn start_room(self: &Arc<Self>, name: &str) -> (Pid, JoinHandle<()>) {
        let pid = self.spawn_pid();
        let (tx, rx) = channel();
        self.rooms
            .register(pid, format!("room:{name}"), tx)
            .expect("a room's name is free once its last incarnation was reported down");
        let chat = self.clone();
        let topic = format!("topic:{name}");
        let handle = thread::spawn(move || chat.run_room(&topic, &rx));
        (pid, handle)
    }

    fn run_room(&self, topic: &str, inbox: &Receiver<RoomMsg>) {
        for msg in inbox {
            match msg {
                RoomMsg::Post(text) => {
                    self.members.dispatch(topic, |_member, mailbox| {
                        let _ = mailbox.send(text.clone());
                    });
                }
                RoomMsg::Crash => return,
            }
        }
    }

    /// Sends a post to a room by name.
    fn post(&self, room: &str, text: &str) -> Pid {
        self.rooms
            .send(&format!("room:{room}"), RoomMsg::Post(text.to_string()))
            .expect("the room is running")
    }
}

/// Supervises one room: restarts it whenever it exits, `restarts` times.
fn supervise(chat: &Arc<Chat>, room: &str, restarts: usize) -> JoinHandle<usize> {
    let chat = chat.clone();
    let room = room.to_string();
    let (mut pid, mut handle) = chat.start_room(&room);
    thread::spawn(move || {
        for restart in 0..=restarts {
            handle.join().expect("rooms exit, they do not panic");
            // The runtime's half of the contract: report the exit, then restart.
            chat.rooms.process_down(pid);
            chat.members.process_down(pid);
            if restart == restarts {
                return restart;
            }
            (pid, handle) = chat.start_room(&room);
        }
        restarts
    })
}

pub fn main() {
    let chat = Arc::new(Chat {
        rooms: Unique::new(),
        members: Duplicate::new(),
        next_pid: AtomicU64::new(1),
    });
    let supervisor = supervise(&chat, "lobby", 1);

    // Three members join the lobby's topic.
    let inboxes: Vec<Receiver<String>> = (0..3)
        .map(|_| {
            let (tx, rx) = channel();
            chat.members
                .register(chat.spawn_pid(), "topic:lobby".to_string(), tx);
            rx
        })
        .collect();

    let first = chat.post("lobby", "hello");
    for inbox in &inboxes {
        assert_eq!(inbox.recv_timeout(Duration::from_secs(5)).unwrap(), "hello");
    }

    // The room crashes; the supervisor reports it down and restarts it under a new pid.
    chat.rooms.send("room:lobby", RoomMsg::Crash).unwrap();
    let second = loop {
        match chat.rooms.whereis("room:lobby") {
            Some(pid) if pid != first => break pid,
            _ => thread::yield_now(),
        }
    };
    assert_eq!(
        chat.post("lobby", "again"),
        second,
        "sent by name to the new incarnation"
    );
    for inbox in &inboxes {
        assert_eq!(inbox.recv_timeout(Duration::from_secs(5)).unwrap(), "again");
    }
    println!("room:lobby was {first}, restarted as {second}; 3 members got both posts");

    chat.rooms.send("room:lobby", RoomMsg::Crash).unwrap();
    assert_eq!(supervisor.join().unwrap(), 1);
    assert_eq!(
        chat.rooms.count(),
        0,
        "the last incarnation was reported down"
    );
    assert_eq!(chat.members.count(), 3);
}
