//! Simple tokens (etcd's default `--auth-token simple`, `auth/simple_token.go`): an opaque
//! random string handed out by Authenticate and sent back as the gRPC metadata `token`.
//!
//! A token is [`TOKEN_LETTERS`] random ASCII letters, a dot and a sequence number (etcd uses
//! its raft index there), e.g. `XqbYEGFdfEcLAnyP.7`. It names a user for [`TOKEN_TTL`]; each
//! use pushes its expiry [`TOKEN_TTL`] past the use, as etcd's keeper does. Tokens live in
//! memory only: a restart, disabling auth, or changing or deleting the user drops them.
//!
//! Invariants:
//! - At most [`TOKENS_MAX`] tokens are held: handing out one more first drops the expired ones,
//!   then, if still full, the one that expires first.
//! - An expired token never names a user, whether or not it was dropped yet.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphabetic;

/// How long a token stays valid after its last use (etcd's `simpleTokenTTLDefault`).
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(300);
/// Random letters in a token (etcd's `defaultSimpleTokenLength`).
const TOKEN_LETTERS: usize = 16;
/// Most tokens held at once.
pub(crate) const TOKENS_MAX: usize = 65_536;

#[derive(Debug)]
struct Entry {
    user: String,
    expires_at: Instant,
}

#[derive(Debug, Default)]
struct Table {
    by_token: HashMap<String, Entry>,
    next_index: u64,
}

/// The tokens handed out (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    table: Mutex<Table>,
}

impl Tokens {
    fn table(&self) -> MutexGuard<'_, Table> {
        // The table holds no invariant a panic could break halfway.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new token naming `user` until [`TOKEN_TTL`] after `now`, if `valid()`, which is
    /// called under the table's lock (so a drop that follows the change `valid` looks for
    /// also drops the new token); `None` if not.
    pub(crate) fn assign_if(
        &self,
        user: &str,
        now: Instant,
        valid: impl FnOnce() -> bool,
    ) -> Option<String> {
        let letters: String = rand::rng()
            .sample_iter(Alphabetic)
            .take(TOKEN_LETTERS)
            .map(char::from)
            .collect();
        let mut table = self.table();
        if !valid() {
            return None;
        }
        if table.by_token.len() >= TOKENS_MAX {
            table.by_token.retain(|_, e| e.expires_at > now);
        }
        if table.by_token.len() >= TOKENS_MAX {
            let first = table
                .by_token
                .iter()
                .min_by_key(|(_, e)| e.expires_at)
                .map(|(token, _)| token.clone());
            if let Some(first) = first {
                table.by_token.remove(&first);
            }
        }
        table.next_index = table.next_index.wrapping_add(1);
        let token = format!("{letters}.{}", table.next_index);
        table.by_token.insert(
            token.clone(),
            Entry {
                user: user.to_owned(),
                expires_at: now + TOKEN_TTL,
            },
        );
        Some(token)
    }

    /// The user `token` names at `now`, pushing its expiry; `None` if unknown or expired.
    pub(crate) fn user(&self, token: &str, now: Instant) -> Option<String> {
        let mut table = self.table();
        let entry = table.by_token.get_mut(token)?;
        if entry.expires_at <= now {
            table.by_token.remove(token);
            return None;
        }
        entry.expires_at = now + TOKEN_TTL;
        Some(entry.user.clone())
    }

    /// Drops every token of `user` (its password changed, or it was deleted).
    pub(crate) fn drop_user(&self, user: &str) {
        self.table().by_token.retain(|_, e| e.user != user);
    }

    /// Drops every token (auth was disabled).
    pub(crate) fn clear(&self) {
        self.table().by_token.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_unless_used() {
        let tokens = Tokens::default();
        let start = Instant::now();
        let token = tokens.assign_if("alice", start, || true).unwrap();
        let (letters, index) = token.split_once('.').unwrap();
        assert_eq!(letters.len(), TOKEN_LETTERS);
        assert!(letters.chars().all(|c| c.is_ascii_alphabetic()));
        assert_eq!(index, "1");
        let almost = start + TOKEN_TTL - Duration::from_secs(1);
        assert_eq!(tokens.user(&token, almost).as_deref(), Some("alice"));
        // The use pushed the expiry.
        let later = start + TOKEN_TTL + Duration::from_secs(1);
        assert_eq!(tokens.user(&token, later).as_deref(), Some("alice"));
        assert_eq!(tokens.user(&token, later + TOKEN_TTL), None);
        assert_eq!(tokens.user(&token, later), None, "an expired token is gone");
        assert_eq!(tokens.user("nope", start), None);
    }

    #[test]
    fn dropping_a_user_drops_its_tokens_only() {
        let tokens = Tokens::default();
        let now = Instant::now();
        let a = tokens.assign_if("alice", now, || true).unwrap();
        let b = tokens.assign_if("bob", now, || true).unwrap();
        assert_eq!(tokens.assign_if("carol", now, || false), None);
        assert_ne!(a, b);
        tokens.drop_user("alice");
        assert_eq!(tokens.user(&a, now), None);
        assert_eq!(tokens.user(&b, now).as_deref(), Some("bob"));
        tokens.clear();
        assert_eq!(tokens.user(&b, now), None);
    }
}
