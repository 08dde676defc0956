//! Arbitrary bytes as a backup metadata file (`spec/FORMAT.md` § 7): decoding never panics, and
//! metadata that decodes re-encodes to the same bytes.
#![no_main]

use kvstore::format::backup::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = decode(data) {
        assert_eq!(encode(&meta), data);
    }
});
