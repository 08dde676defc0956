//! etcd's `--auth-token` flag as a value ([`AuthToken`]) and its grammar (etcd v3.4's
//! `decomposeOpts` and `jwtOptions`):
//!
//! ```text
//! auth-token = "simple" | "jwt" ("," option)*
//! option     = ("sign-method" | "pub-key" | "priv-key" | "ttl") "=" value
//! ```
//!
//! `sign-method` is required, one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384,
//! HS256, HS384, HS512; `pub-key` and `priv-key` are PEM files (HMAC: `priv-key` holds the
//! secret, byte for byte); `ttl` is a Go duration (`5m`, `30s`, `1h30m`, `250ms`), 5 minutes
//! when absent.
//!
//! Where kvstore is stricter than etcd 3.4, it refuses at startup what etcd would accept and
//! then misbehave with: an option repeated (etcd too), an unknown option (etcd warns and ignores
//! it, so a misspelt `priv_key` silently makes a verify-only server), options after `simple`
//! (etcd ignores them), a `ttl` that is not positive (etcd takes `0s`: every token born
//! expired). ES512 is refused: the JWT library (jsonwebtoken, over ring) has no P-521.
//! EdDSA is refused as etcd 3.4 refuses it.
//!
//! Invariants: a parsed [`JwtOptions`] has a positive `ttl` and names the keys its method needs
//! at least one of (HMAC: `priv-key`); whether the files hold usable keys is the `jwt` module's
//! check, at startup.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// etcd's default JWT lifetime (`auth.DefaultTTL`).
pub const JWT_TTL_DEFAULT: Duration = Duration::from_secs(5 * 60);
/// Longest `--auth-token` value accepted, in bytes (two paths and a few words).
const AUTH_TOKEN_LEN_MAX: usize = 16 * 1024;

/// How Authenticate's tokens are made and checked (etcd's `--auth-token`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthToken {
    /// Random strings the server remembers, each for 300 s after its last use (etcd's default).
    #[default]
    Simple,
    /// JSON Web Tokens signed with the configured key, carrying the user, the auth revision and
    /// an expiry; a server with only the public key checks tokens but cannot issue them.
    Jwt(JwtOptions),
}

/// The options of `--auth-token jwt,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtOptions {
    /// The JWS algorithm tokens are signed with and must carry.
    pub sign_method: SignMethod,
    /// The public key (PEM): verifies tokens; alone, the server cannot issue any.
    pub public_key: Option<PathBuf>,
    /// The private key (PEM), or the HMAC secret: signs tokens (and verifies them, through its
    /// public half, as etcd does).
    pub private_key: Option<PathBuf>,
    /// How long a token is valid after it is issued.
    pub ttl: Duration,
}

/// The JWS algorithms `sign-method` may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignMethod {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

/// The key family a [`SignMethod`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    Ec,
    Hmac,
}

impl SignMethod {
    const ALL: [(&'static str, SignMethod); 11] = [
        ("RS256", SignMethod::RS256),
        ("RS384", SignMethod::RS384),
        ("RS512", SignMethod::RS512),
        ("PS256", SignMethod::PS256),
        ("PS384", SignMethod::PS384),
        ("PS512", SignMethod::PS512),
        ("ES256", SignMethod::ES256),
        ("ES384", SignMethod::ES384),
        ("HS256", SignMethod::HS256),
        ("HS384", SignMethod::HS384),
        ("HS512", SignMethod::HS512),
    ];

    pub(crate) fn family(self) -> KeyFamily {
        match self {
            SignMethod::RS256
            | SignMethod::RS384
            | SignMethod::RS512
            | SignMethod::PS256
            | SignMethod::PS384
            | SignMethod::PS512 => KeyFamily::Rsa,
            SignMethod::ES256 | SignMethod::ES384 => KeyFamily::Ec,
            SignMethod::HS256 | SignMethod::HS384 | SignMethod::HS512 => KeyFamily::Hmac,
        }
    }
}

/// Why an `--auth-token` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthTokenError {
    /// The value is longer than any sensible one.
    #[error("the value is longer than {AUTH_TOKEN_LEN_MAX} bytes")]
    TooLong,
    /// The type is neither `simple` nor `jwt`.
    #[error("unknown token type {0:?} (expected simple or jwt)")]
    UnknownType(String),
    /// `simple` takes no options.
    #[error("simple tokens take no options (got {0:?})")]
    SimpleOptions(String),
    /// An option is not `name=value`.
    #[error("option {0:?} is not name=value")]
    NotAPair(String),
    /// An option is given twice.
    #[error("option {0} is given twice")]
    Duplicate(String),
    /// An option JWT does not have.
    #[error("unknown jwt option {0:?} (expected sign-method, pub-key, priv-key or ttl)")]
    UnknownOption(String),
    /// `sign-method` is missing.
    #[error("jwt needs sign-method")]
    NoSignMethod,
    /// `sign-method` names no algorithm kvstore signs with.
    #[error(
        "unsupported sign-method {0:?} (expected RS256, RS384, RS512, PS256, PS384, PS512, \
         ES256, ES384, HS256, HS384 or HS512)"
    )]
    SignMethod(String),
    /// `ttl` is not a positive Go duration.
    #[error("ttl {0:?} is not a positive duration such as 5m, 30s or 1h30m")]
    Ttl(String),
    /// Neither key is given (an HMAC method: no `priv-key`).
    #[error("jwt with {method:?} needs {needed}")]
    MissingKey {
        /// The method.
        method: SignMethod,
        /// Which options would do.
        needed: &'static str,
    },
}

