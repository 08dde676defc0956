//! Who answers: the cluster id, member id and name, the raft numbers, and the response header
//! every call carries (etcd's `ResponseHeader`).
//!
//! kvstore serves one database from one process: a cluster of one member that is always its
//! own leader. There is no raft, so the raft numbers etcd reports are placeholders, documented
//! here and in the README: the term is [`RAFT_TERM`] for the server's whole life, and the raft
//! index (Status) is the store's revision, which, like etcd's index, grows with every write.
//!
//! Invariants:
//! - The member and cluster ids are non-zero (0 is raft's "no leader") and stable for one
//!   database directory and member name across restarts: a client that remembers them sees the
//!   same server.

use std::path::Path;

use crate::proto::etcdserverpb::ResponseHeader;

/// The etcd release whose API the server speaks: the version Status reports (with kvstore's
/// version as semver build metadata, so it compares equal to this release).
pub const ETCD_API_VERSION: &str = "3.4.23";

/// The cluster version etcd 3.4 reports on `/version` (the release's major.minor, `.0`).
pub const ETCD_CLUSTER_VERSION: &str = "3.4.0";

/// The raft term every header carries: there is one member and no election, so it never
/// changes.
pub const RAFT_TERM: u64 = 1;

/// The server's identity (see the module doc).
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) cluster_id: u64,
    pub(crate) member_id: u64,
    pub(crate) name: String,
    pub(crate) client_urls: Vec<String>,
}

impl Identity {
    /// The identity of member `name` serving `db_dir` at `client_url`.
    pub(crate) fn new(name: &str, db_dir: &Path, client_url: String) -> Identity {
        let dir = std::fs::canonicalize(db_dir).unwrap_or_else(|_| db_dir.to_path_buf());
        let mut seed = b"kvstore member\0".to_vec();
        seed.extend_from_slice(name.as_bytes());
        seed.push(0);
        seed.extend_from_slice(dir.to_string_lossy().as_bytes());
        let member_id = fnv1a64(&seed).max(1);
        let mut cluster_seed = b"kvstore cluster\0".to_vec();
        cluster_seed.extend_from_slice(&member_id.to_be_bytes());
        let cluster_id = fnv1a64(&cluster_seed).max(1);
        Identity {
            cluster_id,
            member_id,
            name: name.to_owned(),
            client_urls: vec![client_url],
        }
    }

    /// The identity of a cluster member: ids from the cluster's flags
    /// ([`crate::replica::members`]).
    pub(crate) fn member(
        name: &str,
        member_id: u64,
        cluster_id: u64,
        client_url: String,
    ) -> Identity {
        Identity {
            cluster_id,
            member_id,
            name: name.to_owned(),
            client_urls: vec![client_url],
        }
    }

    /// A header at engine revision `revision` (etcd's `header.fill`; the wire revision is one
    /// more, see [`crate::revision`]).
    pub(crate) fn header(&self, revision: u64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            revision: crate::revision::wire(revision),
            raft_term: RAFT_TERM,
        }
    }

    /// A header with no revision (etcd's member calls, a compacted watch's cancellation).
    pub(crate) fn header_without_revision(&self) -> ResponseHeader {
        ResponseHeader {
            revision: 0,
            ..self.header(0)
        }
    }

    /// The version Status reports: [`ETCD_API_VERSION`] with kvstore's version as build
    /// metadata.
    pub(crate) fn version() -> String {
        format!("{ETCD_API_VERSION}+kvstore.{}", env!("CARGO_PKG_VERSION"))
    }
}

/// A revision, lease id or count as the wire's `int64` (every one the engine hands out is below
/// 2^63; a larger one would be a bug, reported as the largest value rather than a negative).
pub(crate) fn wire_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// 64-bit FNV-1a: a stable hash (the standard library's may change between releases).
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_nonzero() {
        let a = Identity::new(
            "default",
            Path::new("/nonexistent/db"),
            "http://x".to_owned(),
        );
        let b = Identity::new(
            "default",
            Path::new("/nonexistent/db"),
            "http://y".to_owned(),
        );
        assert_eq!((a.member_id, a.cluster_id), (b.member_id, b.cluster_id));
        assert_ne!(a.member_id, 0);
        let c = Identity::new("other", Path::new("/nonexistent/db"), "http://x".to_owned());
        assert_ne!(a.member_id, c.member_id);
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn header_carries_identity_and_revision() {
        let id = Identity::new(
            "default",
            Path::new("/nonexistent/db"),
            "http://x".to_owned(),
        );
        let header = id.header(42);
        assert_eq!(header.revision, 43);
        assert_eq!(id.header_without_revision().revision, 0);
        assert_eq!(header.member_id, id.member_id);
        assert_eq!(header.raft_term, RAFT_TERM);
        assert_eq!(wire_i64(u64::MAX), i64::MAX);
    }
}
