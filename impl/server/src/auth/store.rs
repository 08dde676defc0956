//! [`AuthStore`]: the auth state, durable in a second engine database, the tokens, the
//! password hashing, and who a request comes from ([`Credentials`], [`Caller`]).
//!
//! The state is kept in the engine database at `<db dir>/auth/` (spec/FORMAT.md, "The auth
//! store") as one record under the key [`RECORD_KEY`]: every change rewrites it in one
//! synced put, so a change is all there or not at all after a crash. The key space clients
//! see never holds it and a change takes no KV revision, as in etcd.
//!
//! Invariants:
//! - Changes are serialised by one writer lock and each is durable before the new state is
//!   published to readers and before the call answers; readers take an `Arc` of the published
//!   state and never wait for a change's fsync.
//! - A change that drops tokens (a password change, a user's deletion, a disable) drops them
//!   after it is published, and a token is handed out only while the state its password was
//!   checked against is the published one (checked under the token table's lock): a token
//!   never outlives the change.
//! - Every method that hashes, checks a password or writes runs on the blocking pool (the
//!   callers use [`crate::context::Context::blocking`]).
//! - A request's user is its token's if it carries one (a token naming no one is refused, never
//!   passed over), else its client certificate's common name (mutual TLS, gRPC only), else
//!   none: etcd's `AuthInfoFromCtx`, then `AuthInfoFromTLS`.
//! - A fresh store is at auth revision 1, as etcd's (its first commit), so that the revision a
//!   JWT carries is the one etcd's would.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use kvstore::{Db, Durability, HistoryRetention, Options};
use tonic::Request;

use crate::auth::provider::TokenProvider;
use crate::auth::record;
use crate::auth::state::{AuthState, Changed};
use crate::error::{EtcdError, EtcdResult, ServeError};
use crate::listener::ClientCertificate;

/// The auth store's directory inside the database directory.
pub(crate) const AUTH_DIR: &str = "auth";
/// The key of the one record in the auth store's database.
pub(crate) const RECORD_KEY: &[u8] = b"auth/state";
/// The gRPC metadata a client sends its token in (etcd's `TokenFieldNameGRPC`).
pub(crate) const TOKEN_METADATA: &str = "token";

/// etcd's default bcrypt cost (`bcrypt.DefaultCost`, `--bcrypt-cost`).
pub const BCRYPT_COST_DEFAULT: u32 = 10;
/// The bcrypt costs the `bcrypt` crate (and etcd) accept.
pub const BCRYPT_COST_MIN: u32 = 4;
/// See [`BCRYPT_COST_MIN`].
pub const BCRYPT_COST_MAX: u32 = 31;
/// How often Authenticate checks a password again when the auth store changed meanwhile.
const AUTHENTICATE_ATTEMPTS_MAX: usize = 8;
/// Longest password accepted, in bytes: bcrypt reads only the first 72.
const PASSWORD_LEN_MAX: usize = 72;

/// The auth revision of a fresh store (etcd commits revision 1 when it creates its store).
const REVISION_INITIAL: u64 = 1;

/// Who is calling: the published state at the time of the call, the user, and the auth
/// revision the user was established at (a JWT's `revision` claim; the state's own revision
/// for a simple token or a certificate).
#[derive(Debug)]
pub(crate) struct Caller {
    pub(crate) state: Arc<AuthState>,
    pub(crate) user: Option<String>,
    pub(crate) revision: u64,
}

/// What a request says about who sends it: its token, and over mutual TLS its client
/// certificate's common name (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct Credentials {
    token: Option<String>,
    common_name: Option<Arc<str>>,
}

impl Credentials {
    /// A gRPC request's: its `token` metadata (a value that is not ASCII is no token any user
    /// has) and its connection's client certificate.
    pub(crate) fn of<T>(request: &Request<T>) -> Credentials {
        Credentials {
            token: request
                .metadata()
                .get(TOKEN_METADATA)
                .map(|token| token.to_str().unwrap_or_default().to_owned()),
            common_name: request
                .extensions()
                .get::<ClientCertificate>()
                .and_then(|client| client.common_name.clone()),
        }
    }

    /// A gateway request's: its token only. etcd's gateway calls the server as a client of its
    /// own, and the server ignores the certificate of a gateway call (`grpcgateway-accept`).
    pub(crate) fn token_only(token: Option<String>) -> Credentials {
        Credentials {
            token,
            common_name: None,
        }
    }
}

/// The auth store (see the module doc).
#[derive(Debug)]
pub(crate) struct AuthStore {
    db: Db,
    published: RwLock<Arc<AuthState>>,
    writer: Mutex<()>,
    tokens: TokenProvider,
    bcrypt_cost: u32,
}

/// The auth store's directory for the database at `db_dir`.
pub(crate) fn auth_dir(db_dir: &Path) -> PathBuf {
    db_dir.join(AUTH_DIR)
}

