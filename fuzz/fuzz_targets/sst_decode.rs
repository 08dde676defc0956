//! Arbitrary bytes as an SST and as each of its parts: decoders never panic, and a table that
//! decodes is consistent with its index.
#![no_main]

use kvstore::format::sst::{self, Bloom, Footer, Index};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = sst::decode_table(data) {
        assert!(!table.entries.is_empty());
        // Internal keys strictly increasing: key ascending, a key's versions newest first.
        assert!(table.entries.windows(2).all(|w| sst::internal_less(
            (&w[0].key, w[0].revision),
            (&w[1].key, w[1].revision)
        )));
        for e in &table.entries {
            if let Some(b) = &table.bloom {
                assert!(b.may_contain(&e.key));
            }
        }
    }
    let _ = Footer::decode(data);
    let _ = Index::decode(data);
    let _ = Bloom::decode(data);
    let _ = sst::Block::parse(data.to_vec());
    let _ = sst::decode_entry(data);
});
