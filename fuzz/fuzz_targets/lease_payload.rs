//! Arbitrary bytes as a lease record's payload (the first byte picks grant or revoke, the rest is
//! the MessagePack map): decoding never panics, and whatever decodes re-encodes canonically to a
//! payload that decodes to the same record, whose lease and TTL are in range and whose keys are
//! strictly increasing.
#![no_main]

use kvstore::format::wal::{RecordType, WalBody, decode_payload, encode_payload};
use kvstore::format::{LEASE_ID_MAX, LEASE_TTL_MS_MAX};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&tag, payload)) = data.split_first() else {
        return;
    };
    // Odd like 5 (grant), even like 6 (revoke).
    let record_type = if tag % 2 == 1 {
        RecordType::LeaseGrant
    } else {
        RecordType::LeaseRevoke
    };
    let Ok(record) = decode_payload(record_type, payload) else {
        return;
    };
    match &record.body {
        WalBody::LeaseGrant { lease, ttl_ms } => {
            assert!((1..=LEASE_ID_MAX).contains(lease));
            assert!((1..=LEASE_TTL_MS_MAX).contains(ttl_ms));
        }
        WalBody::LeaseRevoke { lease, keys } => {
            assert!((1..=LEASE_ID_MAX).contains(lease));
            assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        }
        other => panic!("a lease frame decoded as {other:?}"),
    }
    let again = encode_payload(&record).expect("a decoded lease record re-encodes");
    assert_eq!(decode_payload(record_type, &again), Ok(record));
});
