//! Certificates for the TLS tests, made fresh by `rcgen` in a temporary directory: a CA with a
//! server certificate (for `localhost` and `127.0.0.1`), a client certificate and a peer
//! certificate (a cluster member's, for `127.0.0.1`, both server and client), and a second,
//! unrelated CA with its own client and peer certificates (what a server must refuse). Also
//! used by `impl/cli`'s cluster tests (peer TLS).

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// The PEM files, in a directory removed on drop.
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = Certs { dir };
        let ca = certs.ca("kvstore test CA", "ca");
        let (server, client) = (
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        let peer = [server.clone(), client.clone()];
        certs.leaf(&ca, "server", &["localhost", "127.0.0.1"], &[server]);
        certs.leaf(&ca, "client", &["client"], std::slice::from_ref(&client));
        certs.leaf(&ca, "peer", &["127.0.0.1"], &peer);
        let other = certs.ca("another CA", "other-ca");
        certs.leaf(&other, "other-client", &["client"], &[client]);
        certs.leaf(&other, "other-peer", &["127.0.0.1"], &peer);
        certs
    }

    /// The path of `name` (`ca.pem`, `server.pem`, `server-key.pem`, `client.pem`...).
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn ca(&self, common_name: &str, file: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let ca = CertifiedIssuer::self_signed(params, key).expect("CA certificate");
        self.write(&format!("{file}.pem"), &ca.pem());
        ca
    }

    fn leaf(
        &self,
        ca: &CertifiedIssuer<'static, KeyPair>,
        file: &str,
        names: &[&str],
        usages: &[ExtendedKeyUsagePurpose],
    ) {
        let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, file);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = usages.to_vec();
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, ca).expect("leaf certificate");
        self.write(&format!("{file}.pem"), &cert.pem());
        self.write(&format!("{file}-key.pem"), &key.serialize_pem());
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.dir.path().join(name), pem).expect("PEM written");
    }

    /// The server's TLS configuration; mutual TLS with this CA when `mutual`.
    pub fn server_config(&self, mutual: bool) -> kvstore_server::TlsConfig {
        kvstore_server::TlsConfig {
            cert: PathBuf::from(self.path("server.pem")),
            key: PathBuf::from(self.path("server-key.pem")),
            client_ca: mutual.then(|| PathBuf::from(self.path("ca.pem"))),
        }
    }
}
