//! The auth store's one record: the whole [`AuthState`] as a protobuf message (spec/FORMAT.md,
//! "The auth store"), and its checks before writing and after reading.
//!
//! ```text
//! AuthRecord {
//!   1: uint32 format_version   = 1
//!   2: bool   enabled
//!   3: uint64 revision
//!   4: repeated authpb.User users   sorted by name, each once
//!   5: repeated authpb.Role roles   sorted by name, each once
//! }
//! ```
//!
//! Invariants:
//! - `decode` accepts exactly what `encode` writes: the version, at most
//!   [`RECORD_BYTES_MAX`] bytes, and every [`AuthState`] invariant (names, limits, sorted
//!   unique roles and permissions, known permission types, `enabled` only with root holding
//!   the root role); anything else is an error naming what is wrong, never a panic.
//! - `encode` refuses a state whose record would pass [`RECORD_BYTES_MAX`].

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use crate::auth::state::{
    AuthState, Grant, NAME_LEN_MAX, PERMISSIONS_PER_ROLE_MAX, ROLES_MAX, ROLES_PER_USER_MAX,
    ROOT_ROLE, ROOT_USER, Role, USERS_MAX, User,
};
use crate::error::{EtcdError, EtcdResult};
use crate::proto::authpb::{self, Permission, UserAddOptions, permission::Type as PermissionType};

/// The record's format version.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Largest record, in bytes: a change that would make it longer is refused.
pub(crate) const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The record as it is encoded (see the module doc).
#[derive(Clone, PartialEq, Message)]
struct AuthRecord {
    #[prost(uint32, tag = "1")]
    format_version: u32,
    #[prost(bool, tag = "2")]
    enabled: bool,
    #[prost(uint64, tag = "3")]
    revision: u64,
    #[prost(message, repeated, tag = "4")]
    users: Vec<authpb::User>,
    #[prost(message, repeated, tag = "5")]
    roles: Vec<authpb::Role>,
}

/// The record of `state`, or an error if it would pass [`RECORD_BYTES_MAX`].
pub(crate) fn encode(state: &AuthState) -> EtcdResult<Vec<u8>> {
    let record = AuthRecord {
        format_version: FORMAT_VERSION,
        enabled: state.enabled,
        revision: state.revision,
        users: state
            .users
            .iter()
            .map(|(name, user)| authpb::User {
                name: name.as_bytes().to_vec(),
                password: user
                    .password_hash
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec(),
                roles: user.roles.iter().cloned().collect(),
                options: Some(UserAddOptions {
                    no_password: user.password_hash.is_none(),
                }),
            })
            .collect(),
        roles: state
            .roles
            .iter()
            .map(|(name, role)| authpb::Role {
                name: name.as_bytes().to_vec(),
                key_permission: role.grants.iter().map(permission).collect(),
            })
            .collect(),
    };
    if record.encoded_len() > RECORD_BYTES_MAX {
        return Err(EtcdError::Invalid(format!(
            "the auth store is full (its record would pass {RECORD_BYTES_MAX} bytes)"
        )));
    }
    Ok(record.encode_to_vec())
}

/// A grant as etcd's `Permission`.
pub(crate) fn permission(grant: &Grant) -> Permission {
    Permission {
        perm_type: grant.access.into(),
        key: grant.key.clone(),
        range_end: grant.range_end.clone(),
    }
}

/// A name from the record: UTF-8, not empty, at most [`NAME_LEN_MAX`] bytes.
fn name(bytes: Vec<u8>, what: &str) -> Result<String, String> {
    let name = String::from_utf8(bytes).map_err(|_| format!("a {what} name is not UTF-8"))?;
    if name.is_empty() || name.len() > NAME_LEN_MAX {
        return Err(format!(
            "a {what} name is empty or longer than {NAME_LEN_MAX} bytes"
        ));
    }
    Ok(name)
}

/// Checks that `items` are at most `max` and strictly increasing.
fn check_sorted<T: Ord>(items: &[T], max: usize, what: &str) -> Result<(), String> {
    if items.len() > max {
        return Err(format!("more than {max} {what}"));
    }
    if items.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
        return Err(format!("{what} not sorted or repeated"));
    }
    Ok(())
}

fn decode_user(user: authpb::User) -> Result<(String, User), String> {
    let name = name(user.name, "user")?;
    check_sorted(&user.roles, ROLES_PER_USER_MAX, "roles of a user")?;
    let no_password = user.options.is_some_and(|o| o.no_password);
    let password_hash = if no_password {
        None
    } else {
        Some(String::from_utf8(user.password).map_err(|_| "a password hash is not UTF-8")?)
    };
    Ok((
        name,
        User {
            password_hash,
            roles: user.roles.into_iter().collect(),
        },
    ))
}

