//! `kvstore serve` SIGKILLed at random moments while 16 clients write (`--durability sync`,
//! then `group-commit`): after each restart every acknowledged write is in the history at its
//! revision, a watcher resuming from its last revision sees every revision once, in order, and
//! the clients' history is linearizable. See `tests/crash/mod.rs`; the negative control is
//! `tests/serve_crash_sabotage.rs`.

mod crash;
mod net;

#[test]
fn sigkill_with_sync_loses_nothing_acknowledged() {
    crash::campaign(1, "sync", "serve_crash", crash::run);
}

#[test]
fn sigkill_with_group_commit_loses_nothing_acknowledged() {
    crash::campaign(2, "group-commit", "serve_crash", crash::run);
}
