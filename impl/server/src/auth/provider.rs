//! The token provider (etcd's `TokenProvider`): which kind of token Authenticate hands out, and
//! whom, at which auth revision, a token names. Simple tokens (`token`) are remembered by the
//! server and name their user at the current auth revision; JWTs (`jwt`) are remembered by
//! nobody and name their user at the revision they were issued at.
//!
//! Invariants:
//! - A token that names no one (unknown, expired, tampered with, dropped) is `None`, whatever
//!   the kind; the caller answers `invalid auth token`.
//! - Dropping a user's tokens or all tokens affects simple tokens only: a JWT cannot be
//!   recalled, the auth revision its holder carries makes it old instead (as in etcd).

use std::time::Instant;

use crate::auth::jwt::{JwtKeyError, JwtTokens};
use crate::auth::token::Tokens;
use crate::auth::token_config::AuthToken;
use crate::error::EtcdResult;

/// Whom a token names (etcd's `AuthInfo`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TokenUser {
    pub(crate) name: String,
    /// The auth revision the token speaks for.
    pub(crate) revision: u64,
}

/// The tokens of one kind (see the module doc).
#[derive(Debug)]
pub(crate) enum TokenProvider {
    Simple(Tokens),
    Jwt(Box<JwtTokens>),
}

impl TokenProvider {
    /// The provider `config` asks for, its keys read and checked. Blocks (reads files).
    pub(crate) fn load(config: &AuthToken) -> Result<TokenProvider, JwtKeyError> {
        Ok(match config {
            AuthToken::Simple => TokenProvider::Simple(Tokens::default()),
            AuthToken::Jwt(options) => TokenProvider::Jwt(Box::new(JwtTokens::load(options)?)),
        })
    }

    /// A new token naming `user` at auth revision `revision`, if `valid()` (for simple tokens
    /// called under their table's lock, see [`Tokens::assign_if`]); `None` if not valid.
    pub(crate) fn assign_if(
        &self,
        user: &str,
        revision: u64,
        valid: impl FnOnce() -> bool,
    ) -> EtcdResult<Option<String>> {
        match self {
            TokenProvider::Simple(tokens) => Ok(tokens.assign_if(user, Instant::now(), valid)),
            TokenProvider::Jwt(tokens) if valid() => tokens.assign(user, revision).map(Some),
            TokenProvider::Jwt(_) => Ok(None),
        }
    }

    /// Whom `token` names now, `current_revision` being the auth revision now.
    pub(crate) fn user(&self, token: &str, current_revision: u64) -> Option<TokenUser> {
        match self {
            TokenProvider::Simple(tokens) => {
                tokens.user(token, Instant::now()).map(|name| TokenUser {
                    name,
                    revision: current_revision,
                })
            }
            TokenProvider::Jwt(tokens) => tokens
                .user(token)
                .map(|(name, revision)| TokenUser { name, revision }),
        }
    }

    /// Drops the simple tokens of `user` (its password changed, or it was deleted).
    pub(crate) fn drop_user(&self, user: &str) {
        if let TokenProvider::Simple(tokens) = self {
            tokens.drop_user(user);
        }
    }

    /// Drops every simple token (auth was disabled).
    pub(crate) fn clear(&self) {
        if let TokenProvider::Simple(tokens) = self {
            tokens.clear();
        }
    }
}
