//! Runs every example in `engine/examples/`: each asserts its own story.

#[path = "../examples/chat_rooms.rs"]
mod chat_rooms;
#[path = "../examples/pubsub.rs"]
mod pubsub;
#[path = "../examples/sessions.rs"]
mod sessions;

#[test]
fn chat_rooms() {
    chat_rooms::main();
}

#[test]
fn pubsub() {
    pubsub::main();
}

#[test]
fn sessions() {
    sessions::main();
}
