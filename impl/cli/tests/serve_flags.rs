//! `kvstore serve`'s flags end to end: TLS files, `--auth-token`, the bcrypt cost and
//! `--log-format`; a bad value is a usage error (exit 2), an unusable file an error (exit 3),
//! and the server does not start.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

mod common;

use common::{kv, stdout, tool};

#[test]
fn serve_refuses_incomplete_or_unreadable_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let serve = |args: &[&str]| {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        kv(&db, &all)
    };
    // A certificate without its key (or a CA without a certificate) is a usage error.
    assert_eq!(serve(&["--tls-cert", "c.pem"]).status.code(), Some(2));
    assert_eq!(serve(&["--tls-ca", "ca.pem"]).status.code(), Some(2));
    let missing = dir.path().join("missing.pem").display().to_string();
    let o = serve(&["--tls-cert", &missing, "--tls-key", &missing]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read the TLS certificate"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let not_pem = not_pem.display().to_string();
    let o = serve(&["--tls-cert", &not_pem, "--tls-key", &not_pem]);
    assert_eq!(o.status.code(), Some(3));
}

#[test]
fn serve_refuses_malformed_auth_tokens_and_unusable_jwt_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let serve = |token: &str| {
        let o = kv(
            &db,
            &["serve", "--listen", "127.0.0.1:0", "--auth-token", token],
        );
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // Malformed: a usage error, saying what is wrong.
    for (token, says) in [
        ("jwtx", "unknown token type \"jwtx\""),
        ("simple,ttl=5m", "simple tokens take no options"),
        ("jwt,priv-key=k.pem", "jwt needs sign-method"),
        (
            "jwt,priv_key=k.pem,sign-method=RS256",
            "unknown jwt option \"priv_key\"",
        ),
        (
            "jwt,priv-key=k.pem,sign-method=ES512",
            "unsupported sign-method \"ES512\"",
        ),
        (
            "jwt,priv-key=k.pem,sign-method=RS256,ttl=5",
            "ttl \"5\" is not a positive",
        ),
        ("jwt,sign-method=RS256", "needs pub-key, priv-key or both"),
    ] {
        let (code, stderr) = serve(token);
        assert_eq!(code, Some(2), "{token}: {stderr}");
        assert!(stderr.contains(says), "{token}: {stderr}");
    }
    // Well-formed, but the key cannot be read or is no key: the server does not start.
    let missing = dir.path().join("missing.pem").display().to_string();
    let (code, stderr) = serve(&format!("jwt,priv-key={missing},sign-method=RS256"));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read the JWT private key {missing}")),
        "{stderr}"
    );
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a key").unwrap();
    let not_pem = not_pem.display().to_string();
    let (code, stderr) = serve(&format!("jwt,pub-key={not_pem},sign-method=ES256"));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the JWT public key {not_pem} is unusable for ES256"
        )),
        "{stderr}"
    );
}

#[test]
fn serve_takes_a_bcrypt_cost_in_bcrypts_range() {
    let dir = tempfile::tempdir().unwrap();
    let help = kv(dir.path(), &["serve", "--help"]);
    assert!(stdout(&help).contains("--bcrypt-cost"), "{}", stdout(&help));
    for cost in ["3", "32"] {
        let o = kv(dir.path(), &["serve", "--bcrypt-cost", cost]);
        assert_eq!(o.status.code(), Some(2), "cost {cost}");
    }
}

/// The tool without `--db`.

#[test]
fn serve_logs_json_lines_with_log_format_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let bad = kv(&db, &["serve", "--log-level", "no such=level=x"]);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let mut child = tool(&db)
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log-level", "info"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let json = |line: &str| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    // Every line up to the one saying it listens is JSON.
    let listening = loop {
        let line = lines.next().expect("serve ended before listening").unwrap();
        let log = json(&line);
        if log["fields"]["message"] == "database open, listening" {
            break log;
        }
    };
    assert_eq!(listening["level"], "INFO", "{listening}");
    assert!(listening["timestamp"].is_string(), "{listening}");
    // It answers (and it listened for SIGTERM before it said it listens).
    let addr = listening["fields"]["local_addr"].as_str().unwrap();
    let mut http = std::net::TcpStream::connect(addr).unwrap();
    http.write_all(b"GET /health HTTP/1.1\r\nHost: kvstore\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut http, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // A clean shutdown: every line it logs is JSON too.
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut more = 0;
    for line in lines {
        json(&line.unwrap());
        more += 1;
    }
    assert!(more >= 1, "the shutdown logged nothing");
    assert!(child.wait().unwrap().success());
}
