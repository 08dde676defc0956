//! A member as the membership records it ([`Node`], openraft's node type): the URL its peers
//! reach it at, and what it published about itself (its name and client URLs), so every member
//! can list every other one (etcd's `MemberList`).
//!
//! Invariants: `addr` is fixed from the moment the member is added (it is where its peers dial
//! it); `name` and `client_urls` are empty until the member publishes them (etcd's "unstarted").

use std::fmt;

use crate::format::FormatError;

/// Most bytes of a member's name, or of one of its URLs.
pub const MEMBER_TEXT_LEN_MAX: usize = 256;

/// Most client URLs of one member.
pub const CLIENT_URLS_MAX: usize = 8;

/// Most bytes one [`Node`] takes encoded (its texts, their tags and lengths, its id).
pub const NODE_ENCODED_LEN_MAX: usize = (2 + CLIENT_URLS_MAX) * (MEMBER_TEXT_LEN_MAX + 3) + 16;

/// One member: where its peers reach it and what it published (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// The URL its peer service answers at (`http://host:port`).
    pub addr: String,
    /// Its name (etcd's `--name`); empty until published.
    pub name: String,
    /// The URLs its clients reach it at; empty until published.
    pub client_urls: Vec<String>,
}

impl Node {
    /// A member at `addr` that has published nothing yet.
    pub fn new(addr: impl Into<String>) -> Node {
        Node {
            addr: addr.into(),
            name: String::new(),
            client_urls: Vec::new(),
        }
    }

    /// Checks the limits every reader enforces (and so every writer, before proposing a
    /// membership that holds the node): texts of at most [`MEMBER_TEXT_LEN_MAX`] bytes, at most
    /// [`CLIENT_URLS_MAX`] client URLs.
    pub fn check(&self) -> Result<(), FormatError> {
        let too_long = |field: &'static str| {
            FormatError::invalid(
                "Node",
                field,
                format!("longer than MEMBER_TEXT_LEN_MAX = {MEMBER_TEXT_LEN_MAX} bytes"),
            )
        };
        if self.addr.len() > MEMBER_TEXT_LEN_MAX {
            return Err(too_long("addr"));
        }
        if self.name.len() > MEMBER_TEXT_LEN_MAX {
            return Err(too_long("name"));
        }
        if self.client_urls.len() > CLIENT_URLS_MAX {
            return Err(FormatError::invalid(
                "Node",
                "client_urls",
                format!("more than CLIENT_URLS_MAX = {CLIENT_URLS_MAX}"),
            ));
        }
        if self
            .client_urls
            .iter()
            .any(|url| url.len() > MEMBER_TEXT_LEN_MAX)
        {
            return Err(too_long("client_urls"));
        }
        Ok(())
    }

    /// Whether it has published its name and client URLs (etcd's "started").
    pub fn is_started(&self) -> bool {
        !self.name.is_empty()
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}@{}", self.name, self.addr)
        }
    }
}
