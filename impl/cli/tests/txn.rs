//! `kvstore txn` and the shell's multi-line txn and search, through the real binary: which
//! branch ran, each op's result (text and JSON), exit codes (0 compares held, 1 failure branch,
//! 2 a bad txn line, nothing committed), `--hex` keys and values.

mod common;

use common::{kv, stdout, with_stdin};

const CAS: &[u8] = b"value(\"k\") = \"v1\"\n\nput k v2\nget k\n\nget k\n";

#[test]
fn txn_runs_the_branch_its_compares_choose_and_exits_one_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(kv(d, &["put", "k", "v1"]).status.success());
    let won = with_stdin(d, &["txn"], CAS);
    assert_eq!(won.status.code(), Some(0));
    assert_eq!(
        stdout(&won),
        "SUCCESS\nrevision 2\nput k\nget k: 1 rows\nk\tv2\n"
    );
    // The same compare-and-swap again: the value is v2 now, so the failure branch runs.
    let lost = with_stdin(d, &["txn"], CAS);
    assert_eq!(lost.status.code(), Some(1));
    assert_eq!(stdout(&lost), "FAILURE\nrevision 2\nget k: 1 rows\nk\tv2\n");
    assert!(String::from_utf8_lossy(&lost.stderr).contains("compares failed"));
    // etcd's create-if-absent, the other targets, a delete and JSON output.
    let text = b"create(\"new\") = 0\nversion(\"k\") = 2\nmod(\"k\") < 3\nlease(\"k\") = 0\n\n\
                 put new n\ndel k\nget --prefix n\n\n";
    let json = with_stdin(d, &["-o", "json", "txn"], text);
    assert_eq!(json.status.code(), Some(0), "{json:?}");
    let answer: serde_json::Value = serde_json::from_str(stdout(&json).trim()).unwrap();
    assert_eq!(answer["succeeded"], true);
    assert_eq!(answer["revision"], 3);
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results[0]["op"], "put");
    assert_eq!(results[1]["deleted"], 1);
    assert_eq!(results[2]["rows"][0]["key"], "new");
    assert_eq!(results[2]["rows"][0]["value"], "n");
    assert_eq!(results[2]["rows"][0]["create_revision"], 3);
    assert_eq!(kv(d, &["get", "k"]).status.code(), Some(1));
}

#[test]
fn a_bad_txn_line_is_a_usage_error_and_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = with_stdin(d, &["txn"], b"\nput a 1\nset b 2\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("txn line 3"),
        "{o:?}"
    );
    assert_eq!(kv(d, &["get", "a"]).status.code(), Some(1));
    let help = kv(d, &["txn", "--help"]);
    assert!(stdout(&help).contains("Example:"), "{}", stdout(&help));
}

#[test]
fn txn_keys_and_values_are_hex_with_hex() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = with_stdin(
        d,
        &["--hex", "txn"],
        b"value(\"00ff\") = \"89\"\n\n\nput 00ff 89\n\n",
    );
    assert_eq!(o.status.code(), Some(1), "no such key: the failure branch");
    let raw = kv(d, &["--hex", "-o", "raw", "get", "00ff"]);
    assert_eq!(raw.stdout, [0x89]);
    let o = with_stdin(
        d,
        &["--hex", "-o", "hex", "txn"],
        b"value(\"00ff\") = \"89\"\n\nget 00ff\n",
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "SUCCESS\nrevision 1\nget \\x00\\xff: 1 rows\n00ff\t89\n"
    );
}

#[test]
fn the_shell_reads_a_multi_line_txn_and_searches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let session = b"put color red\nput colour blue\ntxn\nvalue(\"color\") = \"red\"\n\n\
                    put color green\n\nget color\n\nget color\n\
                    search contains olo\nsearch fuzzy colr --max-distance 1\nexit\n";
    let o = with_stdin(d, &["shell"], session);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(
        stdout(&o),
        "revision 1\nrevision 2\nSUCCESS\nrevision 3\nput color\ngreen\ncolor\ncolour\ncolor\t1\n"
    );
}
