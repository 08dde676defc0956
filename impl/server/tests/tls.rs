//! TLS and mutual TLS on the one port: etcdctl 3.4 (gRPC) and curl (`/health`, the gateway)
//! with the right CA (and client certificate) are served; a client that does not trust the
//! server's CA, a client without a certificate under mutual TLS and one whose certificate
//! another CA signed are refused; garbage bytes close only their own connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::certs::Certs;
use common::{Ctl, TestServer, WAIT_MAX, curl};

/// A server over TLS with `certs`' server certificate.
fn tls_server(certs: &Certs, mutual: bool) -> TestServer {
    TestServer::start_with(|config| config.tls = Some(certs.server_config(mutual)))
}

#[test]
fn tls_serves_etcdctl_and_curl_and_refuses_an_untrusting_client() {
    let certs = Certs::new();
    let server = tls_server(&certs, false);
    let ctl = Ctl::new(server.tls_endpoint())
        .with_flags(&[&format!("--cacert={}", certs.path("ca.pem"))]);
    ctl.ok(&["put", "k", "over tls"]);
    assert_eq!(ctl.ok(&["get", "k", "--print-value-only"]), "over tls\n");
    let health = format!("{}/health", server.tls_endpoint());
    assert_eq!(
        curl(&["--cacert", &certs.path("ca.pem"), &health]),
        (200, r#"{"health":"true"}"#.to_owned())
    );
    let untrusting = Ctl::new(server.tls_endpoint())
        .with_flags(&[&format!("--cacert={}", certs.path("other-ca.pem"))]);
    untrusting.fails(&["get", "k"]);
    assert_eq!(
        curl(&["--cacert", &certs.path("other-ca.pem"), &health]).0,
        0
    );
    // Plain text to a TLS port is a failed handshake, not an answer.
    assert_eq!(curl(&[&format!("{}/health", server.endpoint())]).0, 0);
    assert_eq!(ctl.ok(&["get", "k", "--print-value-only"]), "over tls\n");
}

#[test]
fn mutual_tls_requires_a_certificate_from_the_client_ca() {
    let certs = Certs::new();
    let server = tls_server(&certs, true);
    let client = |cert: &str| {
        Ctl::new(server.tls_endpoint()).with_flags(&[
            &format!("--cacert={}", certs.path("ca.pem")),
            &format!("--cert={}", certs.path(&format!("{cert}.pem"))),
            &format!("--key={}", certs.path(&format!("{cert}-key.pem"))),
        ])
    };
    let ctl = client("client");
    ctl.ok(&["put", "k", "mutual"]);
    assert_eq!(ctl.ok(&["get", "k", "--print-value-only"]), "mutual\n");
    client("other-client").fails(&["get", "k"]);
    Ctl::new(server.tls_endpoint())
        .with_flags(&[&format!("--cacert={}", certs.path("ca.pem"))])
        .fails(&["get", "k"]);

    let health = format!("{}/health", server.tls_endpoint());
    let ca = certs.path("ca.pem");
    let with_cert = |cert: &str| {
        curl(&[
            "--cacert",
            &ca,
            "--cert",
            &certs.path(&format!("{cert}.pem")),
            "--key",
            &certs.path(&format!("{cert}-key.pem")),
            &health,
        ])
    };
    assert_eq!(
        with_cert("client"),
        (200, r#"{"health":"true"}"#.to_owned())
    );
    assert_eq!(with_cert("other-client").0, 0);
    assert_eq!(curl(&["--cacert", &ca, &health]).0, 0);

    // Garbage instead of a handshake: that connection is closed, the server goes on.
    let mut garbage = TcpStream::connect(server.addr).unwrap();
    garbage.set_read_timeout(Some(WAIT_MAX)).unwrap();
    garbage.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff]).unwrap();
    garbage.write_all(b"not a client hello\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = garbage.read_to_end(&mut answer);
    assert_eq!(ctl.ok(&["get", "k", "--print-value-only"]), "mutual\n");
    assert_eq!(with_cert("client").0, 200);
}
