//! Loopback ports for the tests that run `kvstore serve` as a child process (`cluster`,
//! `crash`): a free port, and waiting until a server listens on one.
//!
//! Each test process takes its ports from a block of its own, below Linux's ephemeral range
//! (32768 and up), chosen by its process id: a port found free and then released is not handed
//! to a test running in parallel before this one's server binds it (two servers on one peer
//! URL would each take the other cluster's raft traffic as its own).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Ports a test process may take, from the start of its block.
const BLOCK: u16 = 32;
/// Blocks between port 10000 and the ephemeral range.
const BLOCKS: u16 = 700;

/// The next port of this process's block to try.
static NEXT: AtomicU16 = AtomicU16::new(0);

/// A port of this process's block, free on 127.0.0.1 a moment ago (see the module doc); a
/// port of the kernel's choosing once the block is used up.
pub fn free_port() -> u16 {
    let block_start = 10_000 + (std::process::id() % u32::from(BLOCKS)) as u16 * BLOCK;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        if n >= BLOCK {
            break;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", block_start + n)) {
            drop(listener);
            return block_start + n;
        }
    }
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
