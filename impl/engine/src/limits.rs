//! Named limits on what a caller may store: every key and value length is bounded.
//!
//! Invariants:
//! - Every key the engine accepts has `KEY_LEN_MIN <= len <= KEY_LEN_MAX` bytes, every value
//!   `len <= VALUE_LEN_MAX` bytes; [`check_key`] and [`check_value`] are the only gates.
//! - The limits fit the on-disk length fields (`u32`), checked at compile time below.
//!
//! The maxima are the byte format's own ([`crate::format::KEY_LEN_MAX`],
//! [`crate::format::VALUE_LEN_MAX`]), re-exported here: there is one definition of each.

use crate::error::{Error, Result};

/// Smallest key length in bytes: the empty key is rejected so that "no key" never needs a
/// sentinel and the empty prefix unambiguously means "every key".
pub const KEY_LEN_MIN: usize = 1;

/// Largest key length in bytes (64 KiB) and largest value length in bytes (64 MiB): the format's
/// limits, so that everything the engine accepts can be written.
pub use crate::format::{KEY_LEN_MAX, VALUE_LEN_MAX};

const _: () = assert!(KEY_LEN_MIN <= KEY_LEN_MAX);
const _: () = assert!(KEY_LEN_MAX < VALUE_LEN_MAX);
const _: () = assert!(VALUE_LEN_MAX <= u32::MAX as usize);

/// Rejects a key outside `KEY_LEN_MIN..=KEY_LEN_MAX` with [`Error::InvalidArgument`].
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.len() < KEY_LEN_MIN {
        return Err(Error::InvalidArgument("key is empty".to_owned()));
    }
    if key.len() > KEY_LEN_MAX {
        return Err(Error::InvalidArgument(format!(
            "key is {} bytes, more than KEY_LEN_MAX = {KEY_LEN_MAX}",
            key.len()
        )));
    }
    Ok(())
}

/// Rejects a value longer than `VALUE_LEN_MAX` with [`Error::InvalidArgument`].
pub fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > VALUE_LEN_MAX {
        return Err(Error::InvalidArgument(format!(
            "value is {} bytes, more than VALUE_LEN_MAX = {VALUE_LEN_MAX}",
            value.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bounds_are_inclusive() {
        assert!(check_key(b"").is_err());
        assert!(check_key(b"a").is_ok());
        assert!(check_key(&vec![0; KEY_LEN_MAX]).is_ok());
        assert!(matches!(
            check_key(&vec![0; KEY_LEN_MAX + 1]),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn value_bounds_are_inclusive() {
        assert!(check_value(b"").is_ok());
        assert!(check_value(&vec![0; VALUE_LEN_MAX]).is_ok());
        assert!(check_value(&vec![0; VALUE_LEN_MAX + 1]).is_err());
    }
}
