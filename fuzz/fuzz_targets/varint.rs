//! Arbitrary bytes as a varint: never panics; a decoded value re-encodes to the bytes consumed.
#![no_main]

use kvstore::format::varint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((v, n)) = varint::decode(data) {
        let mut out = Vec::new();
        varint::encode(v, &mut out);
        assert_eq!(data.get(..n), Some(&out[..]));
        assert_eq!(n, varint::encoded_len(v));
    }
});
