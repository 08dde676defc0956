//! The Auth service (etcd v3.4's `authServer` and `authApplierV3`): enabling and disabling
//! auth, Authenticate, and the management of users and roles.
//!
//! Invariants:
//! - Every management call needs the root role while auth is enabled (etcd's
//!   `needAdminPermission`), checked before anything else, except that a user may get itself
//!   (UserGet) and a role it holds (RoleGet), as etcd 3.4 allows.
//! - Hashing, password checks and writes run on the blocking pool; every response's header
//!   carries the KV store's current revision (auth changes take none).
//! - A password change or a user's deletion drops the user's tokens; disabling auth drops all.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::auth::record::permission;
use crate::auth::state::{AuthState, Grant};
use crate::context::Context;
use crate::error::{EtcdError, EtcdResult};
use crate::proto::authpb::permission::Type as PermissionType;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::{
    AuthDisableRequest, AuthDisableResponse, AuthEnableRequest, AuthEnableResponse,
    AuthRoleAddRequest, AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest,
    AuthRoleGrantPermissionResponse, AuthRoleListRequest, AuthRoleListResponse,
    AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthUserAddRequest,
    AuthUserAddResponse, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse,
    AuthUserDeleteRequest, AuthUserDeleteResponse, AuthUserGetRequest, AuthUserGetResponse,
    AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, AuthUserListRequest, AuthUserListResponse,
    AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, AuthenticateRequest,
    AuthenticateResponse, ResponseHeader,
};
use crate::store::Store;

/// The Auth service over a [`Context`].
#[derive(Debug)]
pub(crate) struct AuthService {
    context: Arc<Context>,
}

/// Who may make a call besides root.
enum Allowed {
    RootOnly,
    /// The user named in the request may get itself.
    User(String),
    /// A user holding the role named in the request may get it.
    RoleHolder(String),
}

impl AuthService {
    pub(crate) fn new(context: Arc<Context>) -> AuthService {
        AuthService { context }
    }

    /// Whether auth is enabled now.
    pub(crate) fn is_enabled(&self) -> bool {
        self.context.auth.state().enabled
    }

    /// Checks the caller may make a management call, then runs `work` on the blocking pool
    /// with the current header.
    async fn manage<Q, R>(
        &self,
        request: Request<Q>,
        allowed: impl FnOnce(&Q) -> Allowed,
        work: impl FnOnce(&Context, Q, Option<ResponseHeader>) -> EtcdResult<R> + Send + 'static,
    ) -> Result<Response<R>, Status>
    where
        Q: Send + 'static,
        R: Send + 'static,
    {
        if matches!(self.context.store, Store::Replicated(_)) {
            return Err(EtcdError::Unsupported("auth in a cluster").into());
        }
        let caller = self.context.auth.caller(&request)?;
        let user = caller.user.as_deref();
        if let Err(refused) = caller.check_admin() {
            let exempt = match allowed(request.get_ref()) {
                Allowed::RootOnly => false,
                Allowed::User(name) => user == Some(name.as_str()),
                Allowed::RoleHolder(role) => user
                    .and_then(|u| caller.state.users.get(u))
                    .is_some_and(|u| u.roles.contains(&role)),
            };
            if !exempt {
                return Err(refused.into());
            }
        }
        let request = request.into_inner();
        self.context
            .blocking(move |context| {
                let header = Some(context.current_header()?);
                work(context, request, header)
            })
            .await
            .map(Response::new)
    }
}

/// `names` as a sorted list (the state's maps are sorted).
fn names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    names.cloned().collect()
}

/// The grant a RoleGrantPermission asks for.
fn requested_grant(request: &AuthRoleGrantPermissionRequest) -> EtcdResult<Grant> {
    let perm = request
        .perm
        .as_ref()
        .ok_or_else(|| EtcdError::Invalid("a permission is required".to_owned()))?;
    let access = PermissionType::try_from(perm.perm_type)
        .map_err(|_| EtcdError::Invalid(format!("unknown permission type {}", perm.perm_type)))?;
    if perm.key.len() > kvstore::limits::KEY_LEN_MAX
        || perm.range_end.len() > kvstore::limits::KEY_LEN_MAX
    {
        return Err(EtcdError::Invalid(format!(
            "a permission's key and range end are at most {} bytes",
            kvstore::limits::KEY_LEN_MAX
        )));
    }
    Ok(Grant {
        key: perm.key.clone(),
        range_end: perm.range_end.clone(),
        access,
    })
}

