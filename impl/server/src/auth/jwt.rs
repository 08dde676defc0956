//! JSON Web Tokens (etcd's `--auth-token jwt,...`, v3.4's `auth/jwt.go`): Authenticate signs
//! `{"exp": <issue time + ttl, Unix seconds>, "revision": <auth revision>, "username": <user>}`
//! with the configured method; a request's token is checked against the signature, the method
//! and `exp`, and then names its user at its `revision`.
//!
//! Unlike simple tokens, the server keeps nothing: a JWT is valid until its `exp` whatever
//! happens meanwhile (a restart, disabling auth, deleting its user). What makes it useless
//! earlier is the revision: every change to users or roles (and a disable) moves the auth
//! revision, and a key check whose token carries an older revision is refused with `etcdserver:
//! revision of auth store is old` (the `checks` module), as etcd refuses it.
//!
//! Keys: RSA and EC keys are PEM, the private key PKCS#1 or PKCS#8 (RSA) or PKCS#8 (EC), the
//! public key a SubjectPublicKeyInfo (or PKCS#1 for RSA); an HMAC secret is the `priv-key`
//! file's bytes. With a private key, tokens are verified with its public half, as etcd does; a
//! `pub-key` given too must match it. With a public key only, the server verifies tokens but
//! cannot issue them (Authenticate answers etcd's `auth: token signing attempted with
//! verify-only key`).
//!
//! Invariants:
//! - The keys were checked at startup ([`JwtTokens::load`]): a private key signs a probe token
//!   that its verifying key (and a given public key) accepts.
//! - A token is accepted only with the configured method in its header, a valid signature, an
//!   `exp` (when present) not yet past, with no leeway, and both etcd claims well-typed.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    RsaKeyPair,
};
use tokio_rustls::rustls::pki_types::PrivateKeyDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::auth::token_config::{JwtOptions, KeyFamily, SignMethod};
use crate::error::{EtcdError, EtcdResult};

/// Longest key file read, in bytes (an RSA-16384 PEM is about 13 KiB).
const KEY_FILE_LEN_MAX: u64 = 64 * 1024;

/// Why the JWT keys are unusable (the server does not start).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtKeyError {
    /// A key file could not be read.
    #[error("cannot read the JWT {what} {}: {source}", path.display())]
    Read {
        /// `public key` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A key file holds no key the sign method can use.
    #[error("the JWT {what} {} is unusable for {method:?}: {reason}", path.display())]
    Unusable {
        /// `public key` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The configured method.
        method: SignMethod,
        /// What was wrong.
        reason: String,
    },
    /// Neither key is given (the flag's parser refuses that; a [`JwtOptions`] made in code
    /// may still ask for it).
    #[error("JWT tokens signed with {0:?} need a key")]
    NoKey(SignMethod),
    /// The public key does not verify what the private key signs.
    #[error("the JWT public key {} does not match the private key {}", public.display(), private.display())]
    Mismatch {
        /// The public key file.
        public: PathBuf,
        /// The private key file.
        private: PathBuf,
    },
}

/// The claims of a token (serialised in the order Go's sorted map gives etcd's).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    revision: u64,
    username: String,
}

/// The JWT provider (see the module doc).
pub(crate) struct JwtTokens {
    method: SignMethod,
    /// `None`: verify-only.
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtTokens")
            .field("method", &self.method)
            .field("verify_only", &self.signing.is_none())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The jsonwebtoken algorithm of `method`.
fn algorithm(method: SignMethod) -> Algorithm {
    match method {
        SignMethod::RS256 => Algorithm::RS256,
        SignMethod::RS384 => Algorithm::RS384,
        SignMethod::RS512 => Algorithm::RS512,
        SignMethod::PS256 => Algorithm::PS256,
        SignMethod::PS384 => Algorithm::PS384,
        SignMethod::PS512 => Algorithm::PS512,
        SignMethod::ES256 => Algorithm::ES256,
        SignMethod::ES384 => Algorithm::ES384,
        SignMethod::HS256 => Algorithm::HS256,
        SignMethod::HS384 => Algorithm::HS384,
        SignMethod::HS512 => Algorithm::HS512,
    }
}

/// A key file: its path and bytes.
struct KeyFile<'a> {
    what: &'static str,
    path: &'a Path,
    bytes: Vec<u8>,
}

