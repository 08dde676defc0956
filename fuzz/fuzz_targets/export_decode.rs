//! Arbitrary bytes as an export stream (`spec/FORMAT.md` § 6): decoding never panics, and a
//! stream that decodes re-encodes canonically to one that decodes to the same contents.
#![no_main]

use kvstore::format::export::{decode_stream, encode_stream};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(contents) = decode_stream(data) {
        let again = encode_stream(&contents);
        assert_eq!(decode_stream(&again), Ok(contents));
    }
});
