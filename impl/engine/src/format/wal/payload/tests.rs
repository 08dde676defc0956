use super::*;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn lease() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), 1..=LEASE_ID_MAX]
}

pub(crate) fn record() -> impl Strategy<Value = WalRecord> {
    let op = prop_oneof![
        (bytes(8), bytes(16), lease()).prop_map(|(key, value, lease)| BatchOp::Put {
            key,
            value,
            lease
        }),
        bytes(8).prop_map(|key| BatchOp::Delete { key }),
    ];
    let body = prop_oneof![
        (bytes(8), bytes(300), lease()).prop_map(|(key, value, lease)| WalBody::Put {
            key,
            value,
            lease
        }),
        bytes(8).prop_map(|key| WalBody::Delete { key }),
        prop::collection::vec(op, 1..5).prop_map(WalBody::Batch),
        (1..=LEASE_ID_MAX, 1..=LEASE_TTL_MS_MAX)
            .prop_map(|(lease, ttl_ms)| WalBody::LeaseGrant { lease, ttl_ms }),
        (
            1..=LEASE_ID_MAX,
            prop::collection::btree_set(bytes(8), 0..5)
        )
            .prop_map(|(lease, keys)| WalBody::LeaseRevoke {
                lease,
                keys: keys.into_iter().collect(),
            }),
    ];
    let stamp = prop_oneof![Just(0), any::<u64>()];
    (any::<u64>(), any::<u64>(), any::<u64>(), stamp, body).prop_map(
        |(revision, created_at_ms, synced_through, stamp, body)| WalRecord {
            revision,
            created_at_ms,
            synced_through,
            stamp,
            body,
        },
    )
}

proptest! {
    #[test]
    fn round_trip(r in record()) {
        let bytes = encode_payload(&r).unwrap();
        prop_assert_eq!(decode_payload(r.body.record_type(), &bytes).unwrap(), r);
    }

    #[test]
    fn decode_never_panics(t in 1u8..=6, bytes in bytes(96)) {
        if let Some(t) = RecordType::from_u8(t) {
            let _ = decode_payload(t, &bytes);
        }
    }

    #[test]
    fn decode_mutated_never_panics(r in record(), i in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = encode_payload(&r).unwrap();
        let i = i.index(bytes.len());
        bytes[i] = b;
        let _ = decode_payload(r.body.record_type(), &bytes);
    }
}

#[test]
fn the_encoder_refuses_what_the_decoder_would() {
    let record = |body| WalRecord {
        revision: 1,
        created_at_ms: 2,
        synced_through: 0,
        stamp: 0,
        body,
    };
    let refused = [
        WalBody::LeaseGrant {
            lease: 0,
            ttl_ms: 1,
        },
        WalBody::LeaseGrant {
            lease: LEASE_ID_MAX + 1,
            ttl_ms: 1,
        },
        WalBody::LeaseGrant {
            lease: 1,
            ttl_ms: LEASE_TTL_MS_MAX + 1,
        },
        WalBody::LeaseRevoke {
            lease: 1,
            keys: vec![b"b".to_vec(), b"a".to_vec()],
        },
        WalBody::Put {
            key: b"k".to_vec(),
            value: Vec::new(),
            lease: u64::MAX,
        },
    ];
    for body in refused {
        assert!(encode_payload(&record(body.clone())).is_err(), "{body:?}");
    }
}

#[test]
fn a_stamp_is_written_only_when_not_zero_and_zero_is_refused() {
    let record = |stamp| WalRecord {
        revision: 3,
        created_at_ms: 4,
        synced_through: 0,
        stamp,
        body: WalBody::Delete { key: b"k".to_vec() },
    };
    let unstamped = encode_payload(&record(0)).unwrap();
    assert!(!unstamped.windows(5).any(|w| w == b"stamp"));
    let stamped = encode_payload(&record(9)).unwrap();
    assert_eq!(
        decode_payload(RecordType::Delete, &stamped).unwrap(),
        record(9)
    );
    // The map header says one entry more; `stamp` (fixstr) and fixint 9 come last.
    assert_eq!(stamped[0], unstamped[0] + 1);
    assert_eq!(&stamped[stamped.len() - 7..], b"\xa5stamp\x09");
    // A present 0 is refused at its integer's type byte.
    let mut zero = stamped.clone();
    let last = zero.len() - 1;
    zero[last] = 0;
    let e = decode_payload(RecordType::Delete, &zero).unwrap_err();
    assert_eq!((e.kind.name(), e.offset), ("invalid_value", last as u64));
}