impl KeyFile<'_> {
    fn read<'a>(
        what: &'static str,
        path: Option<&'a Path>,
    ) -> Result<Option<KeyFile<'a>>, JwtKeyError> {
        let Some(path) = path else { return Ok(None) };
        let error = |source| JwtKeyError::Read {
            what,
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(error)?.len();
        if len > KEY_FILE_LEN_MAX {
            return Err(error(std::io::Error::other(format!(
                "{len} bytes, more than a key file's {KEY_FILE_LEN_MAX}"
            ))));
        }
        let bytes = std::fs::read(path).map_err(error)?;
        Ok(Some(KeyFile { what, path, bytes }))
    }

    fn unusable(&self, method: SignMethod) -> impl Fn(String) -> JwtKeyError + '_ {
        move |reason| JwtKeyError::Unusable {
            what: self.what,
            path: self.path.to_path_buf(),
            method,
            reason,
        }
    }
}

/// The signing key and the verifying key (its public half) of the private key PEM `pem`.
fn private_key(method: SignMethod, pem: &[u8]) -> Result<(EncodingKey, DecodingKey), String> {
    let der = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no private key: {e}"))?;
    let rejected = |e: ring::error::KeyRejected| e.to_string();
    match (method.family(), &der) {
        (KeyFamily::Rsa, PrivateKeyDer::Pkcs1(_) | PrivateKeyDer::Pkcs8(_)) => {
            let pair = match &der {
                PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der()),
                _ => RsaKeyPair::from_pkcs8(der.secret_der()),
            }
            .map_err(rejected)?;
            let signing = EncodingKey::from_rsa_pem(pem).map_err(|e| e.to_string())?;
            Ok((signing, DecodingKey::from_rsa_der(pair.public().as_ref())))
        }
        (KeyFamily::Ec, PrivateKeyDer::Pkcs8(key)) => {
            let curve = match method {
                SignMethod::ES384 => &ECDSA_P384_SHA384_FIXED_SIGNING,
                _ => &ECDSA_P256_SHA256_FIXED_SIGNING,
            };
            let pair =
                EcdsaKeyPair::from_pkcs8(curve, key.secret_pkcs8_der(), &SystemRandom::new())
                    .map_err(rejected)?;
            let signing = EncodingKey::from_ec_der(key.secret_pkcs8_der());
            Ok((
                signing,
                DecodingKey::from_ec_der(pair.public_key().as_ref()),
            ))
        }
        (KeyFamily::Ec, PrivateKeyDer::Sec1(_)) => Err("an EC key in SEC1 form (BEGIN EC \
             PRIVATE KEY); convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"
            .to_owned()),
        _ => Err("not a key of the method's kind".to_owned()),
    }
}

/// The verifying key of the public key PEM `pem`.
fn public_key(method: SignMethod, pem: &[u8]) -> Result<DecodingKey, String> {
    match method.family() {
        KeyFamily::Rsa => DecodingKey::from_rsa_pem(pem),
        KeyFamily::Ec => DecodingKey::from_ec_pem(pem),
        KeyFamily::Hmac => return Err("an HMAC method has no public key".to_owned()),
    }
    .map_err(|e| format!("no public key: {e}"))
}

