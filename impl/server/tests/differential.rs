//! The differential test: the same etcdctl 3.4 session against a real etcd 3.4 and against
//! `kvstore-server`, each on a fresh store; every command's exit status, stdout and error line
//! must be equal once what is random or per-process is masked: cluster and member ids, the
//! raft term, the endpoint's address, and lease ids (etcd picks them at random, kvstore counts
//! them; each target's leases are named `<lease0>`, `<lease1>`... in grant order). Revisions
//! are compared exactly.
//! Two sessions: the KV, lease and compaction one, and the auth one.

mod common;

use common::{Ctl, Etcd, TestServer};
use serde_json::Value;

/// One command of the session: etcdctl's arguments, its stdin if any. `{leaseN}` in an
/// argument is the target's N-th granted lease id (hex, as etcdctl prints it).
struct Step {
    args: &'static [&'static str],
    stdin: Option<&'static str>,
}

const fn run(args: &'static [&'static str]) -> Step {
    Step { args, stdin: None }
}

const fn stdin(args: &'static [&'static str], input: &'static str) -> Step {
    Step {
        args,
        stdin: Some(input),
    }
}

/// The session. Every read is JSON where its output carries revisions.
const SESSION: &[Step] = &[
    run(&["-w", "json", "get", "nothing"]),
    run(&["put", "a", "1"]),
    run(&["-w", "json", "put", "b", "2"]),
    run(&["put", "c", "3"]),
    run(&["-w", "json", "put", "a", "11", "--prev-kv"]),
    run(&["put", "a/x", "ax"]),
    run(&["put", "a/y", "ay"]),
    run(&["-w", "json", "get", "a"]),
    run(&["-w", "json", "get", "a", "--prefix"]),
    run(&["-w", "json", "get", "a", "--prefix", "--limit=2"]),
    run(&["-w", "json", "get", "a", "c"]),
    run(&["-w", "json", "get", "b", "--from-key"]),
    run(&["-w", "json", "get", "", "--prefix", "--rev=3"]),
    run(&[
        "-w",
        "json",
        "get",
        "",
        "--prefix",
        "--sort-by=VERSION",
        "--order=DESCEND",
    ]),
    run(&[
        "-w",
        "json",
        "get",
        "",
        "--prefix",
        "--sort-by=CREATE",
        "--order=DESCEND",
        "--limit=3",
    ]),
    run(&["-w", "json", "get", "", "--prefix", "--sort-by=MODIFY"]),
    run(&[
        "-w",
        "json",
        "get",
        "",
        "--prefix",
        "--sort-by=VALUE",
        "--order=DESCEND",
    ]),
    run(&["get", "", "--prefix", "--keys-only"]),
    run(&["get", "a", "--prefix", "--print-value-only"]),
    run(&["-w", "json", "put", "a", "--ignore-value"]),
    run(&["put", "missing", "--ignore-value"]),
    // Deletes.
    run(&["-w", "json", "del", "nothing"]),
    run(&["-w", "json", "del", "b", "--prev-kv"]),
    run(&["-w", "json", "del", "a/", "--prefix", "--prev-kv"]),
    run(&["-w", "json", "get", "", "--prefix"]),
    // Txns: both branches, compares on every target, reads after writes in one txn, a delete
    // of nothing after a write (the revisions of the responses inside).
    stdin(
        &["-w", "json", "txn"],
        "val(\"a\") = \"11\"\nmod(\"a\") > \"1\"\n\nput t1 \"x\"\nget t1\ndel nothing\nget a --rev=2\n\nput t1 \"y\"\n\n",
    ),
    stdin(
        &["-w", "json", "txn"],
        "ver(\"a\") = \"5\"\n\nput t2 \"x\"\n\ndel nothing\nget t\n--prefix\n\n",
    ),
    stdin(
        &["-w", "json", "txn"],
        "create(\"absent\") = \"0\"\nval(\"absent\") = \"\"\n\nput yes \"1\"\n\nput no \"1\"\n\n",
    ),
    stdin(
        &["-w", "json", "txn"],
        "mod(\"c\") < \"5\"\nc(\"c\") = \"4\"\n\nget c\ndel c --prev-kv\nget c\n\n\n",
    ),
    stdin(&["txn"], "\nget \"\" --prefix --keys-only\n\n\n"),
    stdin(&["-w", "json", "txn"], "\n\nput dup 1\nput dup 2\n\n"),
    run(&["-w", "json", "get", "", "--prefix"]),
    // Leases.
    run(&["lease", "grant", "1000"]),
    run(&["put", "leased", "v", "--lease={lease0}"]),
    run(&["-w", "json", "get", "leased"]),
    run(&["lease", "timetolive", "{lease0}", "--keys"]),
    run(&["lease", "list"]),
    run(&["lease", "keep-alive", "--once", "{lease0}"]),
    run(&["-w", "json", "put", "leased", "w", "--ignore-lease"]),
    run(&["-w", "json", "get", "leased"]),
    run(&["lease", "revoke", "{lease0}"]),
    run(&["-w", "json", "get", "leased"]),
    run(&["lease", "timetolive", "{lease0}"]),
    run(&["lease", "keep-alive", "--once", "{lease0}"]),
    run(&["lease", "revoke", "{lease0}"]),
    run(&["lease", "grant", "1"]),
    run(&["put", "k", "v", "--lease=123abc"]),
    // Compaction and errors.
    run(&["-w", "json", "compaction", "5"]),
    run(&["-w", "json", "get", "a", "--rev=5"]),
    run(&["get", "a", "--rev=4"]),
    run(&["compaction", "5"]),
    run(&["get", "a", "--rev=1000"]),
    run(&["compaction", "1000"]),
    run(&["-w", "json", "get", "", "--prefix"]),
];