impl AuthStore {
    /// Opens (creating if missing) the auth store of the database at `db_dir`, handing out
    /// `tokens`. Blocks.
    pub(crate) fn open(
        db_dir: &Path,
        bcrypt_cost: u32,
        tokens: TokenProvider,
    ) -> Result<AuthStore, ServeError> {
        let path = auth_dir(db_dir);
        let failed = |reason: String| ServeError::Auth {
            path: path.clone(),
            reason,
        };
        if !(BCRYPT_COST_MIN..=BCRYPT_COST_MAX).contains(&bcrypt_cost) {
            return Err(failed(format!(
                "bcrypt cost {bcrypt_cost} outside {}..={}",
                BCRYPT_COST_MIN, BCRYPT_COST_MAX
            )));
        }
        let options = Options {
            durability: Durability::Sync,
            // Only the newest record is ever read.
            history_retention: HistoryRetention::Revisions(1),
            ..Options::default()
        };
        let db = Db::open(&path, options).map_err(|e| failed(e.to_string()))?;
        let state = match db.get(RECORD_KEY).map_err(|e| failed(e.to_string()))? {
            Some(bytes) => record::decode(&bytes).map_err(failed)?,
            None => AuthState {
                revision: REVISION_INITIAL,
                ..AuthState::default()
            },
        };
        Ok(AuthStore {
            db,
            published: RwLock::new(Arc::new(state)),
            writer: Mutex::new(()),
            tokens,
            bcrypt_cost,
        })
    }

    /// The state as last published.
    pub(crate) fn state(&self) -> Arc<AuthState> {
        let published = self
            .published
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&published)
    }

    /// The caller presenting `credentials`: a token that names no user (unknown, expired,
    /// tampered with, dropped) is `invalid auth token`, with auth enabled or not, as etcd.
    pub(crate) fn caller_with(&self, credentials: &Credentials) -> EtcdResult<Caller> {
        let state = self.state();
        let (user, revision) = match (&credentials.token, &credentials.common_name) {
            (Some(token), _) => {
                let user = self
                    .tokens
                    .user(token, state.revision)
                    .ok_or(EtcdError::InvalidAuthToken)?;
                (Some(user.name), user.revision)
            }
            (None, Some(common_name)) => (Some(common_name.to_string()), state.revision),
            (None, None) => (None, state.revision),
        };
        Ok(Caller {
            state,
            user,
            revision,
        })
    }

    /// The caller of the gRPC request `request` (see [`AuthStore::caller_with`]).
    pub(crate) fn caller<T>(&self, request: &Request<T>) -> EtcdResult<Caller> {
        self.caller_with(&Credentials::of(request))
    }

    /// Applies `change` to a copy of the state and, if it changed anything, makes the copy
    /// durable and publishes it. Blocks.
    pub(crate) fn change(
        &self,
        change: impl FnOnce(&mut AuthState) -> EtcdResult<Changed>,
    ) -> EtcdResult<()> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = AuthState::clone(&self.state());
        match change(&mut next)? {
            Changed::No => return Ok(()),
            Changed::Records => next.revision = next.revision.saturating_add(1),
            Changed::Flag => {}
        }
        let bytes = record::encode(&next)?;
        self.db.put(RECORD_KEY, &bytes)?;
        let disabled = !next.enabled;
        *self
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        if disabled {
            self.tokens.clear();
        }
        Ok(())
    }

    /// The bcrypt hash of `password` at the configured cost. Blocks (about 60 ms at cost 10).
    pub(crate) fn hash(&self, password: &str) -> EtcdResult<String> {
        if password.len() > PASSWORD_LEN_MAX {
            return Err(EtcdError::Invalid(format!(
                "a password is at most {PASSWORD_LEN_MAX} bytes (bcrypt reads no more)"
            )));
        }
        bcrypt::hash(password, self.bcrypt_cost)
            .map_err(|e| EtcdError::Invalid(format!("cannot hash the password: {e}")))
    }

    /// etcd's `CheckPassword` then `Authenticate`: a token for `name` if auth is enabled and
    /// the password matches its hash. A token is handed out only if the state the password
    /// was checked against is still the published one, so no token outlives a password change,
    /// a deletion or a disable that raced it (etcd retries likewise). Blocks.
    pub(crate) fn authenticate(&self, name: &str, password: &str) -> EtcdResult<String> {
        for _ in 0..AUTHENTICATE_ATTEMPTS_MAX {
            let state = self.state();
            if !state.enabled {
                return Err(EtcdError::AuthNotEnabled);
            }
            let user = state.users.get(name).ok_or(EtcdError::AuthFailed)?;
            let hash = user
                .password_hash
                .as_deref()
                .ok_or(EtcdError::NoPasswordUser)?;
            if password.len() > PASSWORD_LEN_MAX || !bcrypt::verify(password, hash).unwrap_or(false)
            {
                return Err(EtcdError::AuthFailed);
            }
            let unchanged = || Arc::ptr_eq(&self.state(), &state);
            if let Some(token) = self.tokens.assign_if(name, state.revision, unchanged)? {
                return Ok(token);
            }
        }
        Err(EtcdError::Contended(format!(
            "the auth store changed during {AUTHENTICATE_ATTEMPTS_MAX} attempts to authenticate"
        )))
    }

    /// Drops the simple tokens of `user` (its password changed, or it was deleted).
    pub(crate) fn drop_tokens(&self, user: &str) {
        self.tokens.drop_user(user);
    }

    /// A handle on the auth store's database, to close it at shutdown.
    pub(crate) fn database(&self) -> Db {
        self.db.clone()
    }
}
