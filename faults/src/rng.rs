//! The seeded PRNG helpers every random choice goes through.
//!
//! Invariants:
//! - One `ChaCha8Rng` per simulated disk, seeded from the user's seed; nothing else is random.
//! - These helpers never panic: an empty range yields 0, a probability outside `0..=1` is clamped.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The PRNG for `seed`.
pub(crate) fn seeded(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A number in `0..n` (0 when `n == 0`). The modulo bias is irrelevant for fault injection.
pub(crate) fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

/// True with probability `p`. Draws nothing when `p <= 0`, so disabled faults cost no draws.
pub(crate) fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p <= 0.0 {
        return false;
    }
    // 53 random bits as a uniform float in [0, 1).
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    unit < p
}
