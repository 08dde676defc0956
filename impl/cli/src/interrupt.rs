//! Ctrl-C during `load`: the first asks the command to stop at its next consistent point (after
//! the batch being committed) and say what it committed; a second ends the process at once
//! (exit 130), which leaves the database as consistent as a crash does. Other commands end at
//! the first Ctrl-C (exit 130, as without a handler): their work is crash-safe (`dump` and a
//! search only read, a backup names nothing before it is durable, an index rebuild restarts at
//! the next open).
//!
//! Invariants: the SIGINT handler is installed before [`Interrupt::watch`] returns, so a Ctrl-C
//! after it is never the default's; it only sets the flag while an [`Interrupt`] is alive (a
//! shell goes on to other commands after a `load`, and those must still end at one Ctrl-C).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{SignalKind, signal};

/// Exit code of a process ended by a second Ctrl-C (128 + SIGINT, as a shell reports it).
const EXIT_INTERRUPTED: i32 = 130;

/// Whether Ctrl-C was pressed since [`Interrupt::watch`]; while it lives, the first Ctrl-C only
/// sets the flag.
#[derive(Debug)]
pub struct Interrupt(Arc<AtomicBool>);

/// The flag of the process's one handler, once installed.
static PRESSED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Whether an [`Interrupt`] is alive: without one, the handler ends the process at once.
static ARMED: AtomicBool = AtomicBool::new(false);

impl Interrupt {
    /// Installs the handler once a process (see the module doc) and clears the flag (a shell
    /// runs one command after another). Where it cannot (no runtime, no thread), Ctrl-C keeps
    /// ending the process at once.
    pub fn watch() -> Interrupt {
        let pressed = Arc::clone(PRESSED.get_or_init(install));
        pressed.store(false, Ordering::SeqCst);
        ARMED.store(true, Ordering::SeqCst);
        Interrupt(pressed)
    }

    /// Whether Ctrl-C was pressed.
    pub fn pressed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::SeqCst);
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
                        // The first Ctrl-C while armed asks the command to stop; any other ends
                        // the process.
                        while sigint.recv().await.is_some() {
                            if !ARMED.load(Ordering::SeqCst) || flag.swap(true, Ordering::SeqCst) {
                                std::process::exit(EXIT_INTERRUPTED);
                            }
                        }
                    })
                })
        });
    if let Err(e) = installed {
        tracing::debug!(%e, "Ctrl-C handler not installed");
    }
    pressed
}
