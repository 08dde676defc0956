//! Accepting connections: TCP, then TLS when configured ([`TlsConfig`]), then the `:authority`
//! repair, then HTTP. The repair reads the client's HTTP/2 frames, which only exist in plain
//! text above TLS, so it wraps the TLS stream, never the TCP one.
//!
//! Handshakes run in their own tasks, so a slow or silent client never holds up the next
//! accept; a handshake that fails (garbage bytes, an unknown CA, no client certificate under
//! mutual TLS) or does not finish within [`HANDSHAKE_TIMEOUT`] closes that connection only.
//!
//! Invariants:
//! - At most [`HANDSHAKES_IN_FLIGHT_MAX`] handshakes run at once and at most
//!   [`READY_CONNECTIONS_MAX`] accepted connections wait for the HTTP server; past that the
//!   accept loop waits (the kernel's backlog then holds new clients).
//! - The listening socket closes as soon as the HTTP server stops taking connections (shutdown):
//!   the accept task ends when the receiving side is dropped.
//! - Under mutual TLS, every connection that reaches the HTTP server presented a certificate
//!   chain that verifies against the configured client CA, and every request on it carries a
//!   [`ClientCertificate`] naming that chain's leaf's common name (the auth store's user when
//!   the request has no token); no other connection names one.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig as RustlsConfig, crypto};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::authority::AuthorityFix;
use crate::error::ServeError;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most TLS handshakes in progress at once.
const HANDSHAKES_IN_FLIGHT_MAX: usize = 1024;
/// The most accepted connections waiting for the HTTP server to take them.
const READY_CONNECTIONS_MAX: usize = 64;
/// How long the accept loop pauses after the OS refused an accept (e.g. out of descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// The certificate files of a TLS server (etcd's `--cert-file`, `--key-file`, and
/// `--trusted-ca-file` with `--client-cert-auth`).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, mutual TLS: every client must present a certificate that this CA bundle (PEM)
    /// verifies, or its handshake is refused.
    pub client_ca: Option<PathBuf>,
}

/// An accepted connection, as the HTTP server reads it.
pub(crate) type Incoming = ReceiverStream<io::Result<AuthorityFix<Connection>>>;

/// A client connection, plain or TLS.
pub(crate) enum Connection {
    Plain(TcpStream),
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        client: ClientCertificate,
    },
}

/// What a connection tells the services about its client, in every request's extensions
/// (tonic's connect info): under mutual TLS, the subject common name of the certificate the
/// client presented and rustls verified (etcd's `AuthInfoFromTLS`); empty when the certificate
/// names none, as Go's `CommonName` is.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientCertificate {
    pub(crate) common_name: Option<Arc<str>>,
}

impl ClientCertificate {
    /// The client certificate of the TLS connection `stream` (none without mutual TLS: the
    /// server asks for no certificate then).
    fn of(stream: &TlsStream<TcpStream>) -> ClientCertificate {
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first());
        ClientCertificate {
            common_name: leaf.and_then(common_name),
        }
    }
}

/// The subject common name of the certificate `cert` (the last, as Go's `pkix.Name` keeps
/// it), empty if it names none; `None` if it does not parse or the name is not a string.
fn common_name(cert: &CertificateDer<'_>) -> Option<Arc<str>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let name = match parsed.subject().iter_common_name().last() {
        Some(attribute) => attribute.as_str().ok()?,
        None => "",
    };
    Some(Arc::from(name))
}

/// The TLS acceptor for `config`: the server's certificate, and the client verifier under
/// mutual TLS. ALPN offers HTTP/2 and HTTP/1.1.
#[expect(
    deprecated,
    reason = "ring builds with a C compiler alone (aws-lc-rs needs cmake); the post-quantum \
              key exchange its deprecation note is about is one etcd 3.4's Go clients lack"
)]
pub(crate) fn tls_acceptor(config: &TlsConfig) -> Result<TlsAcceptor, ServeError> {
    let provider = Arc::new(crypto::ring::default_provider());
    let certs = read_certificates(&config.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|source| ServeError::TlsFile {
        what: "private key",
        path: config.key.clone(),
        source,
    })?;
    let builder = RustlsConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(ServeError::Tls)?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path, "client CA")? {
                roots.add(cert).map_err(ServeError::Tls)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(ServeError::TlsClientCa)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut tls = builder
        .with_single_cert(certs, key)
        .map_err(ServeError::Tls)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

/// The certificates of the PEM file at `path` (at least one).
pub(crate) fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let error = |source| ServeError::TlsFile {
        what,
        path: path.to_path_buf(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    if certs.is_empty() {
        return Err(error(
            tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    Ok(certs)
}

/// Accepts connections on `listener` (TLS ones through `tls`) until the returned stream is
/// dropped.
pub(crate) fn incoming(listener: TcpListener, tls: Option<TlsAcceptor>) -> Incoming {
    let (ready, receiver) = mpsc::channel(READY_CONNECTIONS_MAX);
    tokio::spawn(accept_loop(listener, tls, ready));
    ReceiverStream::new(receiver)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ready: mpsc::Sender<io::Result<AuthorityFix<Connection>>>,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_IN_FLIGHT_MAX));
    loop {
        let accepted = tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Small requests and responses: don't let Nagle hold them back.
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = &tls else {
            if ready
                .send(Ok(AuthorityFix::new(Connection::Plain(stream))))
                .await
                .is_err()
            {
                return;
            }
            continue;
        };
        let permit = tokio::select! {
            () = ready.closed() => return,
            permit = Arc::clone(&handshakes).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return };
        let (acceptor, ready) = (acceptor.clone(), ready.clone());
        tokio::spawn(async move {
            let peer = stream.peer_addr().ok();
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    drop(permit);
                    let client = ClientCertificate::of(&stream);
                    let connection = Connection::Tls {
                        stream: Box::new(stream),
                        client,
                    };
                    let _ = ready.send(Ok(AuthorityFix::new(connection))).await;
                }
                Ok(Err(e)) => tracing::debug!(?peer, error = %e, "TLS handshake refused"),
                Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Connected for Connection {
    type ConnectInfo = ClientCertificate;

    fn connect_info(&self) -> ClientCertificate {
        match self {
            Connection::Plain(_) => ClientCertificate::default(),
            Connection::Tls { client, .. } => client.clone(),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Connection::Tls { stream, .. } => Pin::new(stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Connection::Tls { stream, .. } => Pin::new(stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Connection::Tls { stream, .. } => Pin::new(stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Connection::Tls { stream, .. } => Pin::new(stream).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Connection::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Connection::Tls { stream, .. } => Pin::new(stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Connection::Plain(stream) => stream.is_write_vectored(),
            Connection::Tls { stream, .. } => stream.is_write_vectored(),
        }
    }
}