/// The state's view for a read-only call.
fn state(context: &Context) -> Arc<AuthState> {
    context.auth.state()
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        request: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, _, header| {
                context.auth.change(AuthState::enable)?;
                Ok(AuthEnableResponse { header })
            },
        )
        .await
    }

    async fn auth_disable(
        &self,
        request: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, _, header| {
                context.auth.change(|s| Ok(s.disable()))?;
                Ok(AuthDisableResponse { header })
            },
        )
        .await
    }

    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let request = request.into_inner();
        self.context
            .blocking(move |context| {
                let token = context
                    .auth
                    .authenticate(&request.name, &request.password)?;
                Ok(AuthenticateResponse {
                    header: Some(context.current_header()?),
                    token,
                })
            })
            .await
            .map(Response::new)
    }

    async fn user_add(
        &self,
        request: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                if request.name.is_empty() {
                    return Err(EtcdError::UserEmpty);
                }
                let no_password = request.options.is_some_and(|o| o.no_password);
                let hash = if no_password {
                    None
                } else {
                    Some(context.auth.hash(&request.password)?)
                };
                context.auth.change(|s| s.add_user(&request.name, hash))?;
                Ok(AuthUserAddResponse { header })
            },
        )
        .await
    }

    async fn user_get(
        &self,
        request: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        self.manage(
            request,
            |r| Allowed::User(r.name.clone()),
            |context, request, header| {
                let state = state(context);
                let user = state
                    .users
                    .get(&request.name)
                    .ok_or(EtcdError::UserNotFound)?;
                Ok(AuthUserGetResponse {
                    header,
                    roles: names(user.roles.iter()),
                })
            },
        )
        .await
    }

    async fn user_list(
        &self,
        request: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, _, header| {
                Ok(AuthUserListResponse {
                    header,
                    users: names(state(context).users.keys()),
                })
            },
        )
        .await
    }

    async fn user_delete(
        &self,
        request: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                context.auth.change(|s| s.delete_user(&request.name))?;
                context.auth.drop_tokens(&request.name);
                Ok(AuthUserDeleteResponse { header })
            },
        )
        .await
    }

    async fn user_change_password(
        &self,
        request: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                let hash = context.auth.hash(&request.password)?;
                context
                    .auth
                    .change(|s| s.change_password(&request.name, hash))?;
                context.auth.drop_tokens(&request.name);
                Ok(AuthUserChangePasswordResponse { header })
            },
        )
        .await
    }

    async fn user_grant_role(
        &self,
        request: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                context
                    .auth
                    .change(|s| s.grant_role(&request.user, &request.role))?;
                Ok(AuthUserGrantRoleResponse { header })
            },
        )
        .await
    }

    async fn user_revoke_role(
        &self,
        request: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                context
                    .auth
                    .change(|s| s.revoke_role(&request.name, &request.role))?;
                Ok(AuthUserRevokeRoleResponse { header })
            },
        )
        .await
    }

    async fn role_add(
        &self,
        request: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                context.auth.change(|s| s.add_role(&request.name))?;
                Ok(AuthRoleAddResponse { header })
            },
        )
        .await
    }

    async fn role_get(
        &self,
        request: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        self.manage(
            request,
            |r| Allowed::RoleHolder(r.role.clone()),
            |context, request, header| {
                let state = state(context);
                let role = state
                    .roles
                    .get(&request.role)
                    .ok_or(EtcdError::RoleNotFound)?;
                Ok(AuthRoleGetResponse {
                    header,
                    perm: role.grants.iter().map(permission).collect(),
                })
            },
        )
        .await
    }

    async fn role_list(
        &self,
        request: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, _, header| {
                Ok(AuthRoleListResponse {
                    header,
                    roles: names(state(context).roles.keys()),
                })
            },
        )
        .await
    }

    async fn role_delete(
        &self,
        request: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                context.auth.change(|s| s.delete_role(&request.role))?;
                Ok(AuthRoleDeleteResponse { header })
            },
        )
        .await
    }

    async fn role_grant_permission(
        &self,
        request: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                let grant = requested_grant(&request)?;
                context
                    .auth
                    .change(|s| s.grant_permission(&request.name, grant))?;
                Ok(AuthRoleGrantPermissionResponse { header })
            },
        )
        .await
    }

    async fn role_revoke_permission(
        &self,
        request: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        self.manage(
            request,
            |_| Allowed::RootOnly,
            |context, request, header| {
                context.auth.change(|s| {
                    s.revoke_permission(&request.role, &request.key, &request.range_end)
                })?;
                Ok(AuthRoleRevokePermissionResponse { header })
            },
        )
        .await
    }
}
