//! etcd's auth and RBAC (etcd v3.4's `auth` package and Auth service): users with bcrypt
//! password hashes, roles granting READ, WRITE or READWRITE on keys and key ranges, the enabled
//! flag, simple tokens or JWTs, a client certificate's common name as the user, and the checks
//! every call passes while auth is enabled.
//!
//! Modules, one concept each:
//! - `state`: the users, roles and flag as a value, and every change etcd makes to them.
//! - `perms`: whether a user may read or write a key range (the union of its roles' grants).
//! - `record`: the state's durable encoding (spec/FORMAT.md, "The auth store").
//! - `store`: [`AuthStore`], the state kept durable in a second engine database under the
//!   database directory, the tokens, password hashing; [`Caller`], who a request comes from.
//! - `token_config`: [`AuthToken`], etcd's `--auth-token` flag and its grammar.
//! - `provider`: the token provider, simple or JWT: issuing a token, whom a token names.
//! - `token`: simple tokens with their TTL.
//! - `jwt`: JSON Web Tokens, signed and verified with the configured keys.
//! - `checks`: what each KV, Lease and Watch request needs of its caller.
//! - `service`: the Auth gRPC service.
//!
//! Invariants:
//! - With auth disabled every call is allowed as if auth did not exist (but a token that names
//!   no user is refused, as etcd refuses it).
//! - A refused call writes nothing and returns nothing it was not allowed to see: checks run
//!   before the request reaches the store.
//! - The auth state lives outside the key space: no client key holds it, no auth change takes
//!   a KV revision.

mod checks;
mod jwt;
mod perms;
mod provider;
mod record;
mod service;
mod state;
mod store;
mod token;
mod token_config;

pub use jwt::JwtKeyError;
pub(crate) use perms::Access;
pub(crate) use provider::TokenProvider;
pub(crate) use service::AuthService;
pub(crate) use store::{AuthStore, Caller, Credentials, TOKEN_METADATA};
pub use store::{BCRYPT_COST_DEFAULT, BCRYPT_COST_MAX, BCRYPT_COST_MIN};
pub use token_config::{AuthToken, AuthTokenError, JWT_TTL_DEFAULT, JwtOptions, SignMethod};
