//! YCSB's request distributions, written from the published algorithm: [`Zipfian`] (Gray et
//! al., "Quickly Generating Billion-Record Synthetic Databases", SIGMOD 1994, as YCSB's
//! `ZipfianGenerator` uses it), [`ScrambledZipfian`] (YCSB's default: popular items spread
//! over the key space by an FNV hash) and [`SkewedLatest`] (workload D: the newest items most
//! popular).
//!
//! Invariants:
//! - [`Zipfian::next`] returns a value in `0..n`: item 0 with probability exactly 1/zeta(n, theta),
//!   item 1 with 0.5^theta/zeta(n, theta), the rest by Gray's approximation of the tail.
//! - Every draw takes one `f64` from the caller's generator, so a seed replays a run.
//! - zeta(n, theta) is recomputed incrementally when `n` grows (as YCSB does), from scratch if
//!   it shrinks.

use rand::Rng;

/// YCSB's zipfian constant (`zipfianconstant`, default of every core workload).
pub const THETA: f64 = 0.99;

/// Items the scrambled generator draws from before hashing: YCSB's `ScrambledZipfianGenerator`
/// draws from 10^10 items, so the popularity of a key does not depend on the record count.
pub const SCRAMBLED_ITEMS: u64 = 10_000_000_000;

/// zeta([`SCRAMBLED_ITEMS`], [`THETA`]): YCSB's precomputed `ZETAN` (summing 10^10 terms at
/// start-up would take a minute); the tests check it against the Euler-Maclaurin expansion.
pub const SCRAMBLED_ZETA: f64 = 26.469_028_201_783_02;

/// YCSB's `FNVhash64`: FNV-1 over the 8 little-endian bytes of `value`, made non-negative as
/// Java's `Math.abs` of the signed result does (`unsigned_abs`, which differs from Java only for
/// `i64::MIN`, a 1 in 2^64 case). YCSB names keys and scrambles zipfian draws with it.
pub fn fnv_hash64(value: u64) -> u64 {
    const OFFSET_BASIS: u64 = 0xCBF2_9CE4_8422_2325;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET_BASIS;
    for byte in value.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    (hash as i64).unsigned_abs()
}

/// zeta(n, theta) = sum over i in 1..=n of 1 / i^theta, continued from `zeta(start, theta) =
/// partial`. REQUIRES: `start <= n`.
fn zeta_from(start: u64, partial: f64, n: u64, theta: f64) -> f64 {
    debug_assert!(start <= n);
    (start + 1..=n).fold(partial, |sum, i| sum + 1.0 / (i as f64).powf(theta))
}

/// zeta(n, theta), summed.
pub fn zeta(n: u64, theta: f64) -> f64 {
    zeta_from(0, 0.0, n, theta)
}

/// Zipfian over `0..n`, item 0 the most popular (Gray et al.'s generator).
#[derive(Clone, Debug)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    /// 1 / (1 - theta).
    alpha: f64,
    /// zeta(2, theta).
    zeta2: f64,
    /// zeta(n, theta).
    zetan: f64,
    /// (1 - (2/n)^(1 - theta)) / (1 - zeta2 / zetan).
    eta: f64,
}

impl Zipfian {
    /// Over `0..n` with constant `theta`, zeta(n, theta) summed here. REQUIRES: `n >= 2`,
    /// `0 < theta < 1`.
    pub fn new(n: u64, theta: f64) -> Self {
        Self::with_zeta(n, theta, zeta(n, theta))
    }

    /// Over `0..n` with zeta(n, theta) given (`zetan`). REQUIRES: as [`Zipfian::new`].
    pub fn with_zeta(n: u64, theta: f64, zetan: f64) -> Self {
        debug_assert!(n >= 2 && theta > 0.0 && theta < 1.0);
        let zeta2 = zeta(2, theta);
        let mut z = Zipfian {
            n,
            theta,
            alpha: 1.0 / (1.0 - theta),
            zeta2,
            zetan,
            eta: 0.0,
        };
        z.eta = z.eta_for_n();
        z
    }

    /// Gray's eta for the current `n` (YCSB keeps the first item count's here, a slip that only
    /// matters when the count grows; this uses the current one).
    fn eta_for_n(&self) -> f64 {
        (1.0 - (2.0 / self.n as f64).powf(1.0 - self.theta)) / (1.0 - self.zeta2 / self.zetan)
    }

    /// Moves to `0..n`: zeta continued from the current count when `n` grows, summed again
    /// when it shrinks. REQUIRES: `n >= 2`.
    pub fn resize(&mut self, n: u64) {
        debug_assert!(n >= 2);
        if n == self.n {
            return;
        }
        self.zetan = if n > self.n {
            zeta_from(self.n, self.zetan, n, self.theta)
        } else {
            zeta(n, self.theta)
        };
        self.n = n;
        self.eta = self.eta_for_n();
    }

    /// One draw in `0..n`.
    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let x = self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        // The float can round up to n at u -> 1.
        (x as u64).min(self.n - 1)
    }
}

/// YCSB's `ScrambledZipfianGenerator`: a zipfian draw over [`SCRAMBLED_ITEMS`], hashed into
/// `0..n`, so the popular keys are scattered instead of clustered at the low key numbers.
#[derive(Clone, Debug)]
pub struct ScrambledZipfian {
    n: u64,
    zipfian: Zipfian,
}

impl ScrambledZipfian {
    /// Over `0..n`. REQUIRES: `n >= 1`.
    pub fn new(n: u64) -> Self {
        debug_assert!(n >= 1);
        ScrambledZipfian {
            n,
            zipfian: Zipfian::with_zeta(SCRAMBLED_ITEMS, THETA, SCRAMBLED_ZETA),
        }
    }

