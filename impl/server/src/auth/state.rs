//! The auth store's state as a value: users, roles, the enabled flag and the auth revision, and
//! every change etcd v3.4's `authStore` makes to them, as pure functions with etcd's checks in
//! etcd's order and etcd's errors.
//!
//! Invariants (kept by every change, checked again by `record` when decoding):
//! - No user or role has an empty name; no name is longer than [`NAME_LEN_MAX`] bytes.
//! - A user's roles are a set (sorted, each once). A granted role exists, except `root`, which
//!   etcd lets be granted without a role record (it is the role every check lets through).
//! - A role's permissions are sorted by (key, range_end), each (key, range_end) once.
//! - At most [`USERS_MAX`] users, [`ROLES_MAX`] roles, [`ROLES_PER_USER_MAX`] roles per user and
//!   [`PERMISSIONS_PER_ROLE_MAX`] permissions per role.
//! - `enabled` implies the `root` user exists and holds the `root` role (`AuthEnable` checks it,
//!   and neither can be removed while enabled).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{EtcdError, EtcdResult};
use crate::proto::authpb::permission::Type as PermissionType;

/// The user every check lets through once it holds [`ROOT_ROLE`]; `AuthEnable` needs it.
pub(crate) const ROOT_USER: &str = "root";
/// The role that grants everything, and the auth management calls.
pub(crate) const ROOT_ROLE: &str = "root";

/// Longest user or role name, in bytes (etcd has no limit but the request size).
pub(crate) const NAME_LEN_MAX: usize = 4096;
/// Most users the store holds.
pub(crate) const USERS_MAX: usize = 16_384;
/// Most roles the store holds.
pub(crate) const ROLES_MAX: usize = 16_384;
/// Most roles granted to one user.
pub(crate) const ROLES_PER_USER_MAX: usize = 1024;
/// Most permissions of one role.
pub(crate) const PERMISSIONS_PER_ROLE_MAX: usize = 4096;

/// One user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct User {
    /// The bcrypt hash of the password; `None` for a user added with `no_password`.
    pub(crate) password_hash: Option<String>,
    pub(crate) roles: BTreeSet<String>,
}

/// One permission of a role: `access` on `[key]` (empty `range_end`), `[key, range_end)`, or
/// every key from `key` on (`range_end` `"\0"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Grant {
    pub(crate) key: Vec<u8>,
    pub(crate) range_end: Vec<u8>,
    pub(crate) access: PermissionType,
}

/// One role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Role {
    /// Sorted by (key, range_end), each once.
    pub(crate) grants: Vec<Grant>,
}

/// What the auth store holds (see the module doc).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AuthState {
    pub(crate) enabled: bool,
    /// etcd's auth revision: 1 in a fresh store, one more on every change to users or roles
    /// and on a disable (not on an enable); persisted, not sent on the wire by etcd 3.4's API,
    /// but carried in every JWT (a token older than the store's revision is refused).
    pub(crate) revision: u64,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) roles: BTreeMap<String, Role>,
}

/// Whether a change changed anything (a grant of a role already granted does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Changed {
    /// Users or roles changed, or auth was disabled (etcd's `commitRevision`): the auth
    /// revision moves, and every JWT issued before is old.
    Records,
    /// Auth was enabled: only the flag changed.
    Flag,
    No,
}

/// Refuses a name over [`NAME_LEN_MAX`].
fn check_name_len(name: &str) -> EtcdResult<()> {
    if name.len() > NAME_LEN_MAX {
        return Err(EtcdError::Invalid(format!(
            "a user or role name is at most {NAME_LEN_MAX} bytes"
        )));
    }
    Ok(())
}

