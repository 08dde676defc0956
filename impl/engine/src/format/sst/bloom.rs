//! The bloom filter block:
//!
//! ```text
//! probes u8 | bits_len u32 BE | bits (bits_len bytes) | crc32c u32 BE over the preceding bytes
//! ```
//!
//! Hash: `h = mix64(fnv1a64(key))` where `fnv1a64` is FNV-1a 64 (offset basis
//! 0xcbf29ce484222325, prime 0x100000001b3) and `mix64` is the SplitMix64 finalizer
//! (`z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31`,
//! wrapping). Double hashing: `h1 = h & 0xffffffff`, `h2 = (h >> 32) | 1`; probe `i` in
//! `0..probes` sets bit `(h1 + i * h2) mod (8 * bits_len)` (u64 arithmetic), bit `b` being bit
//! `b % 8` (LSB first) of byte `b / 8`.
//!
//! Invariants: `1 <= probes <= BLOOM_PROBES_MAX`, `1 <= bits_len <= BLOOM_BITS_LEN_MAX`.

use crate::format::checksum::crc32c;
use crate::format::{FormatError, FormatErrorKind, Reader};

/// Bits per key the builder uses by default (about 1% false positives).
pub const BLOOM_BITS_PER_KEY_DEFAULT: u32 = 10;
/// Most probes a filter may declare.
pub const BLOOM_PROBES_MAX: u8 = 30;
/// Largest bit array (bytes): 512 MiB, enough for ~400M keys at 10 bits each.
pub const BLOOM_BITS_LEN_MAX: usize = 512 * 1024 * 1024;
/// Smallest bit array the builder writes (bytes).
pub const BLOOM_BITS_LEN_MIN: usize = 8;
const _: () = assert!(BLOOM_BITS_LEN_MIN >= 1 && BLOOM_BITS_LEN_MAX <= u32::MAX as usize);

const STRUCTURE: &str = "sst bloom";

/// The bloom hash of `key` (see module doc).
pub fn bloom_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h;
    z ^= z >> 30;
    z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 27;
    z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Probes for `bits_per_key`: round(bits_per_key * ln 2), clamped to 1..=BLOOM_PROBES_MAX.
pub fn probes_for(bits_per_key: u32) -> u8 {
    let k = (u64::from(bits_per_key) * 69 + 50) / 100;
    k.clamp(1, u64::from(BLOOM_PROBES_MAX)) as u8
}

/// The bits probe `i` in `0..probes` tests: `(h1 + i * h2) mod bit_count` (§ 4.4), computed as a
/// running sum reduced by one conditional subtraction, with at most two divisions per key instead
/// of one per probe (the second only if a second probe is asked for: a miss often stops at the
/// first). Equal to the formula: `h1, h2 < 2^32` and `i < 256`, so `h1 + i * h2` never wraps.
/// REQUIRES: `bit_count > 0`.
fn bit_positions(hash: u64, probes: u8, bit_count: u64) -> impl Iterator<Item = u64> {
    let h1 = hash & 0xffff_ffff;
    let h2 = (hash >> 32) | 1;
    let mut position = h1 % bit_count;
    let mut step = None;
    (0..probes).map(move |i| {
        if i > 0 {
            // Both terms are below bit_count, so one subtraction reduces the sum.
            position += *step.get_or_insert_with(|| h2 % bit_count);
            if position >= bit_count {
                position -= bit_count;
            }
        }
        position
    })
}

/// A decoded filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    probes: u8,
    bits: Vec<u8>,
}

