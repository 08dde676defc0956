//! Loopback ports for the tests that run `kvstore serve` as a child process (`cluster`,
//! `crash`): a free port, and waiting until a server listens on one.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 a moment ago (the listener that found it is closed).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until something accepts connections on 127.0.0.1:`port`, polling every `poll`; past
/// `patience`, panics with `why()` (the server's log, say).
pub fn wait_listening(port: u16, patience: Duration, poll: Duration, why: impl Fn() -> String) {
    let deadline = Instant::now() + patience;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on port {port}: {}",
            why()
        );
        std::thread::sleep(poll);
    }
}