impl FromStr for AuthToken {
    type Err = AuthTokenError;

    fn from_str(value: &str) -> Result<AuthToken, AuthTokenError> {
        if value.len() > AUTH_TOKEN_LEN_MAX {
            return Err(AuthTokenError::TooLong);
        }
        let mut parts = value.split(',');
        let kind = parts.next().unwrap_or_default();
        let mut options = BTreeMap::new();
        for option in parts {
            let (name, value) = option
                .split_once('=')
                .filter(|(_, value)| !value.contains('='))
                .ok_or_else(|| AuthTokenError::NotAPair(option.to_owned()))?;
            if options.insert(name, value).is_some() {
                return Err(AuthTokenError::Duplicate(name.to_owned()));
            }
        }
        match kind {
            "simple" if options.is_empty() => Ok(AuthToken::Simple),
            "simple" => Err(AuthTokenError::SimpleOptions(value.to_owned())),
            "jwt" => jwt_options(&options).map(AuthToken::Jwt),
            other => Err(AuthTokenError::UnknownType(other.to_owned())),
        }
    }
}

/// The JWT options from `name=value` pairs.
fn jwt_options(options: &BTreeMap<&str, &str>) -> Result<JwtOptions, AuthTokenError> {
    if let Some(unknown) = options
        .keys()
        .find(|name| !["sign-method", "pub-key", "priv-key", "ttl"].contains(name))
    {
        return Err(AuthTokenError::UnknownOption((*unknown).to_owned()));
    }
    let method = options
        .get("sign-method")
        .ok_or(AuthTokenError::NoSignMethod)?;
    let sign_method = SignMethod::ALL
        .iter()
        .find(|(name, _)| name == method)
        .map(|&(_, method)| method)
        .ok_or_else(|| AuthTokenError::SignMethod((*method).to_owned()))?;
    let path = |name| {
        options
            .get(name)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    };
    let (public_key, private_key) = (path("pub-key"), path("priv-key"));
    let ttl = match options.get("ttl") {
        None | Some(&"") => JWT_TTL_DEFAULT,
        Some(ttl) => go_duration(ttl)
            .filter(|ttl| !ttl.is_zero())
            .ok_or_else(|| AuthTokenError::Ttl((*ttl).to_owned()))?,
    };
    let missing = |needed| AuthTokenError::MissingKey {
        method: sign_method,
        needed,
    };
    match sign_method.family() {
        KeyFamily::Hmac if private_key.is_none() => Err(missing("priv-key (the secret)")),
        KeyFamily::Rsa | KeyFamily::Ec if private_key.is_none() && public_key.is_none() => {
            Err(missing("pub-key, priv-key or both"))
        }
        _ => Ok(JwtOptions {
            sign_method,
            public_key,
            private_key,
            ttl,
        }),
    }
}