impl Bloom {
    /// Decodes a bloom block (the whole slice), checking its CRC32C.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let mut r = Reader::new(bytes, STRUCTURE);
        let probes = r.u8("probes")?;
        if probes == 0 || probes > BLOOM_PROBES_MAX {
            return Err(r.err(
                "probes",
                0,
                FormatErrorKind::InvalidValue {
                    reason: "probes must be 1..=30",
                },
            ));
        }
        let bits_len = r.u32("bits_len")? as usize;
        if bits_len == 0 || bits_len > BLOOM_BITS_LEN_MAX {
            let kind = FormatErrorKind::too_large(bits_len, BLOOM_BITS_LEN_MAX);
            return Err(r.err("bits_len", 1, kind));
        }
        let bits = r.take(bits_len, "bits")?;
        let covered = r.pos();
        let stored = r.u32("crc32c")?;
        r.finish("crc32c")?;
        let actual = crc32c(bytes.get(..covered).unwrap_or_default());
        if actual != stored {
            return Err(r.err(
                "crc32c",
                covered,
                FormatErrorKind::BadChecksum {
                    expected: stored,
                    actual,
                },
            ));
        }
        Ok(Self {
            probes,
            bits: bits.to_vec(),
        })
    }

    /// The encoded block.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bits.len() + 9);
        out.push(self.probes);
        out.extend_from_slice(&(self.bits.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.bits);
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// False if `key` is certainly absent; true if it may be present.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let bit_count = self.bits.len() as u64 * 8;
        if bit_count == 0 {
            return true;
        }
        bit_positions(bloom_hash(key), self.probes, bit_count).all(|b| {
            self.bits
                .get((b / 8) as usize)
                .is_some_and(|byte| byte & (1 << (b % 8)) != 0)
        })
    }

    /// The number of probes.
    pub fn probes(&self) -> u8 {
        self.probes
    }

    /// The bit array length in bytes.
    pub fn bits_len(&self) -> usize {
        self.bits.len()
    }
}

/// Collects key hashes, then builds a [`Bloom`].
#[derive(Debug, Clone, Default)]
pub struct BloomBuilder {
    hashes: Vec<u64>,
}

impl BloomBuilder {
    /// Adds a key.
    pub fn add(&mut self, key: &[u8]) {
        self.hashes.push(bloom_hash(key));
    }

    /// Builds the filter: `bits_len = max(BLOOM_BITS_LEN_MIN, ceil(keys * bits_per_key / 8))`.
    pub fn build(&self, bits_per_key: u32) -> Bloom {
        let bits_wanted = (self.hashes.len() as u64).saturating_mul(u64::from(bits_per_key));
        let bits_len =
            (bits_wanted.div_ceil(8) as usize).clamp(BLOOM_BITS_LEN_MIN, BLOOM_BITS_LEN_MAX);
        let mut bits = vec![0u8; bits_len];
        let probes = probes_for(bits_per_key);
        for &h in &self.hashes {
            for b in bit_positions(h, probes, bits_len as u64 * 8) {
                if let Some(byte) = bits.get_mut((b / 8) as usize) {
                    *byte |= 1 << (b % 8);
                }
            }
        }
        Bloom { probes, bits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    quickcheck! {
        fn no_false_negatives(keys: Vec<Vec<u8>>) -> bool {
            let mut b = BloomBuilder::default();
            keys.iter().for_each(|k| b.add(k));
            let bloom = Bloom::decode(&b.build(10).encode()).unwrap();
            keys.iter().all(|k| bloom.may_contain(k))
        }

        fn decode_never_panics(bytes: Vec<u8>) -> bool {
            let _ = Bloom::decode(&bytes);
            true
        }
    }

    #[test]
    fn known_hash_and_false_positive_rate() {
        assert_eq!(probes_for(10), 7);
        assert_eq!(bloom_hash(b""), {
            let mut z: u64 = 0xcbf2_9ce4_8422_2325;
            z ^= z >> 30;
            z = z.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z ^= z >> 27;
            z = z.wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        });
        let mut b = BloomBuilder::default();
        (0..10_000u32).for_each(|i| b.add(&i.to_be_bytes()));
        let bloom = b.build(10);
        let fp = (10_000..110_000u32)
            .filter(|i| bloom.may_contain(&i.to_be_bytes()))
            .count();
        assert!(fp < 2_000, "false positives {fp} / 100000");
    }

    /// The stepped probe positions are the spec's `(h1 + i * h2) mod m`, for every bit count
    /// up to 300 (small ones make the running sum land on `m` exactly) and the largest one.
    #[test]
    fn probe_positions_equal_the_spec_formula() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let bit_counts = (1..=300).chain([8 * BLOOM_BITS_LEN_MAX as u64]);
        for m in bit_counts {
            for _ in 0..32 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (h1, h2) = (state & 0xffff_ffff, (state >> 32) | 1);
                let spec = (0..u64::from(BLOOM_PROBES_MAX)).map(|i| (h1 + i * h2) % m);
                assert!(
                    bit_positions(state, BLOOM_PROBES_MAX, m).eq(spec),
                    "{state:#x} {m}"
                );
            }
        }
    }
}
