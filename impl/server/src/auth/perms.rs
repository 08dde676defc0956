//! Whether a user may read or write keys (etcd v3.4's `isOpPermitted` and
//! `range_perm_cache.go`), as a pure function of the [`AuthState`].
//!
//! A user's permissions for one access are the union of its roles' permissions that grant it
//! (READWRITE grants both). A request on one key needs that key inside the union; a request on
//! `[key, range_end)` needs the whole range inside it, which may take several permissions that
//! touch or overlap (etcd's interval-tree `Contains`). `range_end` `"\0"` means every key from
//! `key` on, in permissions and requests alike.
//!
//! Invariants:
//! - With auth disabled everything is permitted; with it enabled, a user holding the root role
//!   is permitted everything, a caller without a user nothing (`user name is empty`), a user
//!   that no longer exists nothing (`permission denied`).
//! - The check reads only the state: it never blocks.

use crate::auth::state::AuthState;
use crate::error::{EtcdError, EtcdResult};
use crate::proto::authpb::permission::Type as PermissionType;

/// What a request does to keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The end of a half-open key interval: a key, or past every key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Key(Vec<u8>),
    Infinity,
}

/// `[key]`, `[key, range_end)` or `[key, ∞)` as a half-open interval. A range whose end is
/// not after its key holds no key; it is checked as its first key, which etcd's interval
/// check also requires of it.
fn interval(key: &[u8], range_end: &[u8]) -> (Vec<u8>, End) {
    let point = || {
        let mut next = key.to_vec();
        next.push(0);
        End::Key(next)
    };
    let end = match range_end {
        [] => point(),
        [0] => End::Infinity,
        end if end <= key => point(),
        end => End::Key(end.to_vec()),
    };
    (key.to_vec(), end)
}

/// Whether the union of `granted` covers `[start, end)`.
fn covers(mut granted: Vec<(Vec<u8>, End)>, start: Vec<u8>, end: &End) -> bool {
    granted.sort();
    // Everything in [start, reach) is covered.
    let mut reach = End::Key(start);
    for (from, to) in granted {
        if End::Key(from) > reach {
            return false;
        }
        if to > reach {
            reach = to;
        }
        if &reach >= end {
            return true;
        }
    }
    false
}

fn grants(access: PermissionType, wanted: Access) -> bool {
    match (access, wanted) {
        (PermissionType::Readwrite, _)
        | (PermissionType::Read, Access::Read)
        | (PermissionType::Write, Access::Write) => true,
        (PermissionType::Read, Access::Write) | (PermissionType::Write, Access::Read) => false,
    }
}

impl AuthState {
    /// Whether `user` (`None`: the caller sent no token) may `access` `[key, range_end)`.
    pub(crate) fn check_keys(
        &self,
        user: Option<&str>,
        access: Access,
        key: &[u8],
        range_end: &[u8],
    ) -> EtcdResult<()> {
        if !self.enabled {
            return Ok(());
        }
        let user = user.ok_or(EtcdError::UserEmpty)?;
        let found = self.users.get(user).ok_or(EtcdError::PermissionDenied)?;
        if self.is_root(user) {
            return Ok(());
        }
        let granted: Vec<(Vec<u8>, End)> = found
            .roles
            .iter()
            .filter_map(|name| self.roles.get(name))
            .flat_map(|role| &role.grants)
            .filter(|g| grants(g.access, access))
            .map(|g| interval(&g.key, &g.range_end))
            .collect();
        let (start, end) = interval(key, range_end);
        if covers(granted, start, &end) {
            Ok(())
        } else {
            Err(EtcdError::PermissionDenied)
        }
    }

    /// etcd's `IsAdminPermitted`: auth management needs the root role when auth is enabled.
    pub(crate) fn check_admin(&self, user: Option<&str>) -> EtcdResult<()> {
        if !self.enabled {
            return Ok(());
        }
        // A certificate without a common name names the empty user, which etcd takes for none.
        let user = user
            .filter(|user| !user.is_empty())
            .ok_or(EtcdError::UserEmpty)?;
        if !self.users.contains_key(user) {
            return Err(EtcdError::UserNotFound);
        }
        if !self.is_root(user) {
            return Err(EtcdError::PermissionDenied);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::state::{Grant, ROOT_ROLE, ROOT_USER};

    fn state() -> AuthState {
        let mut s = AuthState::default();
        s.add_user(ROOT_USER, None).unwrap();
        s.grant_role(ROOT_USER, ROOT_ROLE).unwrap();
        s.add_user("u", None).unwrap();
        s.add_role("r").unwrap();
        for (key, end, access) in [
            ("a", "c", PermissionType::Read),
            ("c", "e", PermissionType::Readwrite),
            ("k", "", PermissionType::Write),
            ("z", "\0", PermissionType::Read),
        ] {
            s.grant_permission(
                "r",
                Grant {
                    key: key.as_bytes().to_vec(),
                    range_end: end.as_bytes().to_vec(),
                    access,
                },
            )
            .unwrap();
        }
        s.grant_role("u", "r").unwrap();
        s.enable().unwrap();
        s
    }

    fn read(s: &AuthState, key: &str, end: &str) -> bool {
        s.check_keys(Some("u"), Access::Read, key.as_bytes(), end.as_bytes())
            .is_ok()
    }

    #[test]
    fn ranges_need_the_union_to_cover_them() {
        let s = state();
        assert!(read(&s, "a", ""));
        assert!(read(&s, "b", "d"), "two touching permissions cover [b, d)");
        assert!(read(&s, "a", "e"));
        assert!(!read(&s, "a", "e\0"), "e itself is outside");
        assert!(!read(&s, "k", ""), "k is write only");
        assert!(read(&s, "z", "\0"));
        assert!(read(&s, "zz", "\0"));
        assert!(!read(&s, "y", "\0"));
        assert!(!read(&s, "", "\0"));
        let write = |key: &str, end: &str| {
            s.check_keys(Some("u"), Access::Write, key.as_bytes(), end.as_bytes())
                .is_ok()
        };
        assert!(write("k", ""));
        assert!(!write("k", "l"), "[k, l) holds more than k");
        assert!(write("c", "e"));
        assert!(!write("b", ""));
    }

    #[test]
    fn who_is_let_through() {
        let mut s = state();
        assert!(matches!(
            s.check_keys(None, Access::Read, b"a", b""),
            Err(EtcdError::UserEmpty)
        ));
        assert!(matches!(
            s.check_keys(Some("gone"), Access::Read, b"a", b""),
            Err(EtcdError::PermissionDenied)
        ));
        assert!(
            s.check_keys(Some(ROOT_USER), Access::Write, b"", b"\0")
                .is_ok()
        );
        assert!(s.check_admin(Some(ROOT_USER)).is_ok());
        assert!(matches!(
            s.check_admin(Some("u")),
            Err(EtcdError::PermissionDenied)
        ));
        assert!(matches!(
            s.check_admin(Some("gone")),
            Err(EtcdError::UserNotFound)
        ));
        s.disable();
        assert!(s.check_keys(None, Access::Write, b"x", b"").is_ok());
        assert!(s.check_admin(None).is_ok());
    }
}