/// A non-negative Go duration (`time.ParseDuration`): `0`, or one or more decimal numbers each
/// with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `1h30m`, `1.5s`; `None` if `text`
/// is not one, is negative or overflows.
fn go_duration(text: &str) -> Option<Duration> {
    // "ms" before "m": the first unit the text starts with is taken.
    const UNITS_NS: [(&str, u128); 8] = [
        ("ns", 1),
        ("us", 1_000),
        ("µs", 1_000),
        ("μs", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    let text = text.strip_prefix('+').unwrap_or(text);
    match text {
        "" => return None,
        "0" => return Some(Duration::ZERO),
        _ => {}
    }
    let mut rest = text;
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let (unit, unit_ns) = UNITS_NS
            .iter()
            .find(|(unit, _)| after.starts_with(unit))
            .copied()?;
        rest = after.get(unit.len()..)?;
        let whole_ns = if whole.is_empty() {
            0
        } else {
            whole.parse::<u128>().ok()?.checked_mul(unit_ns)?
        };
        let mut fraction_ns: u128 = 0;
        let mut scale = unit_ns;
        for digit in fraction.chars() {
            scale /= 10;
            fraction_ns = fraction_ns.checked_add(u128::from(digit.to_digit(10)?) * scale)?;
        }
        total_ns = total_ns.checked_add(whole_ns)?.checked_add(fraction_ns)?;
    }
    let secs = u64::try_from(total_ns / 1_000_000_000).ok()?;
    let nanos = u32::try_from(total_ns % 1_000_000_000).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_as_go_does() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("0", Some(ms(0))),
            ("5m", Some(ms(300_000))),
            ("1h30m", Some(ms(5_400_000))),
            ("1.5s", Some(ms(1_500))),
            ("250ms", Some(ms(250))),
            ("2us", Some(Duration::from_micros(2))),
            (".5s", Some(ms(500))),
            ("+3s", Some(ms(3_000))),
            ("-3s", None),
            ("3", None),
            ("s", None),
            ("3x", None),
            ("", None),
            ("1.2.3s", None),
            ("99999999999999999999999999999999999999h", None),
        ] {
            assert_eq!(go_duration(text), want, "{text:?}");
        }
    }

    #[test]
    fn auth_token_values_parse_or_say_what_is_wrong() {
        assert_eq!("simple".parse(), Ok(AuthToken::Simple));
        let jwt: AuthToken = "jwt,pub-key=/p.pem,priv-key=/k.pem,sign-method=RS256,ttl=10s"
            .parse()
            .unwrap();
        assert_eq!(
            jwt,
            AuthToken::Jwt(JwtOptions {
                sign_method: SignMethod::RS256,
                public_key: Some(PathBuf::from("/p.pem")),
                private_key: Some(PathBuf::from("/k.pem")),
                ttl: Duration::from_secs(10),
            })
        );
        let verify_only: AuthToken = "jwt,pub-key=/p.pem,sign-method=ES384".parse().unwrap();
        assert!(matches!(verify_only, AuthToken::Jwt(o) if o.ttl == JWT_TTL_DEFAULT));
        for (value, error) in [
            ("", AuthTokenError::UnknownType(String::new())),
            ("jwtx", AuthTokenError::UnknownType("jwtx".into())),
            (
                "simple,ttl=5m",
                AuthTokenError::SimpleOptions("simple,ttl=5m".into()),
            ),
            (
                "jwt,sign-method",
                AuthTokenError::NotAPair("sign-method".into()),
            ),
            ("jwt,a=b=c", AuthTokenError::NotAPair("a=b=c".into())),
            ("jwt,ttl=1s,ttl=2s", AuthTokenError::Duplicate("ttl".into())),
            (
                "jwt,priv_key=/k",
                AuthTokenError::UnknownOption("priv_key".into()),
            ),
            ("jwt,priv-key=/k", AuthTokenError::NoSignMethod),
            (
                "jwt,priv-key=/k,sign-method=ES512",
                AuthTokenError::SignMethod("ES512".into()),
            ),
            (
                "jwt,priv-key=/k,sign-method=EdDSA",
                AuthTokenError::SignMethod("EdDSA".into()),
            ),
            (
                "jwt,priv-key=/k,sign-method=RS256,ttl=0s",
                AuthTokenError::Ttl("0s".into()),
            ),
            (
                "jwt,priv-key=/k,sign-method=RS256,ttl=5",
                AuthTokenError::Ttl("5".into()),
            ),
            (
                "jwt,sign-method=RS256",
                AuthTokenError::MissingKey {
                    method: SignMethod::RS256,
                    needed: "pub-key, priv-key or both",
                },
            ),
            (
                "jwt,pub-key=/p,sign-method=HS256",
                AuthTokenError::MissingKey {
                    method: SignMethod::HS256,
                    needed: "priv-key (the secret)",
                },
            ),
        ] {
            assert_eq!(value.parse::<AuthToken>(), Err(error), "{value:?}");
        }
        assert_eq!(
            "x".repeat(AUTH_TOKEN_LEN_MAX + 1).parse::<AuthToken>(),
            Err(AuthTokenError::TooLong)
        );
    }
}