/// Unix seconds `ttl` from now (Go's `time.Now().Add(ttl).Unix()`).
fn expiry(ttl: Duration) -> u64 {
    (SystemTime::now() + ttl)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl JwtTokens {
    /// Reads and checks the keys `options` name (see the module doc). Blocks (reads files).
    pub(crate) fn load(options: &JwtOptions) -> Result<JwtTokens, JwtKeyError> {
        let method = options.sign_method;
        let public = KeyFile::read("public key", options.public_key.as_deref())?;
        let private = KeyFile::read("private key", options.private_key.as_deref())?;
        let mut validation = Validation::new(algorithm(method));
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        // An HMAC method has no public key: etcd ignores `pub-key` then.
        let given_public = public
            .as_ref()
            .filter(|_| method.family() != KeyFamily::Hmac)
            .map(|file| public_key(method, &file.bytes).map_err(file.unusable(method)))
            .transpose()?;
        let (signing, verifying) = match (&private, method.family()) {
            (Some(file), KeyFamily::Hmac) => (
                Some(EncodingKey::from_secret(&file.bytes)),
                DecodingKey::from_secret(&file.bytes),
            ),
            (Some(file), _) => {
                let (signing, verifying) =
                    private_key(method, &file.bytes).map_err(file.unusable(method))?;
                (Some(signing), verifying)
            }
            (None, KeyFamily::Hmac) => return Err(JwtKeyError::NoKey(method)),
            (None, _) => (
                None,
                given_public.clone().ok_or(JwtKeyError::NoKey(method))?,
            ),
        };
        let tokens = JwtTokens {
            method,
            signing,
            verifying,
            validation,
            ttl: options.ttl,
        };
        if let Some(file) = &private {
            let probe = tokens
                .sign("kvstore probe", 0)
                .map_err(|e| file.unusable(method)(e.to_string()))?;
            if tokens.user(&probe).is_none() {
                return Err(file.unusable(method)(
                    "its public half rejects its signature".into(),
                ));
            }
            if let (Some(public), Some(key)) = (&public, &given_public)
                && jsonwebtoken::decode::<Claims>(&probe, key, &tokens.validation).is_err()
            {
                return Err(JwtKeyError::Mismatch {
                    public: public.path.to_path_buf(),
                    private: file.path.to_path_buf(),
                });
            }
        }
        Ok(tokens)
    }

    fn sign(&self, user: &str, revision: u64) -> Result<String, jsonwebtoken::errors::Error> {
        let Some(key) = &self.signing else {
            return Err(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat.into());
        };
        let claims = Claims {
            exp: Some(expiry(self.ttl)),
            revision,
            username: user.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(algorithm(self.method)), &claims, key)
    }

    /// A token naming `user` at auth revision `revision`, valid for the configured TTL; etcd's
    /// `auth: token signing attempted with verify-only key` without a private key.
    pub(crate) fn assign(&self, user: &str, revision: u64) -> EtcdResult<String> {
        if self.signing.is_none() {
            return Err(EtcdError::VerifyOnly);
        }
        self.sign(user, revision)
            .map_err(|e| EtcdError::Invalid(format!("cannot sign the token: {e}")))
    }

    /// The user and auth revision `token` names, if it is valid now.
    pub(crate) fn user(&self, token: &str) -> Option<(String, u64)> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.verifying, &self.validation).ok()?;
        Some((data.claims.username, data.claims.revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac(secret: &[u8], ttl: Duration) -> (JwtTokens, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, secret).unwrap();
        let options = JwtOptions {
            sign_method: SignMethod::HS256,
            public_key: None,
            private_key: Some(path),
            ttl,
        };
        (JwtTokens::load(&options).unwrap(), dir)
    }

    #[test]
    fn tokens_carry_user_and_revision_and_refuse_tampering() {
        let (tokens, _dir) = hmac(b"s3cret", Duration::from_secs(60));
        let token = tokens.assign("alice", 7).unwrap();
        assert_eq!(tokens.user(&token), Some(("alice".to_owned(), 7)));
        let (other, _other_dir) = hmac(b"other", Duration::from_secs(60));
        assert_eq!(other.user(&token), None, "another key's signature");
        let mut tampered = token.clone().into_bytes();
        let dot = token.find('.').unwrap();
        tampered[dot + 3] ^= 1;
        assert_eq!(tokens.user(&String::from_utf8(tampered).unwrap()), None);
        assert_eq!(tokens.user("not.a.token"), None);
        assert_eq!(tokens.user(""), None);
    }

    /// JWT options for `method` with the PEM keys written to `dir` (`None`: not given).
    fn ec_options(
        dir: &Path,
        method: SignMethod,
        public: Option<&str>,
        private: Option<&str>,
    ) -> JwtOptions {
        let write = |name: &str, pem: Option<&str>| {
            pem.map(|pem| {
                let path = dir.join(name);
                std::fs::write(&path, pem).unwrap();
                path
            })
        };
        JwtOptions {
            sign_method: method,
            public_key: write("pub.pem", public),
            private_key: write("priv.pem", private),
            ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn ec_keys_sign_verify_and_are_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let (pair, other) = (
            rcgen::KeyPair::generate().unwrap(),
            rcgen::KeyPair::generate().unwrap(),
        );
        let (public, private) = (pair.public_key_pem(), pair.serialize_pem());
        let es256 = SignMethod::ES256;
        // The private key alone: its public half verifies.
        let full = JwtTokens::load(&ec_options(dir.path(), es256, None, Some(&private))).unwrap();
        let token = full.assign("alice", 3).unwrap();
        assert_eq!(full.user(&token), Some(("alice".to_owned(), 3)));
        // The public key alone: verifies the other's tokens, issues none.
        let verify_only =
            JwtTokens::load(&ec_options(dir.path(), es256, Some(&public), None)).unwrap();
        assert_eq!(verify_only.user(&token), Some(("alice".to_owned(), 3)));
        assert!(matches!(
            verify_only.assign("alice", 3),
            Err(EtcdError::VerifyOnly)
        ));
        // Both, matching or not.
        JwtTokens::load(&ec_options(
            dir.path(),
            es256,
            Some(&public),
            Some(&private),
        ))
        .unwrap();
        let mismatched = ec_options(
            dir.path(),
            es256,
            Some(&other.public_key_pem()),
            Some(&private),
        );
        assert!(matches!(
            JwtTokens::load(&mismatched),
            Err(JwtKeyError::Mismatch { .. })
        ));
        // A P-256 key for ES384, or for RS256: unusable.
        for method in [SignMethod::ES384, SignMethod::RS256] {
            let wrong = ec_options(dir.path(), method, None, Some(&private));
            assert!(matches!(
                JwtTokens::load(&wrong),
                Err(JwtKeyError::Unusable { .. })
            ));
        }
        let none = ec_options(dir.path(), es256, None, None);
        assert!(matches!(JwtTokens::load(&none), Err(JwtKeyError::NoKey(_))));
    }

    #[test]
    fn an_expired_token_names_no_one() {
        let (tokens, _dir) = hmac(b"s3cret", Duration::from_secs(60));
        let key = tokens.signing.as_ref().unwrap();
        let header = Header::new(Algorithm::HS256);
        let past = Claims {
            exp: Some(expiry(Duration::ZERO) - 2),
            revision: 1,
            username: "alice".into(),
        };
        let token = jsonwebtoken::encode(&header, &past, key).unwrap();
        assert_eq!(tokens.user(&token), None);
        // No exp: valid, as jwt-go's MapClaims take it.
        let forever = Claims { exp: None, ..past };
        let token = jsonwebtoken::encode(&header, &forever, key).unwrap();
        assert_eq!(tokens.user(&token), Some(("alice".to_owned(), 1)));
        // Another method in the header: refused, as etcd refuses it.
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS384), &forever, key).unwrap();
        assert_eq!(tokens.user(&token), None);
    }
}
