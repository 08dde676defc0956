//! [`splitmix64`]: the campaigns' seeded generator (no dependency, stable across versions, so a
//! printed seed replays the same workload forever).

/// Advances `state` and returns the next 64 random bits (splitmix64, Steele et al. 2014).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in `0..n` (0 when `n` is 0) drawn from `state`.
pub fn below(state: &mut u64, n: u64) -> u64 {
    splitmix64(state).checked_rem(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_is_stable() {
        let mut s = 0;
        // Reference values of splitmix64 seeded with 0.
        assert_eq!(splitmix64(&mut s), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(&mut s), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(below(&mut s, 0), 0);
    }
}
