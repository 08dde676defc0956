//! The seed's workload data: keys `k_0000000`.., 256-byte values from a seeded PRNG, a seeded
//! shuffle, and latency percentiles.
//!
//! Invariants:
//! - `value(seed, i)` is a pure function: a reader regenerates the expected value instead of
//!   keeping N values in memory (which would distort the peak RSS figure).
//! - Keys sort in index order (fixed width), so "key order" is index order.

/// Width of the decimal part of a key: keys are `k_` plus 7 digits, 9 bytes.
pub const KEY_DIGITS: usize = 7;
/// Largest N the key format can name.
pub const N_MAX: u64 = 10_000_000;
/// Bytes of every value.
pub const VALUE_LEN_BYTES: usize = 256;
/// Entries per atomic batch.
pub const BATCH_ENTRIES: usize = 1000;
/// The prefix every key starts with; the scan phase streams it.
pub const KEY_PREFIX: &[u8] = b"k_";
/// Length of every key.
pub const KEY_LEN_BYTES: usize = KEY_PREFIX.len() + KEY_DIGITS;

const _: () = assert!(N_MAX <= 10u64.pow(KEY_DIGITS as u32));

/// The key of entry `i` (`k_` + 7 zero-padded digits). REQUIRES: `i < N_MAX`.
pub fn key(i: u64) -> [u8; KEY_LEN_BYTES] {
    debug_assert!(i < N_MAX);
    let mut out = [b'0'; KEY_LEN_BYTES];
    out[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX);
    let mut rest = i;
    for slot in out[KEY_PREFIX.len()..].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    out
}

/// SplitMix64: a tiny, well-mixed, seeded PRNG (Steele, Lea, Flood 2014).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value uniform in `0..bound`. REQUIRES: `bound > 0`.
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        // Multiply-shift: bias below 2^-32 for the bounds used here (<= N_MAX).
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// The value of entry `i` under `seed`: 256 pseudo-random bytes.
pub fn value(seed: u64, i: u64) -> [u8; VALUE_LEN_BYTES] {
    let mut rng = SplitMix64::new(seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut out = [0u8; VALUE_LEN_BYTES];
    for chunk in out.chunks_exact_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    out
}

/// `0..n` in an order shuffled by `seed` (Fisher-Yates).
pub fn shuffled(n: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut rng = SplitMix64::new(seed.rotate_left(17) ^ 0x5EED);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Bytes of user data in `n` entries (keys plus values): the denominator of write amplification.
pub fn user_bytes(n: u64) -> u64 {
    n * (KEY_LEN_BYTES + VALUE_LEN_BYTES) as u64
}

/// Thread `index`'s share of `total` operations among `threads`: the first `total % threads`
/// threads do one more. REQUIRES: `threads > 0`.
pub fn thread_share(total: u64, threads: u64, index: u64) -> u64 {
    debug_assert!(threads > 0);
    total / threads + u64::from(index < total % threads)
}

/// Latency samples in nanoseconds, summarised as percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    samples_ns: Vec<u64>,
}

impl Latencies {
    /// An empty set with room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Latencies {
            samples_ns: Vec::with_capacity(n),
        }
    }

    /// Records one sample.
    pub fn record(&mut self, elapsed: std::time::Duration) {
        self.samples_ns
            .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Latencies) {
        self.samples_ns.extend(other.samples_ns);
    }

    /// The `q`-quantile (0.0..=1.0) in microseconds, nearest rank; 0 when empty.
    pub fn percentile_us(&mut self, q: f64) -> f64 {
        if self.samples_ns.is_empty() {
            return 0.0;
        }
        self.samples_ns.sort_unstable();
        let last = self.samples_ns.len() - 1;
        let rank = ((q * last as f64).round() as usize).min(last);
        self.samples_ns[rank] as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fixed_width_and_sort_in_index_order() {
        assert_eq!(&key(0), b"k_0000000");
        assert_eq!(&key(1_234_567), b"k_1234567");
        assert!(key(9) < key(10));
    }

    #[test]
    fn values_are_deterministic_and_differ_by_index() {
        assert_eq!(value(7, 3), value(7, 3));
        assert_ne!(value(7, 3), value(7, 4));
        assert_ne!(value(7, 3), value(8, 3));
    }

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let a = shuffled(1000, 1);
        assert_eq!(a, shuffled(1000, 1));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(a, sorted);
    }

    #[test]
    fn shares_add_up_to_the_total() {
        for (total, threads) in [(10, 1), (10, 3), (2, 4), (100_001, 4)] {
            let sum: u64 = (0..threads).map(|i| thread_share(total, threads, i)).sum();
            assert_eq!(sum, total);
        }
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::with_capacity(100);
        for us in 1..=100u64 {
            l.record(std::time::Duration::from_micros(us));
        }
        assert_eq!(l.percentile_us(0.5), 51.0);
        assert_eq!(l.percentile_us(0.99), 99.0);
        assert_eq!(Latencies::default().percentile_us(0.5), 0.0);
    }
}
