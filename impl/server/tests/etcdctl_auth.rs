//! etcdctl 3.4 driving auth and RBAC against `kvstore-server`: users, roles, permissions on
//! keys, prefixes, ranges and from-key, enabling auth, refusals, password changes, lease
//! revocation checks, a restart that keeps users, roles and the enabled flag, and a server that
//! refuses to start over an auth record it cannot read.

mod common;

use common::TestServer;

/// bcrypt's lowest cost: hashing at etcd's default 10 would only slow the tests.
const TEST_BCRYPT_COST: u32 = 4;

fn start() -> TestServer {
    TestServer::start_with(|config| config.bcrypt_cost = TEST_BCRYPT_COST)
}

/// `etcdctl --user USER ARGS`.
fn as_user<'a>(user: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--user", user];
    all.extend_from_slice(args);
    all
}

#[test]
fn users_roles_and_permissions_are_enforced_and_survive_a_restart() {
    let server = start();
    let ctl = server.ctl();
    assert_eq!(ctl.ok(&["user", "add", "root:pw"]), "User root created\n");
    ctl.ok(&["user", "add", "alice:apw"]);
    assert_eq!(ctl.ok(&["role", "add", "reader"]), "Role reader created\n");
    ctl.ok(&["role", "grant-permission", "reader", "read", "a", "c"]);
    ctl.ok(&[
        "role",
        "grant-permission",
        "reader",
        "--prefix",
        "readwrite",
        "p/",
    ]);
    ctl.ok(&[
        "role",
        "grant-permission",
        "reader",
        "--from-key",
        "read",
        "z",
    ]);
    ctl.ok(&["role", "grant-permission", "reader", "write", "w"]);
    assert_eq!(
        ctl.ok(&["user", "grant-role", "alice", "reader"]),
        "Role reader is granted to user alice\n"
    );
    ctl.ok(&["user", "grant-role", "root", "root"]);
    for (key, value) in [
        ("a1", "v1"),
        ("b", "vb"),
        ("d", "vd"),
        ("p/x", "px"),
        ("zz", "vz"),
    ] {
        ctl.ok(&["put", key, value]);
    }
    assert_eq!(ctl.ok(&["auth", "enable"]), "Authentication Enabled\n");

    // No user: refused, root: everything.
    assert!(
        ctl.fails(&["get", "a1"])
            .contains("etcdserver: user name is empty")
    );
    assert!(
        ctl.fails(&["put", "a1", "x"])
            .contains("etcdserver: user name is empty")
    );
    assert_eq!(ctl.ok(&as_user("root:pw", &["get", "a1"])), "a1\nv1\n");
    ctl.ok(&as_user("root:pw", &["put", "e", "ve"]));

    // alice reads [a, c), p/*, z.. and writes p/* and w only.
    let alice = |args: &[&'static str]| as_user("alice:apw", args);
    assert_eq!(ctl.ok(&alice(&["get", "a1"])), "a1\nv1\n");
    assert_eq!(
        ctl.ok(&alice(&["get", "a", "c", "--keys-only"])),
        "a1\n\nb\n\n"
    );
    assert_eq!(
        ctl.ok(&alice(&["get", "z", "--from-key", "--keys-only"])),
        "zz\n\n"
    );
    for refused in [
        &["get", "a", "d"][..],
        &["get", "d"],
        &["get", "y", "--from-key"],
        &["get", "", "--prefix"],
        &["put", "a1", "x"],
        &["del", "b"],
        &["put", "w", "x", "--prev-kv"],
    ] {
        let stderr = ctl.fails(&alice(refused));
        assert!(
            stderr.contains("etcdserver: permission denied"),
            "{refused:?}: {stderr}"
        );
    }
    ctl.ok(&alice(&["put", "p/y", "py"]));
    ctl.ok(&alice(&["put", "w", "vw"]));
    assert_eq!(
        ctl.ok(&alice(&["get", "p/", "--prefix", "--keys-only"])),
        "p/x\n\np/y\n\n"
    );
    // A refused write wrote nothing.
    assert_eq!(ctl.ok(&as_user("root:pw", &["get", "a1"])), "a1\nv1\n");
    assert!(
        ctl.fails(&alice(&["user", "list"]))
            .contains("etcdserver: permission denied")
    );
    assert!(
        ctl.fails(&as_user("alice:wrong", &["get", "a1"]))
            .contains("etcdserver: authentication failed, invalid user ID or password")
    );
    assert_eq!(
        ctl.ok(&as_user("root:pw", &["user", "list"])),
        "alice\nroot\n"
    );

    // A lease with a key alice may not write: alice may not revoke it.
    let granted = ctl.ok(&as_user("root:pw", &["lease", "grant", "600"]));
    let lease = granted
        .split_whitespace()
        .nth(1)
        .expect("a lease id")
        .to_owned();
    ctl.ok(&as_user(
        "root:pw",
        &["put", "d", "leased", &format!("--lease={lease}")],
    ));
    assert!(
        ctl.fails(&as_user("alice:apw", &["lease", "revoke", &lease]))
            .contains("etcdserver: permission denied")
    );
    assert_eq!(
        ctl.ok(&as_user("root:pw", &["get", "d", "--print-value-only"])),
        "leased\n"
    );

    // A new password: the old one stops working.
    let passwd = ctl.run_stdin(
        &as_user(
            "root:pw",
            &["user", "passwd", "alice", "--interactive=false"],
        ),
        "newpw\n",
    );
    assert!(passwd.status.success(), "{passwd:?}");
    assert!(
        ctl.fails(&alice(&["get", "a1"]))
            .contains("etcdserver: authentication failed, invalid user ID or password")
    );
    assert_eq!(ctl.ok(&as_user("alice:newpw", &["get", "a1"])), "a1\nv1\n");

    // A restart keeps users, roles, permissions and the enabled flag.
    let server = server.restart_with(|config| config.bcrypt_cost = TEST_BCRYPT_COST);
    let ctl = server.ctl();
    assert!(
        ctl.fails(&["get", "a1"])
            .contains("etcdserver: user name is empty")
    );
    assert_eq!(ctl.ok(&as_user("alice:newpw", &["get", "a1"])), "a1\nv1\n");
    assert!(
        ctl.fails(&as_user("alice:newpw", &["get", "d"]))
            .contains("etcdserver: permission denied")
    );
    assert_eq!(
        ctl.ok(&as_user("root:pw", &["user", "get", "alice"])),
        "User: alice\nRoles: reader\n"
    );

    // Disabled, every call is allowed again, and stays so across a restart.
    assert_eq!(
        ctl.ok(&as_user("root:pw", &["auth", "disable"])),
        "Authentication Disabled\n"
    );
    assert_eq!(ctl.ok(&["get", "d", "--print-value-only"]), "leased\n");
    let server = server.restart_with(|config| config.bcrypt_cost = TEST_BCRYPT_COST);
    let ctl = server.ctl();
    ctl.ok(&["put", "d", "free"]);
    assert_eq!(ctl.ok(&["user", "list"]), "alice\nroot\n");
}

#[test]
fn enabling_needs_root_with_the_root_role() {
    let server = start();
    let ctl = server.ctl();
    assert!(
        ctl.fails(&["auth", "enable"])
            .contains("etcdserver: root user does not exist")
    );
    ctl.ok(&["user", "add", "root:pw"]);
    // etcdctl answers `root user does not have root role` by adding the role and granting it.
    assert_eq!(ctl.ok(&["auth", "enable"]), "Authentication Enabled\n");
    assert_eq!(
        ctl.ok(&as_user("root:pw", &["user", "get", "root"])),
        "User: root\nRoles: root\n"
    );
    assert!(
        ctl.fails(&as_user("root:pw", &["user", "delete", "root"]))
            .contains("etcdserver: invalid auth management")
    );
}

#[test]
fn a_corrupt_auth_record_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_dir = dir.path().join("db");
    let auth = kvstore::Db::open(db_dir.join("auth"), kvstore::Options::default()).expect("open");
    auth.put(b"auth/state", b"\x08\x02").expect("put"); // format version 2
    auth.close().expect("close");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = kvstore_server::ServerConfig::new(&db_dir, "127.0.0.1:0".parse().unwrap());
    config.bcrypt_cost = TEST_BCRYPT_COST;
    let refused = runtime
        .block_on(kvstore_server::Server::bind(config))
        .expect_err("the server refuses a record it cannot read");
    let message = refused.to_string();
    assert!(
        message.contains("auth store") && message.contains("format version 2"),
        "{message}"
    );
}