    /// One draw in `0..n`.
    pub fn next(&self, rng: &mut impl Rng) -> u64 {
        fnv_hash64(self.zipfian.next(rng)) % self.n
    }
}

/// YCSB's `SkewedLatestGenerator`: among `0..n` items, the newest (`n - 1`) is the most popular,
/// popularity falling off zipfian with age. `n` grows as records are inserted.
#[derive(Clone, Debug)]
pub struct SkewedLatest {
    zipfian: Zipfian,
}

impl SkewedLatest {
    /// Over `0..n`. REQUIRES: `n >= 2`.
    pub fn new(n: u64) -> Self {
        SkewedLatest {
            zipfian: Zipfian::new(n, THETA),
        }
    }

    /// One draw in `0..n`, the zipfian resized to `n` first. REQUIRES: `n >= 2`.
    pub fn next(&mut self, n: u64, rng: &mut impl Rng) -> u64 {
        self.zipfian.resize(n);
        n - 1 - self.zipfian.next(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const DRAWS: usize = 1_000_000;

    /// Frequency of each item of `0..n` in `DRAWS` draws of `draw`.
    fn frequencies(n: u64, mut draw: impl FnMut(&mut ChaCha8Rng) -> u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        let mut counts = vec![0u64; n as usize];
        for _ in 0..DRAWS {
            let item = draw(&mut rng);
            assert!(item < n, "{item} drawn from 0..{n}");
            counts[item as usize] += 1;
        }
        counts.iter().map(|&c| c as f64 / DRAWS as f64).collect()
    }

    #[test]
    fn zipfian_head_matches_one_over_zeta() {
        let n = 1000;
        let z = Zipfian::new(n, THETA);
        let freq = frequencies(n, |rng| z.next(rng));
        let zetan = zeta(n, THETA);
        // Items 0 and 1 are exact in Gray's method; with 10^6 draws the standard error of a
        // ~13 % frequency is 0.03 percentage points, so 2 % relative is about 8 sigma.
        for (item, expected) in [(0, 1.0 / zetan), (1, 0.5f64.powf(THETA) / zetan)] {
            let got = freq[item];
            assert!(
                (got - expected).abs() / expected < 0.02,
                "item {item}: frequency {got}, theory {expected}"
            );
        }
        // The tail is Gray's approximation: the first ten items still outweigh the last half.
        let head: f64 = freq[..10].iter().sum();
        let tail: f64 = freq[500..].iter().sum();
        assert!(head > tail, "head {head}, tail {tail}");
    }

    #[test]
    fn resizing_continues_zeta_and_moves_the_head() {
        let mut z = Zipfian::new(100, THETA);
        z.resize(1000);
        assert!((z.zetan - zeta(1000, THETA)).abs() < 1e-9);
        z.resize(500);
        assert!((z.zetan - zeta(500, THETA)).abs() < 1e-9);
        let mut latest = SkewedLatest::new(100);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let newest = (0..10_000)
            .filter(|_| latest.next(1000, &mut rng) == 999)
            .count() as f64
            / 10_000.0;
        let expected = 1.0 / zeta(1000, THETA);
        assert!((newest - expected).abs() < 0.02, "{newest} vs {expected}");
    }

    #[test]
    fn scrambled_zeta_constant_is_zeta_of_ten_billion() {
        // Euler-Maclaurin for zeta(n, s) with s = 1 - e near 1: n^e / e + zeta(s) + n^-s / 2,
        // with the Riemann zeta(s) = 1/(s - 1) + gamma - gamma1 (s - 1) + O(e^2) (Stieltjes
        // constants gamma = 0.5772..., gamma1 = -0.0728...), s - 1 = -e.
        let e = 1.0 - THETA;
        let n = SCRAMBLED_ITEMS as f64;
        let riemann = -1.0 / e + 0.577_215_664_901_532_9 - 0.072_815_845_483_676_7 * e;
        let approx = n.powf(e) / e + riemann + n.powf(-THETA) / 2.0;
        assert!((approx - SCRAMBLED_ZETA).abs() < 1e-3, "{approx}");
        // And the expansion agrees with the sum where the sum is cheap.
        let m = 1_000_000u64;
        let small = (m as f64).powf(e) / e + riemann + (m as f64).powf(-THETA) / 2.0;
        assert!((small - zeta(m, THETA)).abs() < 1e-3, "{small}");
    }

    #[test]
    fn scrambled_popular_items_are_the_hashes_of_the_zipfian_head() {
        let n = 10_000;
        let z = ScrambledZipfian::new(n);
        let freq = frequencies(n, |rng| z.next(rng));
        let top = fnv_hash64(0) % n;
        let expected = 1.0 / SCRAMBLED_ZETA;
        assert!(
            (freq[top as usize] - expected).abs() / expected < 0.03,
            "item {top}: {} vs {expected}",
            freq[top as usize]
        );
        let most = freq.iter().cloned().fold(0.0, f64::max);
        assert_eq!(most, freq[top as usize]);
    }

    #[test]
    fn fnv_hash_matches_ycsb() {
        // YCSB's first loaded key is `user6284781860667377211`: the hash of record 0.
        assert_eq!(fnv_hash64(0), 6_284_781_860_667_377_211);
        assert_eq!(fnv_hash64(1), 8_517_097_267_634_966_620);
        assert_eq!(fnv_hash64(12_345), 1_792_800_413_050_876_852);
    }
}