fn decode_role(role: authpb::Role) -> Result<(String, Role), String> {
    let name = name(role.name, "role")?;
    let grants = role
        .key_permission
        .into_iter()
        .map(|p| {
            let access = PermissionType::try_from(p.perm_type)
                .map_err(|_| format!("unknown permission type {}", p.perm_type))?;
            Ok(Grant {
                key: p.key,
                range_end: p.range_end,
                access,
            })
        })
        .collect::<Result<Vec<Grant>, String>>()?;
    let ranges: Vec<(&[u8], &[u8])> = grants
        .iter()
        .map(|g| (g.key.as_slice(), g.range_end.as_slice()))
        .collect();
    check_sorted(&ranges, PERMISSIONS_PER_ROLE_MAX, "permissions of a role")?;
    Ok((name, Role { grants }))
}

/// The state a record holds, or what is wrong with it (see the module doc).
pub(crate) fn decode(bytes: &[u8]) -> Result<AuthState, String> {
    if bytes.len() > RECORD_BYTES_MAX {
        return Err(format!(
            "the record is longer than {RECORD_BYTES_MAX} bytes"
        ));
    }
    let record = AuthRecord::decode(bytes).map_err(|e| format!("undecodable record: {e}"))?;
    if record.format_version != FORMAT_VERSION {
        return Err(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            record.format_version
        ));
    }
    if record.users.len() > USERS_MAX || record.roles.len() > ROLES_MAX {
        return Err(format!("more than {USERS_MAX} users or {ROLES_MAX} roles"));
    }
    let users: Vec<(String, User)> = record
        .users
        .into_iter()
        .map(decode_user)
        .collect::<Result<_, _>>()?;
    let roles: Vec<(String, Role)> = record
        .roles
        .into_iter()
        .map(decode_role)
        .collect::<Result<_, _>>()?;
    let user_names: Vec<&String> = users.iter().map(|(n, _)| n).collect();
    check_sorted(&user_names, USERS_MAX, "users")?;
    let role_names: Vec<&String> = roles.iter().map(|(n, _)| n).collect();
    check_sorted(&role_names, ROLES_MAX, "roles")?;
    let roles: BTreeMap<String, Role> = roles.into_iter().collect();
    let users: BTreeMap<String, User> = users.into_iter().collect();
    let granted: BTreeSet<&String> = users.values().flat_map(|u| &u.roles).collect();
    if let Some(missing) = granted
        .into_iter()
        .find(|r| r.as_str() != ROOT_ROLE && !roles.contains_key(r.as_str()))
    {
        return Err(format!(
            "a user holds role {missing:?}, which does not exist"
        ));
    }
    let state = AuthState {
        enabled: record.enabled,
        revision: record.revision,
        users,
        roles,
    };
    if state.enabled && !state.is_root(ROOT_USER) {
        return Err("auth is enabled but root does not hold the root role".to_owned());
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuthState {
        let mut s = AuthState::default();
        s.add_user(ROOT_USER, Some("$2b$04$hash".to_owned()))
            .unwrap();
        s.grant_role(ROOT_USER, ROOT_ROLE).unwrap();
        s.add_user("nopass", None).unwrap();
        s.add_role("r").unwrap();
        s.grant_permission(
            "r",
            Grant {
                key: b"a".to_vec(),
                range_end: b"\0".to_vec(),
                access: PermissionType::Write,
            },
        )
        .unwrap();
        s.grant_role("nopass", "r").unwrap();
        s.enable().unwrap();
        s.revision = 7;
        s
    }

    #[test]
    fn decode_inverts_encode() {
        let s = sample();
        assert_eq!(decode(&encode(&s).unwrap()).unwrap(), s);
        let empty = AuthState::default();
        assert_eq!(decode(&encode(&empty).unwrap()).unwrap(), empty);
    }

    #[test]
    fn decode_refuses_what_encode_never_writes() {
        let good = encode(&sample()).unwrap();
        let mut record = AuthRecord::decode(good.as_slice()).unwrap();
        record.format_version = 2;
        assert!(
            decode(&record.encode_to_vec())
                .unwrap_err()
                .contains("version")
        );
        let mut record = AuthRecord::decode(good.as_slice()).unwrap();
        record.users.reverse();
        assert!(
            decode(&record.encode_to_vec())
                .unwrap_err()
                .contains("sorted")
        );
        let mut record = AuthRecord::decode(good.as_slice()).unwrap();
        record.roles.clear();
        assert!(
            decode(&record.encode_to_vec())
                .unwrap_err()
                .contains("does not exist")
        );
        let mut record = AuthRecord::decode(good.as_slice()).unwrap();
        if let Some(root) = record.users.iter_mut().find(|u| u.name == b"root") {
            root.roles.clear();
        }
        assert!(
            decode(&record.encode_to_vec())
                .unwrap_err()
                .contains("enabled")
        );
        assert!(decode(&[0xff, 0xff, 0xff]).is_err());
        // Every prefix of a record either decodes to a valid state or is refused, never panics.
        for len in 0..good.len() {
            let _ = decode(good.get(..len).unwrap());
        }
    }
}
