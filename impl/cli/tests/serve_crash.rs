//! `kvstore serve` SIGKILLed at random moments while 16 clients write (`--durability sync`,
//! then `group-commit`): after each restart every acknowledged write is in the history at its
//! revision, a watcher resuming from its last revision sees every revision once, in order, and
//! the clients' history is linearizable. See `tests/crash/mod.rs`; the negative control is
//! `tests/serve_crash_sabotage.rs`.

mod crash;

fn campaign(default_seed: u64, durability: &'static str) {
    for config in crash::Config::from_env(default_seed, durability) {
        println!(
            "seed {} ({durability}, {} kills): replay with {}",
            config.seed,
            config.rounds,
            config.replay("serve_crash")
        );
        let started = std::time::Instant::now();
        let report = crash::run(&config);
        println!(
            "seed {}: {} in {:?}",
            config.seed,
            report.summary(),
            started.elapsed()
        );
        assert!(
            report.violations.is_empty(),
            "seed {}: {} violations:\n{}\nreplay: {}",
            config.seed,
            report.violations.len(),
            report.violations.join("\n"),
            config.replay("serve_crash")
        );
        assert!(
            report.answered_puts > 0 && report.kills == config.rounds,
            "{}",
            report.summary()
        );
    }
}

#[test]
fn sigkill_with_sync_loses_nothing_acknowledged() {
    campaign(1, "sync");
}

#[test]
fn sigkill_with_group_commit_loses_nothing_acknowledged() {
    campaign(2, "group-commit");
}
