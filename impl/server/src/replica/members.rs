//! A cluster's initial members (etcd's `--initial-cluster name=url,...` and
//! `--initial-cluster-token`) and the ids they get.
//!
//! A member's id is the first 8 bytes, big-endian, of the SHA-256 of its peer URL, a newline
//! and the cluster token (a member added at run time gets its id the same way, from the peer
//! URL given to MemberAdd); the cluster's id is the first 8 bytes of the SHA-256 of
//! `kvstore cluster`, a newline and the token. etcd derives member ids alike with SHA-1 (and
//! its cluster id from the initial members' ids), so the numbers differ from etcd's; like
//! etcd's, every member computes the same ones from the same flags, a member that joins later
//! included (`spec/SEMANTICS.md`, "A cluster of servers").
//!
//! Invariants: ids are non-zero (0 is raft's "no node"); names and peer URLs are unique.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// One initial member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    /// Its name (etcd's `--name`).
    pub name: String,
    /// The URL its peers reach it at (`http://host:port`, or `https://host:port` with peer
    /// TLS).
    pub peer_url: String,
}

/// Why `--initial-cluster` was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InitialClusterError {
    /// An entry that is not `name=url`.
    #[error("`{0}` is not name=url")]
    Entry(String),
    /// A URL that is not `http://host:port` or `https://host:port`.
    #[error("peer URL `{0}` is not http://host:port or https://host:port")]
    Url(String),
    /// Two entries with one name.
    #[error("member name `{0}` is given twice")]
    DuplicateName(String),
    /// Two entries with one URL.
    #[error("peer URL `{0}` is given twice")]
    DuplicateUrl(String),
    /// This member's name is not in the list.
    #[error("this member's name `{0}` is not in --initial-cluster")]
    MissingSelf(String),
    /// Two members' ids collide (different URLs hashing alike: practically never).
    #[error("members `{0}` and `{1}` get the same id")]
    IdCollision(String, String),
}

/// The initial members, by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialCluster {
    members: BTreeMap<u64, InitialMember>,
    token: String,
    cluster_id: u64,
}

impl InitialCluster {
    /// Parses `name=url,name=url,...` with the cluster `token`.
    pub fn parse(list: &str, token: &str) -> Result<InitialCluster, InitialClusterError> {
        let mut members: BTreeMap<u64, InitialMember> = BTreeMap::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, url) = entry
                .split_once('=')
                .filter(|(name, url)| !name.is_empty() && !url.is_empty())
                .ok_or_else(|| InitialClusterError::Entry(entry.to_owned()))?;
            check_url(url)?;
            for other in members.values() {
                if other.name == name {
                    return Err(InitialClusterError::DuplicateName(name.to_owned()));
                }
                if other.peer_url == url {
                    return Err(InitialClusterError::DuplicateUrl(url.to_owned()));
                }
            }
            let id = member_id(url, token);
            if let Some(other) = members.get(&id) {
                return Err(InitialClusterError::IdCollision(
                    other.name.clone(),
                    name.to_owned(),
                ));
            }
            members.insert(
                id,
                InitialMember {
                    name: name.to_owned(),
                    peer_url: url.to_owned(),
                },
            );
        }
        if members.is_empty() {
            return Err(InitialClusterError::Entry(list.to_owned()));
        }
        Ok(InitialCluster {
            members,
            token: token.to_owned(),
            cluster_id: cluster_id(token),
        })
    }

    /// The members by id.
    pub fn members(&self) -> &BTreeMap<u64, InitialMember> {
        &self.members
    }

    /// The id of the member named `name`.
    pub fn id_of(&self, name: &str) -> Result<u64, InitialClusterError> {
        self.members
            .iter()
            .find(|(_, m)| m.name == name)
            .map(|(&id, _)| id)
            .ok_or_else(|| InitialClusterError::MissingSelf(name.to_owned()))
    }

    /// The cluster's id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// The id a member at `peer_url` gets in this cluster.
    pub fn member_id(&self, peer_url: &str) -> u64 {
        member_id(peer_url, &self.token)
    }
}

/// Accepts `http://host:port` and `https://host:port` (what the peer transport dials).
pub fn check_url(url: &str) -> Result<(), InitialClusterError> {
    let bad = || InitialClusterError::Url(url.to_owned());
    let rest = host_port(url).ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// The `host:port` of a peer URL, `None` if its scheme is neither `http` nor `https`.
pub fn host_port(url: &str) -> Option<&str> {
    url.strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
}

/// The first 8 bytes of `digest`, big-endian, never 0.
fn leading_u64(digest: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (to, from) in bytes.iter_mut().zip(digest) {
        *to = *from;
    }
    u64::from_be_bytes(bytes).max(1)
}

/// The id of the member at `peer_url` in the cluster `token` (see the module doc).
pub fn member_id(peer_url: &str, token: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(peer_url.as_bytes());
    hash.update(b"\n");
    hash.update(token.as_bytes());
    leading_u64(&hash.finalize())
}

/// The id of the cluster `token` (see the module doc).
fn cluster_id(token: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(b"kvstore cluster\n");
    hash.update(token.as_bytes());
    leading_u64(&hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_members_and_refuses_bad_lists() {
        let list = "a=http://127.0.0.1:2380, b=http://127.0.0.1:2381,c=http://127.0.0.1:2382";
        let cluster = InitialCluster::parse(list, "t").unwrap();
        assert_eq!(cluster.members().len(), 3);
        let a = cluster.id_of("a").unwrap();
        assert_eq!(a, member_id("http://127.0.0.1:2380", "t"));
        assert_ne!(a, member_id("http://127.0.0.1:2380", "other token"));
        assert_eq!(
            cluster.id_of("d"),
            Err(InitialClusterError::MissingSelf("d".to_owned()))
        );
        // The same flags in another order: the same ids.
        let shuffled = InitialCluster::parse(
            "c=http://127.0.0.1:2382,a=http://127.0.0.1:2380,b=http://127.0.0.1:2381",
            "t",
        )
        .unwrap();
        assert_eq!(shuffled, cluster);
        // The cluster id is the token's: a member joining with a longer list computes it too.
        let grown = InitialCluster::parse(&format!("{list},d=http://127.0.0.1:2383"), "t").unwrap();
        assert_eq!(grown.cluster_id(), cluster.cluster_id());
        let other = InitialCluster::parse(list, "other token").unwrap();
        assert_ne!(other.cluster_id(), cluster.cluster_id());
        assert_eq!(
            cluster.member_id("http://127.0.0.1:2383"),
            grown.id_of("d").unwrap()
        );
        for (list, error) in [
            ("a", InitialClusterError::Entry("a".to_owned())),
            (
                "=http://h:1",
                InitialClusterError::Entry("=http://h:1".to_owned()),
            ),
            ("a=h:1", InitialClusterError::Url("h:1".to_owned())),
            (
                "a=http://h",
                InitialClusterError::Url("http://h".to_owned()),
            ),
            (
                "a=http://h:99999",
                InitialClusterError::Url("http://h:99999".to_owned()),
            ),
            (
                "a=http://h:1,a=http://h:2",
                InitialClusterError::DuplicateName("a".to_owned()),
            ),
            (
                "a=http://h:1,b=http://h:1",
                InitialClusterError::DuplicateUrl("http://h:1".to_owned()),
            ),
            ("", InitialClusterError::Entry(String::new())),
        ] {
            assert_eq!(InitialCluster::parse(list, "t"), Err(error), "{list}");
        }
    }
}
