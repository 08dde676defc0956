//! Errors: [`ServeError`] for starting and stopping the server, and [`EtcdError`], what a call
//! answers with, as etcd's gRPC code and message (etcd v3.4's `rpctypes/error.go`), so that
//! clients that match on them (etcdctl, clientv3's `rpctypes.Err*`) recognise them.
//!
//! Invariants:
//! - Every etcd error has exactly etcd's code and message; errors etcd has no equivalent for
//!   (an engine limit, an unsupported request) say `kvstore:` instead of `etcdserver:`.
//! - An engine failure that is not the request's fault (I/O, corruption, a poisoned database)
//!   is never reported as the client's error: it is `INTERNAL` or `DATA_LOSS`.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::{Code, Status};

/// Why the server could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Opening the database failed.
    #[error("cannot open the database at {}: {source}", path.display())]
    Open {
        /// The database directory.
        path: PathBuf,
        /// What the engine said.
        #[source]
        source: kvstore::Error,
    },
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A TLS certificate or key file could not be read or holds nothing usable.
    #[error("cannot read the TLS {what} from {}: {source}", path.display())]
    TlsFile {
        /// Which file: `certificate`, `private key`, `client CA` or `peer CA`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// The TLS configuration was refused (a key that does not match the certificate, an
    /// unusable certificate).
    #[error("the TLS configuration is unusable: {0}")]
    Tls(#[source] tokio_rustls::rustls::Error),
    /// The client CA bundle cannot verify client certificates.
    #[error("the TLS client CA is unusable: {0}")]
    TlsClientCa(#[source] tokio_rustls::rustls::server::VerifierBuilderError),
    /// The peer TLS files make no usable client (a key that does not match the certificate,
    /// a CA bundle with no certificate).
    #[error("the peer TLS files make no usable client: {0}")]
    PeerTls(String),
    /// The gRPC transport failed while serving.
    #[error("serving gRPC failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Closing the database at shutdown failed: what was acknowledged is durable, but the
    /// final flush or sync did not complete.
    #[error("closing the database failed: {0}")]
    Close(#[source] kvstore::Error),
    /// The JWT keys of `--auth-token jwt,...` could not be read or are unusable.
    #[error("{0}")]
    AuthToken(#[from] crate::auth::JwtKeyError),
    /// The auth store (a second engine database in the `auth` subdirectory) could not be
    /// opened or holds a record that does not decode.
    #[error("cannot open the auth store at {}: {reason}", path.display())]
    Auth {
        /// The auth store's directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The raft member could not start or stop (its storage, its configuration).
    #[error("raft: {0}")]
    Raft(String),
    /// This member's name is not among `--initial-cluster`'s.
    #[error("--initial-cluster: {0}")]
    Cluster(#[from] crate::replica::InitialClusterError),
    /// A blocking task of the server panicked or was cancelled.
    #[error("a blocking task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// What a call answers with when it fails (see the module doc).
#[derive(Debug, thiserror::Error)]
pub(crate) enum EtcdError {
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: value is provided")]
    ValueProvided,
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    #[error("etcdserver: user name already exists")]
    UserAlreadyExist,
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    #[error("etcdserver: user name not found")]
    UserNotFound,
    #[error("etcdserver: role name already exists")]
    RoleAlreadyExist,
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// etcd's `auth.ErrNoPasswordUser`, which its gRPC layer does not translate: it reaches
    /// the client as code `UNKNOWN` with this text.
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    #[error("etcdserver: revision of auth store is old")]
    AuthOldRevision,
    /// etcd's `auth.ErrVerifyOnly` (Authenticate on a JWT server with no private key), which
    /// its gRPC layer does not translate: code `UNKNOWN` with this text.
    #[error("auth: token signing attempted with verify-only key")]
    VerifyOnly,
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    #[error("etcdserver: member ID already exist")]
    MemberExist,
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExist,
    #[error("etcdserver: given member URLs are invalid")]
    MemberBadUrls,
    #[error("etcdserver: member not found")]
    MemberNotFound,
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    #[error("etcdserver: too many learner members in cluster")]
    TooManyLearners,
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    /// In a cluster: no member is the leader (an election is under way, or no quorum).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// In a cluster: the request was proposed but not seen applied in time (it may still be).
    #[error("etcdserver: request timed out")]
    Timeout,
    /// In a cluster: raft failed the request (this member shut down, its storage failed, the
    /// leader could not be reached).
    #[error("kvstore: replication: {0}")]
    Replication(String),
    /// Something etcd serves that kvstore does not yet.
    #[error("kvstore: {0} is not supported yet")]
    Unsupported(&'static str),
    /// An argument etcd would take but the engine refuses (a key over the engine's limit, a
    /// negative lease id...).
    #[error("kvstore: {0}")]
    Invalid(String),
    /// A conditional write kept losing its race with other writers.
    #[error("kvstore: {0}")]
    Contended(String),
    /// The engine failed for a reason that is not the request's (I/O, corruption, poisoned).
    #[error("kvstore: {0}")]
    Engine(kvstore::Error),
    /// The temporary file a snapshot is spooled to could not be written or read back.
    #[error("kvstore: spooling the snapshot to a temporary file failed: {0}")]
    SnapshotSpool(#[source] std::io::Error),
}

impl EtcdError {
    /// etcd's gRPC code for it.
    pub(crate) fn code(&self) -> Code {
        match self {
            EtcdError::EmptyKey
            | EtcdError::KeyNotFound
            | EtcdError::ValueProvided
            | EtcdError::LeaseProvided
            | EtcdError::TooManyOps
            | EtcdError::DuplicateKey
            | EtcdError::RequestTooLarge
            | EtcdError::UserEmpty
            | EtcdError::RoleEmpty
            | EtcdError::AuthFailed
            | EtcdError::InvalidAuthMgmt
            | EtcdError::AuthOldRevision
            | EtcdError::MemberBadUrls
            | EtcdError::Invalid(_) => Code::InvalidArgument,
            EtcdError::RootUserNotExist
            | EtcdError::RootRoleNotExist
            | EtcdError::UserAlreadyExist
            | EtcdError::UserNotFound
            | EtcdError::RoleAlreadyExist
            | EtcdError::RoleNotFound
            | EtcdError::RoleNotGranted
            | EtcdError::PermissionNotGranted
            | EtcdError::AuthNotEnabled
            | EtcdError::MemberExist
            | EtcdError::PeerUrlExist
            | EtcdError::MemberNotLearner
            | EtcdError::LearnerNotReady
            | EtcdError::TooManyLearners
            | EtcdError::NotEnoughStartedMembers => Code::FailedPrecondition,
            EtcdError::PermissionDenied => Code::PermissionDenied,
            EtcdError::NoPasswordUser | EtcdError::VerifyOnly => Code::Unknown,
            EtcdError::InvalidAuthToken => Code::Unauthenticated,
            EtcdError::Compacted | EtcdError::FutureRev | EtcdError::LeaseTtlTooLarge => {
                Code::OutOfRange
            }
            EtcdError::LeaseNotFound | EtcdError::MemberNotFound => Code::NotFound,
            EtcdError::LeaseExists => Code::FailedPrecondition,
            EtcdError::Stopped
            | EtcdError::NoLeader
            | EtcdError::Timeout
            | EtcdError::Replication(_) => Code::Unavailable,
            EtcdError::Unsupported(_) => Code::Unimplemented,
            EtcdError::Contended(_) => Code::Aborted,
            EtcdError::Engine(kvstore::Error::Corruption { .. }) => Code::DataLoss,
            EtcdError::Engine(_) | EtcdError::SnapshotSpool(_) => Code::Internal,
        }
    }
}

impl EtcdError {
    /// The error as etcd's Maintenance service answers an auth check it fails: the auth
    /// package's own error, which its gRPC layer passes on untranslated (code `UNKNOWN`, `auth:`
    /// where the translated message says `etcdserver:`).
    pub(crate) fn untranslated(self) -> Status {
        let message = self.to_string();
        let rest = message.strip_prefix("etcdserver: ").unwrap_or(&message);
        Status::unknown(format!("auth: {rest}"))
    }
}

impl From<EtcdError> for Status {
    fn from(error: EtcdError) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

impl From<kvstore::Error> for EtcdError {
    fn from(error: kvstore::Error) -> EtcdError {
        match error {
            kvstore::Error::Compacted { .. } => EtcdError::Compacted,
            kvstore::Error::FutureRevision { .. } => EtcdError::FutureRev,
            kvstore::Error::LeaseNotFound { .. } => EtcdError::LeaseNotFound,
            kvstore::Error::LeaseExists { .. } => EtcdError::LeaseExists,
            kvstore::Error::Closed => EtcdError::Stopped,
            kvstore::Error::InvalidArgument(message) => {
                // The engine's txn checks say what etcd's do, in its words.
                if message.contains("duplicate key given in txn request") {
                    EtcdError::DuplicateKey
                } else if message.contains("too many operations in txn request") {
                    EtcdError::TooManyOps
                } else {
                    EtcdError::Invalid(message)
                }
            }
            other => EtcdError::Engine(other),
        }
    }
}

/// The result of a call's work, before it becomes a gRPC status.
pub(crate) type EtcdResult<T> = Result<T, EtcdError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_errors_keep_etcds_codes_and_messages() {
        let status = Status::from(EtcdError::Compacted);
        assert_eq!(status.code(), Code::OutOfRange);
        assert_eq!(
            status.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let status = Status::from(EtcdError::LeaseNotFound);
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "etcdserver: requested lease not found");
        let status = Status::from(EtcdError::TooManyOps);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "etcdserver: too many operations in txn request"
        );
        let status = Status::from(EtcdError::PermissionDenied);
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(status.message(), "etcdserver: permission denied");
        let status = Status::from(EtcdError::InvalidAuthToken);
        assert_eq!(status.code(), Code::Unauthenticated);
        let status = EtcdError::PermissionDenied.untranslated();
        assert_eq!(status.code(), Code::Unknown);
        assert_eq!(status.message(), "auth: permission denied");
        let status = Status::from(EtcdError::UserNotFound);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "etcdserver: user name not found");
    }

    #[test]
    fn engine_errors_map_to_etcds() {
        let e = EtcdError::from(kvstore::Error::FutureRevision {
            requested: 9,
            current: 3,
        });
        assert!(matches!(e, EtcdError::FutureRev));
        let e = EtcdError::from(kvstore::Error::InvalidArgument(
            "duplicate key given in txn request".to_owned(),
        ));
        assert!(matches!(e, EtcdError::DuplicateKey));
        let e = EtcdError::from(kvstore::Error::InvalidArgument("key is empty".to_owned()));
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.to_string(), "kvstore: key is empty");
    }
}
