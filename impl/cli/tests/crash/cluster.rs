//! The crash test against a cluster: three `kvstore serve --initial-cluster ...` members, the
//! 16 clients of [`super::client`] spread over them (each reconnects to the next live member
//! after an error) and a watcher following every revision on whichever member it reaches; at
//! seeded moments one member, chosen by the seed (the leader or a follower), is SIGKILLed and
//! restarted on its directory. Then the same checks as alone ([`super::judge`]): every
//! acknowledged write is in the history at its revision, the watcher saw every revision once
//! and in order although it moved between members (no watch going back in time, etcd #15271),
//! and the history is linearizable.

use std::path::PathBuf;
use std::time::Duration;

use kvstore_model::rng::below;

use super::{Config, Report, ServerProcess, Traffic};
use crate::net::free_port;

/// Members in the cluster.
pub const MEMBERS: usize = 3;
/// The cluster runs this long at least, and at most `+ UP_SPREAD_MS`, before each kill: long
/// enough for an election (1 to 2 s of silence) and some traffic after it.
const UP_MIN_MS: u64 = 1000;
const UP_SPREAD_MS: u64 = 2000;
/// A killed member stays down up to this long.
const DOWN_MAX_MS: u64 = 2000;

/// One member's fixed places (its ports stay the same across restarts: the peer URL is its
/// identity).
struct Seat {
    dir: PathBuf,
    log: PathBuf,
    port: u16,
    args: Vec<String>,
}

impl Seat {
    fn start(&self, config: &Config) -> ServerProcess {
        ServerProcess::start_on(&self.dir, &self.log, config, self.port, &self.args)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Runs one crash test against a cluster and reports what it found.
pub fn run(config: &Config) -> Report {
    let dir = tempfile::tempdir().expect("temp dir");
    let peer_ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let initial = peer_ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("n{i}=http://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    let seats: Vec<Seat> = (0..MEMBERS)
        .map(|i| Seat {
            dir: dir.path().join(format!("m{i}")),
            log: dir.path().join(format!("m{i}.log")),
            port: free_port(),
            args: vec![
                "--name".to_owned(),
                format!("n{i}"),
                "--initial-cluster".to_owned(),
                initial.clone(),
            ],
        })
        .collect();
    let mut members: Vec<Option<ServerProcess>> =
        seats.iter().map(|seat| Some(seat.start(config))).collect();
    let all: Vec<String> = seats.iter().map(Seat::endpoint).collect();
    let traffic = Traffic::start(config.seed, all.clone());
    let mut s = config.seed;
    let mut report = Report::default();
    for _ in 0..config.rounds {
        std::thread::sleep(Duration::from_millis(
            UP_MIN_MS + below(&mut s, UP_SPREAD_MS),
        ));
        let victim = usize::try_from(below(&mut s, MEMBERS as u64)).unwrap_or(0);
        traffic.publish(
            (0..MEMBERS)
                .filter(|&i| i != victim)
                .map(|i| seats[i].endpoint())
                .collect(),
        );
        if let Some(member) = members[victim].take() {
            member.kill();
        }
        report.kills += 1;
        // Down for a while: long enough, some rounds, for the others to elect a new leader.
        std::thread::sleep(Duration::from_millis(below(&mut s, DOWN_MAX_MS)));
        members[victim] = Some(seats[victim].start(config));
        traffic.publish(all.clone());
    }
    traffic.finish(seats[0].endpoint(), &mut report);
    for member in members.into_iter().flatten() {
        member.kill();
    }
    report
}
