//! Arbitrary bytes as manifest.json: never panics; what decodes re-encodes and decodes equal.
#![no_main]

use kvstore::format::manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = manifest::decode(data) {
        assert_eq!(manifest::decode(&manifest::encode(&m)), Ok(m));
    }
});
