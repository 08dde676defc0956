//! Ctrl-C during `load`: the first asks the command to stop at its next consistent point (after
//! the batch being committed) and say what it committed; a second ends the process at once
//! (exit 130), which leaves the database as consistent as a crash does. Other commands keep the
//! default (the process ends at once): their work is crash-safe (`dump` and a search only read,
//! a backup names nothing before it is durable, an index rebuild restarts at the next open).
//!
//! Invariant: the SIGINT handler is installed before [`Interrupt::watch`] returns, so a Ctrl-C
//! after it is never the default's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{SignalKind, signal};

/// Exit code of a process ended by a second Ctrl-C (128 + SIGINT, as a shell reports it).
const EXIT_INTERRUPTED: i32 = 130;

/// Whether Ctrl-C was pressed since [`Interrupt::watch`].
#[derive(Debug, Clone)]
pub struct Interrupt(Arc<AtomicBool>);

/// The flag of the process's one handler, once installed.
static PRESSED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

impl Interrupt {
    /// Installs the handler once a process (see the module doc) and clears the flag (a shell
    /// runs one command after another). Where it cannot (no runtime, no thread), Ctrl-C keeps
    /// ending the process at once.
    pub fn watch() -> Interrupt {
        let pressed = Arc::clone(PRESSED.get_or_init(install));
        pressed.store(false, Ordering::SeqCst);
        Interrupt(pressed)
    }

    /// Whether Ctrl-C was pressed.
    pub fn pressed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Installs the SIGINT handler and its thread; returns the flag it sets.
fn install() -> Arc<AtomicBool> {
    let pressed = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&pressed);
    let installed = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .and_then(|runtime| {
            let mut sigint = {
                let _entered = runtime.enter();
                signal(SignalKind::interrupt())?
            };
            std::thread::Builder::new()
                .name("ctrl-c".to_owned())
                .spawn(move || {
                    runtime.block_on(async move {
                        sigint.recv().await;
                        flag.store(true, Ordering::SeqCst);
                        sigint.recv().await;
                        std::process::exit(EXIT_INTERRUPTED);
                    })
                })
        });
    if let Err(e) = installed {
        tracing::debug!(%e, "Ctrl-C handler not installed");
    }
    pressed
}