impl AuthState {
    /// Whether `user` exists and holds the root role.
    pub(crate) fn is_root(&self, user: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.roles.contains(ROOT_ROLE))
    }

    /// The user named `name`, or `user name not found`.
    fn user_mut(&mut self, name: &str) -> EtcdResult<&mut User> {
        self.users.get_mut(name).ok_or(EtcdError::UserNotFound)
    }

    /// etcd's `AuthEnable`: needs the root user holding the root role; enabling twice is fine.
    pub(crate) fn enable(&mut self) -> EtcdResult<Changed> {
        if self.enabled {
            return Ok(Changed::No);
        }
        let root = self
            .users
            .get(ROOT_USER)
            .ok_or(EtcdError::RootUserNotExist)?;
        if !root.roles.contains(ROOT_ROLE) {
            return Err(EtcdError::RootRoleNotExist);
        }
        self.enabled = true;
        Ok(Changed::Flag)
    }

    /// etcd's `AuthDisable` (which moves the auth revision, as a change to the records does).
    pub(crate) fn disable(&mut self) -> Changed {
        if !self.enabled {
            return Changed::No;
        }
        self.enabled = false;
        Changed::Records
    }

    /// etcd's `UserAdd` with the password already hashed (`None`: no password).
    pub(crate) fn add_user(
        &mut self,
        name: &str,
        password_hash: Option<String>,
    ) -> EtcdResult<Changed> {
        if name.is_empty() {
            return Err(EtcdError::UserEmpty);
        }
        check_name_len(name)?;
        if self.users.contains_key(name) {
            return Err(EtcdError::UserAlreadyExist);
        }
        if self.users.len() >= USERS_MAX {
            return Err(EtcdError::Invalid(format!(
                "the auth store holds at most {USERS_MAX} users"
            )));
        }
        self.users.insert(
            name.to_owned(),
            User {
                password_hash,
                roles: BTreeSet::new(),
            },
        );
        Ok(Changed::Records)
    }

    /// etcd's `UserDelete`: the root user cannot go while auth is enabled.
    pub(crate) fn delete_user(&mut self, name: &str) -> EtcdResult<Changed> {
        if self.enabled && name == ROOT_USER {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(EtcdError::UserNotFound)?;
        Ok(Changed::Records)
    }

    /// etcd's `UserChangePassword` with the new password already hashed.
    pub(crate) fn change_password(&mut self, name: &str, hash: String) -> EtcdResult<Changed> {
        self.user_mut(name)?.password_hash = Some(hash);
        Ok(Changed::Records)
    }

    /// etcd's `UserGrantRole`: the role must exist unless it is root; granting it again is
    /// fine and changes nothing.
    pub(crate) fn grant_role(&mut self, user: &str, role: &str) -> EtcdResult<Changed> {
        let role_exists = role == ROOT_ROLE || self.roles.contains_key(role);
        let found = self.user_mut(user)?;
        if !role_exists {
            return Err(EtcdError::RoleNotFound);
        }
        if found.roles.contains(role) {
            return Ok(Changed::No);
        }
        if found.roles.len() >= ROLES_PER_USER_MAX {
            return Err(EtcdError::Invalid(format!(
                "a user holds at most {ROLES_PER_USER_MAX} roles"
            )));
        }
        found.roles.insert(role.to_owned());
        Ok(Changed::Records)
    }

    /// etcd's `UserRevokeRole`: root keeps the root role while auth is enabled.
    pub(crate) fn revoke_role(&mut self, user: &str, role: &str) -> EtcdResult<Changed> {
        if self.enabled && user == ROOT_USER && role == ROOT_ROLE {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        if !self.user_mut(user)?.roles.remove(role) {
            return Err(EtcdError::RoleNotGranted);
        }
        Ok(Changed::Records)
    }

    /// etcd's `RoleAdd`.
    pub(crate) fn add_role(&mut self, name: &str) -> EtcdResult<Changed> {
        if name.is_empty() {
            return Err(EtcdError::RoleEmpty);
        }
        check_name_len(name)?;
        if self.roles.contains_key(name) {
            return Err(EtcdError::RoleAlreadyExist);
        }
        if self.roles.len() >= ROLES_MAX {
            return Err(EtcdError::Invalid(format!(
                "the auth store holds at most {ROLES_MAX} roles"
            )));
        }
        self.roles.insert(name.to_owned(), Role::default());
        Ok(Changed::Records)
    }

    /// etcd's `RoleDelete`: the root role cannot go while auth is enabled; the role is revoked
    /// from every user that holds it.
    pub(crate) fn delete_role(&mut self, name: &str) -> EtcdResult<Changed> {
        if self.enabled && name == ROOT_ROLE {
            return Err(EtcdError::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(EtcdError::RoleNotFound)?;
        for user in self.users.values_mut() {
            user.roles.remove(name);
        }
        Ok(Changed::Records)
    }

    /// etcd's `RoleGrantPermission`: a permission on the same (key, range_end) is replaced.
    pub(crate) fn grant_permission(&mut self, role: &str, grant: Grant) -> EtcdResult<Changed> {
        let found = self.roles.get_mut(role).ok_or(EtcdError::RoleNotFound)?;
        let same = |g: &Grant| g.key == grant.key && g.range_end == grant.range_end;
        if let Some(existing) = found.grants.iter_mut().find(|g| same(g)) {
            existing.access = grant.access;
            return Ok(Changed::Records);
        }
        if found.grants.len() >= PERMISSIONS_PER_ROLE_MAX {
            return Err(EtcdError::Invalid(format!(
                "a role holds at most {PERMISSIONS_PER_ROLE_MAX} permissions"
            )));
        }
        found.grants.push(grant);
        found.grants.sort();
        Ok(Changed::Records)
    }

    /// etcd's `RoleRevokePermission`: removes the permission on exactly (key, range_end).
    pub(crate) fn revoke_permission(
        &mut self,
        role: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> EtcdResult<Changed> {
        let found = self.roles.get_mut(role).ok_or(EtcdError::RoleNotFound)?;
        let before = found.grants.len();
        found
            .grants
            .retain(|g| g.key != key || g.range_end != range_end);
        if found.grants.len() == before {
            return Err(EtcdError::PermissionNotGranted);
        }
        Ok(Changed::Records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(key: &str, end: &str, access: PermissionType) -> Grant {
        Grant {
            key: key.as_bytes().to_vec(),
            range_end: end.as_bytes().to_vec(),
            access,
        }
    }

    #[test]
    fn enable_needs_root_with_the_root_role() {
        let mut s = AuthState::default();
        assert!(matches!(s.enable(), Err(EtcdError::RootUserNotExist)));
        s.add_user(ROOT_USER, None).unwrap();
        assert!(matches!(s.enable(), Err(EtcdError::RootRoleNotExist)));
        // The root role needs no role record.
        assert_eq!(
            s.grant_role(ROOT_USER, ROOT_ROLE).unwrap(),
            Changed::Records
        );
        assert_eq!(s.enable().unwrap(), Changed::Flag);
        assert_eq!(s.enable().unwrap(), Changed::No);
        assert!(matches!(
            s.delete_user(ROOT_USER),
            Err(EtcdError::InvalidAuthMgmt)
        ));
        assert!(matches!(
            s.revoke_role(ROOT_USER, ROOT_ROLE),
            Err(EtcdError::InvalidAuthMgmt)
        ));
        assert!(matches!(
            s.delete_role(ROOT_ROLE),
            Err(EtcdError::InvalidAuthMgmt)
        ));
        assert_eq!(s.disable(), Changed::Records);
        assert_eq!(
            s.revoke_role(ROOT_USER, ROOT_ROLE).unwrap(),
            Changed::Records
        );
    }

    #[test]
    fn users_and_roles_follow_etcds_checks() {
        let mut s = AuthState::default();
        assert!(matches!(s.add_user("", None), Err(EtcdError::UserEmpty)));
        assert!(matches!(s.add_role(""), Err(EtcdError::RoleEmpty)));
        s.add_user("alice", Some("h".to_owned())).unwrap();
        assert!(matches!(
            s.add_user("alice", None),
            Err(EtcdError::UserAlreadyExist)
        ));
        assert!(matches!(
            s.grant_role("bob", "r"),
            Err(EtcdError::UserNotFound)
        ));
        assert!(matches!(
            s.grant_role("alice", "r"),
            Err(EtcdError::RoleNotFound)
        ));
        s.add_role("r").unwrap();
        assert!(matches!(s.add_role("r"), Err(EtcdError::RoleAlreadyExist)));
        assert_eq!(s.grant_role("alice", "r").unwrap(), Changed::Records);
        assert_eq!(s.grant_role("alice", "r").unwrap(), Changed::No);
        assert!(matches!(
            s.revoke_role("alice", "q"),
            Err(EtcdError::RoleNotGranted)
        ));
        s.delete_role("r").unwrap();
        assert!(
            s.users["alice"].roles.is_empty(),
            "deleting a role revokes it"
        );
        assert!(matches!(
            s.add_user(&"n".repeat(NAME_LEN_MAX + 1), None),
            Err(EtcdError::Invalid(_))
        ));
    }

    #[test]
    fn permissions_are_sorted_replaced_and_revoked_exactly() {
        let mut s = AuthState::default();
        s.add_role("r").unwrap();
        s.grant_permission("r", grant("b", "", PermissionType::Read))
            .unwrap();
        s.grant_permission("r", grant("a", "c", PermissionType::Read))
            .unwrap();
        s.grant_permission("r", grant("b", "", PermissionType::Readwrite))
            .unwrap();
        assert_eq!(
            s.roles["r"].grants,
            vec![
                grant("a", "c", PermissionType::Read),
                grant("b", "", PermissionType::Readwrite)
            ]
        );
        assert!(matches!(
            s.revoke_permission("r", b"a", b""),
            Err(EtcdError::PermissionNotGranted)
        ));
        s.revoke_permission("r", b"a", b"c").unwrap();
        assert_eq!(s.roles["r"].grants.len(), 1);
        assert!(matches!(
            s.grant_permission("q", grant("a", "", PermissionType::Read)),
            Err(EtcdError::RoleNotFound)
        ));
    }
}
