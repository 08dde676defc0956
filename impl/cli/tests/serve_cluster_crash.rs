//! A three-member `kvstore serve` cluster with one member at a time SIGKILLed (leader or
//! follower, by the seed) and restarted while 16 clients write through every member: every
//! acknowledged write is in the history at its revision, a watcher moving between members sees
//! every revision once and in order, and the clients' history is linearizable. See
//! `tests/crash/cluster.rs`; the negative control is in `tests/serve_cluster_sabotage.rs`.

mod crash;

#[test]
fn sigkill_of_any_member_loses_nothing_acknowledged() {
    for config in crash::Config::from_env(11, "sync") {
        println!(
            "seed {} ({} kills): replay with {}",
            config.seed,
            config.rounds,
            config.replay("serve_cluster_crash")
        );
        let started = std::time::Instant::now();
        let report = crash::cluster::run(&config);
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
            config.replay("serve_cluster_crash")
        );
        assert!(
            report.answered_puts > 0 && report.kills == config.rounds,
            "{}",
            report.summary()
        );
    }
}
