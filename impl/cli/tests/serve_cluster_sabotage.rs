//! Negative controls of `tests/serve_cluster.rs` and `tests/serve_cluster_crash.rs` (feature
//! `failpoints`): with the planted bug `replica::commit_locally` (a member commits a write to
//! its own engine and acknowledges it without proposing it through raft: acknowledged before a
//! quorum has it), the check that every member reads an acknowledged write must fail, and so
//! must the crash test's.

mod cluster;
mod crash;
mod net;

use cluster::{Cluster, read_everywhere};

#[test]
fn acknowledging_before_a_quorum_is_caught() {
    let cluster = Cluster::start(3, Some("replica::commit_locally=return"));
    let caught = (0..3).any(|writer| read_everywhere(&cluster, writer, "k", "v").is_err());
    assert!(
        caught,
        "a write committed on one member alone was read everywhere:\n{}",
        cluster.logs()
    );
}

#[test]
fn the_cluster_crash_test_catches_acknowledging_before_a_quorum() {
    for mut config in crash::Config::from_env(13, "sync") {
        config.failpoints = Some("replica::commit_locally=return".to_owned());
        let report = crash::cluster::run(&config);
        println!("seed {}: {}", config.seed, report.summary());
        for v in report.violations.iter().take(5) {
            println!("{v}");
        }
        assert!(
            report.violations.iter().any(|v| {
                v.starts_with("acknowledged write lost") || v.starts_with("not linearizable")
            }),
            "seed {}: the planted bug was not caught: {}\nreplay: {}",
            config.seed,
            report.summary(),
            config.replay("serve_cluster_sabotage --features failpoints")
        );
    }
}
