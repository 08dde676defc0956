//! A three-member `kvstore serve` cluster with one member at a time SIGKILLed (leader or
//! follower, by the seed) and restarted while 16 clients write through every member: every
//! acknowledged write is in the history at its revision, a watcher moving between members sees
//! every revision once and in order, and the clients' history is linearizable. See
//! `tests/crash/cluster.rs`; the negative control is in `tests/serve_cluster_sabotage.rs`.

mod crash;
mod net;

#[test]
fn sigkill_of_any_member_loses_nothing_acknowledged() {
    crash::campaign(11, "sync", "serve_cluster_crash", crash::cluster::run);
}
