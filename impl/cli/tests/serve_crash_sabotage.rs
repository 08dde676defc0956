//! Negative control of `tests/serve_crash.rs` (feature `failpoints`): with the planted bug
//! `kv::ack_before_commit` (a put answered before it is committed, committed 200 ms later),
//! the crash test must report a violation: an acknowledged write lost, or a history that is not
//! linearizable.

mod crash;
mod net;

#[test]
fn acknowledging_before_the_commit_is_caught() {
    for mut config in crash::Config::from_env(7, "sync") {
        config.failpoints = Some("kv::ack_before_commit=return(200)".to_owned());
        let report = crash::run(&config);
        println!("seed {}: {}", config.seed, report.summary());
        for v in report.violations.iter().take(5) {
            println!("{v}");
        }
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.starts_with("acknowledged write lost")
                    || v.starts_with("not linearizable")),
            "seed {}: the planted bug was not caught: {}\nreplay: {}",
            config.seed,
            report.summary(),
            config.replay("serve_crash_sabotage --features failpoints")
        );
    }
}
