//! Pseudo-random bytes for the tests: one xorshift64 generator, so every run feeds the same
//! inputs. The decoders' never-panic checks (`tests/format_vectors.rs`, `tests/peer_format.rs`)
//! include only this file (`#[path = "common/garbage.rs"] mod garbage;`), not the cluster
//! harness of `mod.rs`; the cluster tests reach it as `common::garbage`.
#![allow(dead_code)]

/// `len` bytes of the xorshift64 sequence after `x`, advancing `x`.
fn xorshift_bytes(len: usize, x: &mut u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            *x as u8
        })
        .collect()
}

/// `count` byte strings, each shorter than `len_max` bytes, the same on every run.
pub fn garbage(count: usize, len_max: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..count).map(move |_| {
        let len = (x % len_max) as usize;
        xorshift_bytes(len, &mut x)
    })
}

/// `len` bytes that do not compress, different for every nonzero `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    xorshift_bytes(len, &mut x)
}
