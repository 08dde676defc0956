//! The test vectors of `spec/FORMAT.md` § 12.6, read from the spec itself and checked both ways,
//! and the decoders' refusal (never a panic) of every truncation and corruption of them.

#[path = "common/garbage.rs"]
mod garbage;

use std::collections::{BTreeMap, BTreeSet};

use garbage::garbage;

use kvstore_raft::format::{
    self, FormatError, StatePointer, decode_entry, decode_log_key, decode_state_pointer,
    decode_vote, encode_entry, encode_state_pointer, encode_vote, log_key,
};
use kvstore_raft::{Command, Entry, Membership, Node};
use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};

fn vectors() -> BTreeMap<String, Vec<u8>> {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/FORMAT.md"))
            .expect("spec/FORMAT.md");
    let mut vectors = BTreeMap::new();
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("raft-vector ") {
            let hex_line = lines.next().expect("bytes after the name");
            let bytes = hex::decode(hex_line.replace(' ', "")).expect("hex");
            vectors.insert(name.to_owned(), bytes);
        }
    }
    vectors
}

fn log_id(term: u64, node: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

#[test]
fn spec_vectors_decode_and_encode_both_ways() {
    let v = vectors();
    assert_eq!(v.len(), 6, "every vector of § 12.6: {:?}", v.keys());

    assert_eq!(log_key(7).to_vec(), v["log-key-7"]);
    assert_eq!(decode_log_key(&v["log-key-7"]), Ok(7));

    let put = Entry {
        log_id: log_id(2, 1, 7),
        payload: EntryPayload::Normal(Command::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            lease: 0,
        }),
    };
    assert_eq!(encode_entry(&put), v["entry-put"]);
    let decoded = decode_entry(&v["entry-put"]).expect("decode");
    assert_eq!(decoded.log_id, put.log_id);
    assert!(
        matches!(decoded.payload, EntryPayload::Normal(ref c) if *c == Command::Put {
        key: b"k".to_vec(), value: b"v".to_vec(), lease: 0 })
    );

    let blank = Entry {
        log_id: log_id(1, 1, 1),
        payload: EntryPayload::Blank,
    };
    assert_eq!(encode_entry(&blank), v["entry-blank"]);
    let decoded = decode_entry(&v["entry-blank"]).expect("decode");
    assert_eq!(decoded.log_id, blank.log_id);
    assert!(matches!(decoded.payload, EntryPayload::Blank));

    let node = Node {
        addr: "http://a:1".to_owned(),
        name: "n1".to_owned(),
        client_urls: vec!["http://a:2".to_owned()],
    };
    let membership = Entry {
        log_id: log_id(1, 1, 3),
        payload: EntryPayload::Membership(Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, node)]),
        )),
    };
    assert_eq!(encode_entry(&membership), v["entry-membership"]);
    let decoded = decode_entry(&v["entry-membership"]).expect("decode");
    assert_eq!(decoded.log_id, membership.log_id);
    assert!(matches!((&decoded.payload, &membership.payload),
        (EntryPayload::Membership(a), EntryPayload::Membership(b)) if a == b));

    let vote = Vote::new_committed(3, 2);
    assert_eq!(encode_vote(&vote), v["vote"]);
    assert_eq!(decode_vote(&v["vote"]), Ok(vote));

    assert_eq!(
        encode_state_pointer(&StatePointer::default()),
        v["state-pointer-gen-0"]
    );
    assert_eq!(
        decode_state_pointer(&v["state-pointer-gen-0"]),
        Ok(StatePointer::default())
    );
}

#[test]
fn decoders_refuse_damage_without_panicking() {
    let v = vectors();
    // Every strict prefix of an entry either fails or (cut between fields) decodes to less:
    // never a panic, and never the same entry.
    let entry = &v["entry-put"];
    for len in 0..entry.len() {
        if let Ok(decoded) = decode_entry(&entry[..len]) {
            assert_ne!(encode_entry(&decoded), *entry);
        }
    }
    // Every single-byte corruption of the pointer is refused (magic, version, reserved,
    // length, CRC).
    let pointer = encode_state_pointer(&StatePointer {
        generation: 3,
        installed: None,
    });
    for at in 0..pointer.len() {
        let mut bad = pointer.clone();
        bad[at] ^= 0x40;
        assert!(
            decode_state_pointer(&bad).is_err(),
            "flip at byte {at} accepted"
        );
    }
    // Missing fields are named.
    assert!(matches!(
        decode_entry(&[]),
        Err(FormatError::Invalid {
            field: "log_id",
            ..
        })
    ));
    assert!(matches!(
        decode_entry(&v["entry-put"][..8]),
        Err(FormatError::Invalid {
            field: "payload",
            ..
        })
    ));
    // A bound of unknown kind.
    let bad_bound = [
        0x0a, 0x06, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01, 0x1a, 0x06, 0x12, 0x04, 0x0a, 0x02, 0x08,
        0x07,
    ];
    assert!(matches!(
        decode_entry(&bad_bound),
        Err(FormatError::Invalid {
            structure: "Bound",
            ..
        })
    ));
    // A node over the limits every writer keeps: refused, naming the field.
    let long = Node {
        name: "n".repeat(kvstore_raft::member::MEMBER_TEXT_LEN_MAX + 1),
        ..Node::new("http://a:1")
    };
    let over = Entry {
        log_id: log_id(1, 1, 3),
        payload: EntryPayload::Membership(Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, long)]),
        )),
    };
    assert!(matches!(
        decode_entry(&encode_entry(&over)),
        Err(FormatError::Invalid {
            structure: "Node",
            field: "name",
            ..
        })
    ));
    // Over the limit: refused before decoding.
    let huge = vec![0u8; format::VALUE_LEN_MAX + 1];
    assert!(matches!(
        decode_entry(&huge),
        Err(FormatError::TooLong { .. })
    ));
    // Pseudo-random garbage never panics.
    for bytes in garbage(2000, 64) {
        let _ = decode_entry(&bytes);
        let _ = decode_vote(&bytes);
        let _ = decode_state_pointer(&bytes);
    }
}
