//! Unsigned LEB128 varints (`spec/FORMAT.md` § Varints).
//!
//! Invariants:
//! - 7-bit groups, least significant group first; the high bit of a byte means "another byte
//!   follows". At most [`VARINT_LEN_MAX`] bytes.
//! - Exactly one encoding per value: an encoding whose last byte is `0x00` (beyond the first byte)
//!   is overlong and rejected; a tenth byte above `0x01` overflows u64 and is rejected.

use super::error::{FormatError, FormatErrorKind};

/// The longest varint: ceil(64 / 7) bytes.
pub const VARINT_LEN_MAX: usize = 10;
const _: () = assert!(VARINT_LEN_MAX * 7 >= 64 && (VARINT_LEN_MAX - 1) * 7 < 64);

const STRUCTURE: &str = "varint";

/// Appends the varint encoding of `value` to `out`.
pub fn encode(value: u64, out: &mut Vec<u8>) {
    let mut v = value;
    loop {
        let group = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(group);
            return;
        }
        out.push(group | 0x80);
    }
}

/// The number of bytes [`encode`] writes for `value`.
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - value.leading_zeros() as usize;
    bits.div_ceil(7).max(1)
}

/// Decodes one varint from the start of `bytes`; returns the value and the bytes consumed.
pub fn decode(bytes: &[u8]) -> Result<(u64, usize), FormatError> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(VARINT_LEN_MAX) {
        let group = u64::from(b & 0x7f);
        if i == VARINT_LEN_MAX - 1 && b > 0x01 {
            return Err(FormatError::new(
                STRUCTURE,
                "value",
                0,
                FormatErrorKind::VarintOverflow,
            ));
        }
        value |= group << (7 * i);
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return Err(FormatError::new(
                    STRUCTURE,
                    "value",
                    0,
                    FormatErrorKind::OverlongVarint,
                ));
            }
            return Ok((value, i + 1));
        }
    }
    if bytes.len() >= VARINT_LEN_MAX {
        // Ten bytes all with the continuation bit: the tenth is > 0x01, caught above.
        return Err(FormatError::new(
            STRUCTURE,
            "value",
            0,
            FormatErrorKind::VarintOverflow,
        ));
    }
    Err(FormatError::new(
        STRUCTURE,
        "value",
        0,
        FormatErrorKind::Truncated {
            needed: bytes.len() as u64 + 1,
            available: bytes.len() as u64,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn round_trip(v: u64) -> bool {
            let mut out = Vec::new();
            encode(v, &mut out);
            out.len() == encoded_len(v) && decode(&out) == Ok((v, out.len()))
        }

        fn decode_never_panics(bytes: Vec<u8>) -> bool {
            match decode(&bytes) {
                Ok((v, n)) => {
                    let mut out = Vec::new();
                    encode(v, &mut out);
                    bytes.get(..n) == Some(&out[..])
                }
                Err(_) => true,
            }
        }
    }

    #[test]
    fn seed_created_at() {
        let mut out = Vec::new();
        encode(1_690_000_000, &mut out);
        assert_eq!(out, [0x80, 0xb5, 0xed, 0xa5, 0x06]);
    }

    #[test]
    fn edges() {
        assert_eq!(
            decode(&[0x80, 0x00]).unwrap_err().kind,
            FormatErrorKind::OverlongVarint
        );
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(decode(&max), Ok((u64::MAX, 10)));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            decode(&over).unwrap_err().kind,
            FormatErrorKind::VarintOverflow
        );
        assert_eq!(decode(&[0x80]).unwrap_err().kind.name(), "truncated");
        assert_eq!(decode(&[]).unwrap_err().kind.name(), "truncated");
    }
}
