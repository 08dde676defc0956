//! The deterministic cluster simulation campaign (issue 17; the harness is in `sim/`): seeded
//! runs of a whole cluster with clients and a nemesis, every run checked for linearizability and
//! for every member's state against the committed log; each planted bug shown caught; one seed
//! shown to replay the same run.
//!
//! `SIM_SEED=<n>` replays one seed; `SIM_SEEDS=<n>` runs more seeds (from `SIM_FIRST_SEED`); `SIM_SECS=<n>` makes each
//! run last `n` virtual seconds (the longer mode).

mod common;
mod sim;

use std::time::Duration;

use sim::{Bugs, Check, Report, Scenario, run, seeds};

/// Virtual seconds a CI run lasts (`SIM_SECS` overrides it for a longer mode).
const SECS_DEFAULT: u64 = 8;

fn scenario(seed: u64, members: u64, secs: u64) -> Scenario {
    let secs = std::env::var("SIM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(secs);
    Scenario {
        seed,
        members,
        clients: 4,
        duration: Duration::from_secs(secs),
        bugs: Bugs::default(),
    }
}

async fn campaign(members: u64, secs: u64, first_seed: u64, default_count: u64) {
    let mut failed = Vec::new();
    let seeds = seeds(first_seed, default_count);
    for &seed in &seeds {
        let report = run(scenario(seed, members, secs)).await;
        println!("{report}");
        if !report.violations.is_empty() {
            failed.push(report);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed:\n{}",
        failed.len(),
        seeds.len(),
        failed
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn three_members_stay_linearizable_and_agree_with_the_log() {
    campaign(3, SECS_DEFAULT, 1, 3).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn five_members_stay_linearizable_and_agree_with_the_log() {
    campaign(5, 4, 1001, 1).await;
}

/// Runs the campaign with `bugs` planted on seeds 1..=`seeds_max` (or those `SIM_SEED`,
/// `SIM_SEEDS` and `SIM_FIRST_SEED` name) until `check` catches it; returns the catching run.
async fn caught(bugs: Bugs, check: Check, seeds_max: u64) -> Report {
    let mut missed = Vec::new();
    let seeds = seeds(1, seeds_max);
    for &seed in &seeds {
        let report = run(Scenario {
            bugs,
            ..scenario(seed, 3, SECS_DEFAULT)
        })
        .await;
        if report.caught(check) {
            println!("{report}");
            return report;
        }
        missed.push(report.to_string());
    }
    panic!(
        "{bugs:?} was not caught by {check:?} in seeds {seeds:?}:\n{}",
        missed.join("\n\n")
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn planted_ack_before_quorum_is_caught() {
    let bugs = Bugs {
        ack_before_quorum: true,
        ..Bugs::default()
    };
    caught(bugs, Check::Acknowledged, 3).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn planted_double_apply_is_caught() {
    let bugs = Bugs {
        apply_twice: true,
        ..Bugs::default()
    };
    caught(bugs, Check::MembersAgree, 3).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn planted_read_from_a_deposed_leader_is_caught() {
    let bugs = Bugs {
        stale_reads: true,
        ..Bugs::default()
    };
    caught(bugs, Check::Linearizable, 3).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn planted_watch_event_for_an_uncommitted_write_is_caught() {
    let bugs = Bugs {
        phantom_watch_events: true,
        ..Bugs::default()
    };
    caught(bugs, Check::WatchCommitted, 3).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn one_seed_replays_the_same_run() {
    for seed in seeds(7, 1) {
        let first = run(scenario(seed, 3, 4)).await;
        let second = run(scenario(seed, 3, 4)).await;
        assert!(first.violations.is_empty(), "{first}");
        assert_eq!(
            first.trace, second.trace,
            "seed {seed} did not replay the same run"
        );
        println!(
            "seed {seed} replayed the same {} trace lines",
            first.trace.len()
        );
    }
}
