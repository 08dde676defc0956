//! Arbitrary bytes as one WAL record and as a WAL segment: decoding and replay classification
//! never panic, and whatever decodes re-encodes to the same bytes.
#![no_main]

use kvstore::format::wal::{self, ReplayEnd, Segment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((record, n)) = wal::decode_record(data) {
        // Canonical encodings round-trip exactly; non-canonical MessagePack widths still decode
        // to the same record.
        let again = wal::encode_record(&record).expect("decoded record re-encodes");
        assert_eq!(wal::decode_record(&again).map(|(r, _)| r), Ok(record));
        assert!(n <= data.len());
    }
    let split = data.len() / 2;
    let (a, b) = data.split_at(split);
    let segments = [
        Segment {
            base_offset: 0,
            bytes: a,
        },
        Segment {
            base_offset: split as u64,
            bytes: b,
        },
    ];
    let out = wal::replay(&segments, 0);
    let mut last = None;
    for (offset, _) in &out.records {
        assert!(last.is_none_or(|l| l < *offset));
        last = Some(*offset);
    }
    match out.end {
        ReplayEnd::Clean { offset } => assert_eq!(offset, data.len() as u64),
        ReplayEnd::TornTail { offset, .. } | ReplayEnd::Corrupt { offset, .. } => {
            assert!(offset < data.len() as u64 || offset == split as u64)
        }
    }
});