/// One target's side of the session: its etcdctl and the lease ids it granted.
struct Target {
    ctl: Ctl,
    leases: Vec<String>,
}

impl Target {
    fn new(ctl: Ctl) -> Target {
        Target {
            ctl,
            leases: Vec::new(),
        }
    }

    /// Runs one step; its output, normalized.
    fn step(&mut self, step: &Step) -> String {
        let args: Vec<String> = step.args.iter().map(|a| self.substitute(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = match step.stdin {
            Some(input) => self.ctl.run_stdin(&args, input),
            None => self.ctl.run(&args),
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if args.windows(2).any(|w| w == ["lease", "grant"])
            && let Some(id) = stdout.split_whitespace().nth(1)
        {
            self.leases.push(id.to_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("Error:") || l.starts_with("Failed"))
            .collect();
        // JSON where etcdctl printed JSON (some commands print text whatever -w says).
        let stdout = match serde_json::from_str::<Value>(&stdout) {
            Ok(mut value) if args.first() == Some(&"-w") => {
                self.mask_json(&mut value);
                value.to_string()
            }
            _ => self.mask_text(&stdout),
        };
        format!(
            "exit {:?}\n{stdout}\n{}",
            output.status.code(),
            self.mask_text(&error.join("\n"))
        )
    }

    /// A lease id field: the name of the lease it holds.
    fn mask_lease(&self, value: &mut Value) {
        let lease = self
            .leases
            .iter()
            .position(|id| i64::from_str_radix(id, 16).is_ok_and(|id| value.as_i64() == Some(id)));
        if let Some(i) = lease {
            *value = Value::from(format!("<lease{i}>"));
        }
    }

    fn substitute(&self, arg: &str) -> String {
        let mut arg = arg.to_owned();
        for (i, id) in self.leases.iter().enumerate() {
            arg = arg.replace(&format!("{{lease{i}}}"), id);
        }
        arg
    }

    fn mask_text(&self, text: &str) -> String {
        let mut text = text.to_owned();
        // etcdctl prints lease ids as 16 hex digits.
        for (i, id) in self.leases.iter().enumerate() {
            text = text.replace(id, &format!("<lease{i}>"));
        }
        // Maintenance commands name the member by its address.
        let address = self.ctl.endpoint.trim_start_matches("http://");
        text.replace(address, "<endpoint>")
    }

    fn mask_json(&self, value: &mut Value) {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields.iter_mut() {
                    if ["cluster_id", "member_id", "raft_term"].contains(&name.as_str()) {
                        *field = Value::from("<masked>");
                    } else if ["ID", "id", "lease"].contains(&name.as_str()) {
                        self.mask_lease(field);
                    } else {
                        self.mask_json(field);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_json(v)),
            _ => {}
        }
    }
}

/// Runs `session` against a fresh etcd 3.4 and `server`; fails listing every difference.
fn check_session_matches_etcd(session: &[Step], server: &TestServer) {
    let etcd = Etcd::start();
    let mut oracle = Target::new(etcd.ctl());
    let mut kvstore = Target::new(server.ctl());
    let mut differences = Vec::new();
    for step in session {
        let expected = oracle.step(step);
        let got = kvstore.step(step);
        if expected != got {
            differences.push(format!(
                "etcdctl {:?} (stdin {:?})\n  etcd:    {expected:?}\n  kvstore: {got:?}",
                step.args, step.stdin
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} commands differ:\n{}",
        differences.len(),
        session.len(),
        differences.join("\n")
    );
}

#[test]
fn etcdctl_session_matches_etcd() {
    check_session_matches_etcd(SESSION, &TestServer::start());
}

/// The auth session: users, roles, permissions, enabling, refusals of every kind, and the
/// auth management errors. etcd hashes at its default cost, kvstore at the lowest.
const AUTH_SESSION: &[Step] = &[
    run(&["user", "add", "root:pw"]),
    run(&["user", "add", "alice:apw"]),
    run(&["user", "add", "alice:again"]),
    run(&["user", "add", "np", "--no-password"]),
    run(&["user", "get", "np"]),
    run(&["role", "add", "r1"]),
    run(&["role", "add", "r1"]),
    run(&["role", "grant-permission", "r1", "readwrite", "a", "c"]),
    run(&["role", "grant-permission", "r1", "--prefix", "read", "p/"]),
    run(&["role", "grant-permission", "r1", "--from-key", "write", "z"]),
    run(&["role", "grant-permission", "r1", "read", "k"]),
    run(&["role", "grant-permission", "r1", "write", "k"]),
    run(&["role", "grant-permission", "nosuch", "read", "k"]),
    run(&["-w", "json", "role", "get", "r1"]),
    run(&["role", "get", "r1"]),
    run(&["role", "list"]),
    run(&["user", "grant-role", "alice", "r1"]),
    run(&["user", "grant-role", "alice", "r1"]),
    run(&["user", "grant-role", "alice", "nosuch"]),
    run(&["user", "grant-role", "bob", "r1"]),
    run(&["user", "get", "alice"]),
    run(&["-w", "json", "user", "get", "alice"]),
    run(&["-w", "json", "user", "list"]),
    run(&["put", "a1", "v"]),
    // etcdctl grants root the root role when the server says it lacks it.
    run(&["auth", "enable"]),
    run(&["auth", "enable"]),
    run(&["role", "list"]),
    run(&["get", "a1"]),
    run(&["put", "a1", "w"]),
    run(&["--user", "root:pw", "put", "p/1", "v"]),
    run(&["-w", "json", "--user", "root:pw", "get", "", "--prefix"]),
    run(&["-w", "json", "--user", "alice:apw", "get", "a1"]),
    run(&["--user", "alice:apw", "get", "a", "d"]),
    run(&["--user", "alice:apw", "get", "a", "c"]),
    run(&["--user", "alice:apw", "put", "b", "v"]),
    run(&["--user", "alice:apw", "put", "p/2", "v"]),
    run(&["--user", "alice:apw", "get", "p/", "--prefix"]),
    run(&["--user", "alice:apw", "get", "p", "--prefix"]),
    run(&["--user", "alice:apw", "put", "zz", "v"]),
    run(&["--user", "alice:apw", "get", "zz"]),
    run(&["--user", "alice:apw", "put", "k", "v"]),
    run(&["--user", "alice:apw", "get", "k"]),
    run(&["-w", "json", "--user", "alice:apw", "del", "b", "--prev-kv"]),
    run(&["--user", "alice:apw", "del", "zz", "--prev-kv"]),
    run(&["--user", "alice:apw", "compaction", "2"]),
    // A lease with a key alice may not write: alice may not revoke it, nor attach to it.
    run(&["--user", "root:pw", "lease", "grant", "600"]),
    run(&["--user", "root:pw", "put", "d", "v", "--lease={lease0}"]),
    run(&["--user", "alice:apw", "lease", "revoke", "{lease0}"]),
    run(&["--user", "alice:apw", "put", "b", "v", "--lease={lease0}"]),
    run(&["--user", "alice:apw", "lease", "grant", "600"]),
    run(&["--user", "alice:apw", "put", "b", "v", "--lease={lease1}"]),
    run(&["--user", "alice:apw", "lease", "revoke", "{lease1}"]),
    run(&["--user", "root:pw", "lease", "revoke", "{lease0}"]),
    stdin(
        &["-w", "json", "--user", "alice:apw", "txn"],
        "val(\"a1\") = \"v\"\n\nput b \"2\"\nget a1\n\nget p/1\n\n",
    ),
    stdin(
        &["--user", "alice:apw", "txn"],
        "val(\"a1\") = \"v\"\n\nput b \"3\"\n\nput p/3 \"1\"\n\n",
    ),
    stdin(
        &["--user", "alice:apw", "txn"],
        "val(\"k\") = \"v\"\n\nput b \"4\"\n\n\n",
    ),
    stdin(&["--user", "alice:apw", "txn"], "\n\nget zz\n\n\n"),
    run(&["--user", "alice:wrong", "get", "a1"]),
    run(&["--user", "np:", "get", "a1"]),
    run(&["--user", "np:x", "get", "a1"]),
    run(&["--user", "bob:x", "get", "a1"]),
    run(&["--user", "alice:apw", "user", "list"]),
    run(&["--user", "alice:apw", "user", "get", "alice"]),
    run(&["--user", "alice:apw", "user", "get", "root"]),
    run(&["--user", "alice:apw", "role", "get", "r1"]),
    run(&["--user", "alice:apw", "role", "get", "root"]),
    run(&["--user", "alice:apw", "user", "add", "eve:x"]),
    run(&["--user", "alice:apw", "auth", "disable"]),
    run(&["defrag"]),
    run(&["--user", "alice:apw", "defrag"]),
    run(&["--user", "root:pw", "defrag"]),
    run(&["--user", "alice:apw", "endpoint", "hashkv"]),
    run(&["alarm", "list"]),
    run(&["--user", "root:pw", "user", "delete", "root"]),
    run(&["--user", "root:pw", "role", "delete", "root"]),
    run(&["--user", "root:pw", "user", "revoke-role", "root", "root"]),
    run(&[
        "--user",
        "root:pw",
        "user",
        "revoke-role",
        "alice",
        "nosuch",
    ]),
    run(&["--user", "root:pw", "user", "get", "nobody"]),
    run(&["--user", "root:pw", "role", "get", "nosuch"]),
    run(&["--user", "root:pw", "role", "revoke-permission", "r1", "zz"]),
    run(&[
        "--user",
        "root:pw",
        "role",
        "revoke-permission",
        "r1",
        "p/",
        "--prefix",
    ]),
    run(&[
        "--user",
        "root:pw",
        "role",
        "revoke-permission",
        "r1",
        "z",
        "--from-key",
    ]),
    run(&["--user", "root:pw", "role", "get", "r1"]),
    run(&["--user", "alice:apw", "get", "p/1"]),
    stdin(
        &[
            "--user",
            "root:pw",
            "user",
            "passwd",
            "alice",
            "--interactive=false",
        ],
        "apw2\n",
    ),
    run(&["--user", "alice:apw", "get", "a1"]),
    run(&["--user", "alice:apw2", "get", "a1"]),
    run(&["--user", "root:pw", "user", "revoke-role", "alice", "r1"]),
    run(&["--user", "alice:apw2", "get", "a1"]),
    run(&["--user", "root:pw", "user", "grant-role", "alice", "r1"]),
    run(&["--user", "root:pw", "role", "delete", "r1"]),
    run(&["--user", "root:pw", "user", "get", "alice"]),
    run(&["--user", "root:pw", "user", "delete", "alice"]),
    run(&["--user", "root:pw", "user", "delete", "alice"]),
    run(&["-w", "json", "--user", "root:pw", "user", "list"]),
    run(&["--user", "root:pw", "auth", "disable"]),
    run(&["auth", "disable"]),
    run(&["--user", "root:pw", "get", "a1"]),
    run(&["-w", "json", "get", "", "--prefix"]),
    run(&["role", "list"]),
];

#[test]
fn etcdctl_auth_session_matches_etcd() {
    let server = TestServer::start_with(|config| config.bcrypt_cost = 4);
    check_session_matches_etcd(AUTH_SESSION, &server);
}
