//! The peer service's messages (`spec/FORMAT.md` § 12.7): every conversion round-trips, and
//! the decoders refuse what is damaged, incomplete or over a limit with a typed
//! [`FormatError`], never a panic.

#[path = "common/garbage.rs"]
mod garbage;

use std::time::Duration;

use garbage::garbage;

use kvstore::Versioned;
use kvstore::txn::{OpResult, TxnResponse};
use kvstore_raft::format::peer::{
    self, APPEND_ENTRIES_MAX, PEER_MESSAGE_LEN_MAX, Relayed, RemoteFailure, SNAPSHOT_LEN_MAX,
    decode_append_entries, decode_propose_reply, encode_append_entries, encode_propose_reply,
};
use kvstore_raft::format::peer_members::{
    decode_change_members_reply, decode_change_members_request, encode_change_members_reply,
    encode_change_members_request,
};
use kvstore_raft::format::peer_proto::{self as p, FailureKind};
use kvstore_raft::format::{FormatError, proto};
use kvstore_raft::{
    Command, Entry, MemberChange, MemberRefusal, Node, Rejection, Response, TypeConfig,
};
use openraft::raft::AppendEntriesRequest;
use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
use prost::Message;

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn append_entries() -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(2, 1),
        prev_log_id: Some(log_id(1, 4)),
        entries: vec![
            Entry {
                log_id: log_id(2, 5),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(2, 6),
                payload: EntryPayload::Normal(Command::Put {
                    key: b"k".to_vec(),
                    value: b"v".to_vec(),
                    lease: 3,
                }),
            },
        ],
        leader_commit: Some(log_id(2, 5)),
    }
}

fn version(value: &[u8], revision: u64) -> Versioned {
    Versioned {
        value: value.to_vec(),
        revision,
        created_at_ms: 1_700_000_000_000,
        create_revision: 2,
        version: 3,
        lease: 0,
    }
}

fn responses() -> Vec<Response> {
    vec![
        Response::Empty,
        Response::Put { revision: 9 },
        Response::DeleteRange {
            revision: 10,
            deleted: 2,
        },
        Response::LeaseGranted { id: 7 },
        Response::LeaseRevoked { revision: 11 },
        Response::Compacted { revision: 5 },
        Response::Rejected(Rejection::LeaseNotFound { id: 1 }),
        Response::Rejected(Rejection::LeaseExists { id: 2 }),
        Response::Rejected(Rejection::Compacted {
            requested: 3,
            horizon: 4,
        }),
        Response::Rejected(Rejection::FutureRevision {
            requested: 30,
            current: 12,
        }),
        Response::Rejected(Rejection::InvalidArgument("key too long".to_owned())),
        Response::Txn(TxnResponse {
            succeeded: true,
            revision: 12,
            results: vec![
                OpResult::Put {
                    prev: Some(version(b"old", 8)),
                },
                OpResult::Put { prev: None },
                OpResult::DeleteRange {
                    deleted: vec![(b"d".to_vec(), version(b"x", 7))],
                },
                OpResult::Range {
                    rows: vec![(b"a".to_vec(), version(b"1", 6))],
                    more: true,
                },
                OpResult::Txn {
                    succeeded: false,
                    results: vec![OpResult::Range {
                        rows: Vec::new(),
                        more: false,
                    }],
                },
            ],
        }),
    ]
}

#[test]
fn every_message_round_trips() {
    let rpc = append_entries();
    let decoded = decode_append_entries(&encode_append_entries(&rpc)).expect("decode");
    assert_eq!(decoded.vote, rpc.vote);
    assert_eq!(decoded.prev_log_id, rpc.prev_log_id);
    assert_eq!(decoded.leader_commit, rpc.leader_commit);
    assert_eq!(encode_append_entries(&decoded), encode_append_entries(&rpc));

    for response in responses() {
        let reply = Relayed::Done((log_id(3, 9), response));
        assert_eq!(
            decode_propose_reply(&encode_propose_reply(&reply)),
            Ok(reply)
        );
    }
    for reply in [
        Relayed::NotLeader(Some(2)),
        Relayed::NotLeader(None),
        Relayed::Failed(RemoteFailure::other("engine closed")),
    ] {
        assert_eq!(
            decode_propose_reply(&encode_propose_reply(&reply)),
            Ok(reply)
        );
    }
    for reply in [
        Relayed::Done(Some(log_id(2, 40))),
        Relayed::Done(None),
        Relayed::NotLeader(Some(3)),
    ] {
        let p = peer::read_index_reply_to_proto(&reply);
        assert_eq!(peer::read_index_reply_from_proto(&p), Ok(reply));
    }
    for reply in [
        Relayed::Done(Some(Duration::from_secs(60))),
        Relayed::Done(None),
        Relayed::NotLeader(None),
    ] {
        let p = peer::keep_alive_reply_to_proto(&reply);
        assert_eq!(peer::keep_alive_reply_from_proto(&p), Ok(reply));
    }
}

#[test]
fn damaged_and_oversized_messages_are_refused() {
    // Over the limit: refused before decoding.
    let huge = vec![0u8; PEER_MESSAGE_LEN_MAX + 1];
    assert!(matches!(
        decode_append_entries(&huge),
        Err(FormatError::TooLong { .. })
    ));
    assert!(matches!(
        decode_propose_reply(&huge),
        Err(FormatError::TooLong { .. })
    ));

    // Required fields.
    assert!(matches!(
        decode_append_entries(&[]),
        Err(FormatError::Invalid { field: "vote", .. })
    ));
    assert!(matches!(
        decode_propose_reply(&[]),
        Err(FormatError::Invalid {
            field: "result",
            ..
        })
    ));
    let applied_without_log_id = p::ProposeReply {
        result: Some(p::ProposeResult::Applied(p::Applied {
            log_id: None,
            response: Some(p::CommandResponse::default()),
        })),
    };
    assert!(matches!(
        decode_propose_reply(&applied_without_log_id.encode_to_vec()),
        Err(FormatError::Invalid {
            field: "log_id",
            ..
        })
    ));
    let empty_response = p::ProposeReply {
        result: Some(p::ProposeResult::Applied(p::Applied {
            log_id: Some(proto::LogId::default()),
            response: Some(p::CommandResponse::default()),
        })),
    };
    assert!(matches!(
        decode_propose_reply(&empty_response.encode_to_vec()),
        Err(FormatError::Invalid {
            structure: "CommandResponse",
            ..
        })
    ));

    // Entries must follow prev_log_id without a gap.
    let mut gap = peer::append_entries_to_proto(&append_entries());
    gap.entries.swap(0, 1);
    assert!(matches!(
        peer::append_entries_from_proto(&gap),
        Err(FormatError::Invalid {
            field: "entries",
            ..
        })
    ));
    // At most APPEND_ENTRIES_MAX entries.
    let mut many = peer::append_entries_to_proto(&append_entries());
    many.prev_log_id = None;
    many.entries = (0..=APPEND_ENTRIES_MAX as u64)
        .map(|index| proto::Entry {
            log_id: Some(proto::LogId {
                term: 1,
                node_id: 1,
                index,
            }),
            payload: Some(proto::EntryPayload::Blank(proto::Blank {})),
        })
        .collect();
    assert!(matches!(
        peer::append_entries_from_proto(&many),
        Err(FormatError::Invalid {
            field: "entries",
            ..
        })
    ));

    // A snapshot head announcing more than SNAPSHOT_LEN_MAX, or without its meta.
    let head = |len, meta| p::SnapshotHead {
        vote: Some(proto::Vote::default()),
        meta,
        len,
    };
    assert!(peer::snapshot_head_from_proto(&head(SNAPSHOT_LEN_MAX + 1, None)).is_err());
    assert!(matches!(
        peer::snapshot_head_from_proto(&head(10, None)),
        Err(FormatError::Invalid { field: "meta", .. })
    ));

    // A failure of an unknown kind is read as "other".
    let unknown = p::ReadIndexReply {
        result: Some(p::ReadIndexResult::Failure(p::Failure {
            kind: 99,
            message: "?".to_owned(),
        })),
    };
    assert!(matches!(
        peer::read_index_reply_from_proto(&unknown),
        Ok(Relayed::Failed(RemoteFailure {
            kind: FailureKind::Other,
            ..
        }))
    ));

    // Every strict prefix either fails or decodes to something else: never a panic.
    let bytes = encode_append_entries(&append_entries());
    for len in 0..bytes.len() {
        if let Ok(decoded) = decode_append_entries(&bytes[..len]) {
            assert_ne!(encode_append_entries(&decoded), bytes);
        }
    }
    let reply = encode_propose_reply(&Relayed::Done((log_id(1, 1), responses().remove(11))));
    for len in 0..reply.len() {
        if let Ok(decoded) = decode_propose_reply(&reply[..len]) {
            assert_ne!(encode_propose_reply(&decoded), reply);
        }
    }
    // Every single-bit flip and pseudo-random garbage: no panic.
    for at in 0..reply.len() {
        for bit in 0..8 {
            let mut bad = reply.clone();
            bad[at] ^= 1 << bit;
            let _ = decode_propose_reply(&bad);
        }
    }
    for bytes in garbage(2000, 96) {
        let _ = decode_append_entries(&bytes);
        let _ = decode_propose_reply(&bytes);
    }
}

/// The vectors of `spec/FORMAT.md` § 12.7 (`peer-vector <name>` then a line of hex).
fn vectors() -> std::collections::BTreeMap<String, Vec<u8>> {
    let spec =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/FORMAT.md"))
            .expect("spec/FORMAT.md");
    let mut vectors = std::collections::BTreeMap::new();
    let mut lines = spec.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("peer-vector ") {
            let hex_line = lines.next().expect("bytes after the name");
            let bytes = hex::decode(hex_line.replace(' ', "")).expect("hex");
            vectors.insert(name.to_owned(), bytes);
        }
    }
    vectors
}

#[test]
fn spec_vectors_decode_and_encode_both_ways() {
    let v = vectors();
    assert_eq!(v.len(), 6, "every vector of § 12.7: {:?}", v.keys());

    let applied = Relayed::Done((log_id(2, 9), Response::Put { revision: 10 }));
    assert_eq!(encode_propose_reply(&applied), v["propose-applied-put"]);
    assert_eq!(decode_propose_reply(&v["propose-applied-put"]), Ok(applied));

    let not_leader = Relayed::NotLeader(Some(3));
    let p = peer::read_index_reply_to_proto(&not_leader);
    assert_eq!(p.encode_to_vec(), v["read-index-not-leader-3"]);
    let decoded =
        p::ReadIndexReply::decode(v["read-index-not-leader-3"].as_slice()).expect("decode");
    assert_eq!(peer::read_index_reply_from_proto(&decoded), Ok(not_leader));

    let ttl = Relayed::Done(Some(Duration::from_secs(60)));
    let p = peer::keep_alive_reply_to_proto(&ttl);
    assert_eq!(p.encode_to_vec(), v["keep-alive-ttl-60000"]);
    let decoded =
        p::LeaseKeepAliveReply::decode(v["keep-alive-ttl-60000"].as_slice()).expect("decode");
    assert_eq!(peer::keep_alive_reply_from_proto(&decoded), Ok(ttl));

    let rpc = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(2, 1),
        prev_log_id: Some(log_id(1, 4)),
        entries: vec![Entry {
            log_id: log_id(2, 5),
            payload: EntryPayload::Blank,
        }],
        leader_commit: Some(log_id(2, 5)),
    };
    assert_eq!(encode_append_entries(&rpc), v["append-entries-blank"]);
    let decoded = decode_append_entries(&v["append-entries-blank"]).expect("decode");
    assert_eq!(encode_append_entries(&decoded), v["append-entries-blank"]);
    assert_eq!(decoded.prev_log_id, rpc.prev_log_id);
    assert_eq!(decoded.entries.len(), 1);

    let remove = MemberChange::Remove { id: 5 };
    assert_eq!(
        encode_change_members_request(&remove),
        v["change-members-remove-5"]
    );
    assert_eq!(
        decode_change_members_request(&v["change-members-remove-5"]),
        Ok(remove)
    );
    let refused = Relayed::Done(Err(MemberRefusal::NotFound { id: 3 }));
    assert_eq!(
        encode_change_members_reply(&refused),
        v["change-members-refused-not-found-3"]
    );
    assert_eq!(
        decode_change_members_reply(&v["change-members-refused-not-found-3"]),
        Ok(refused)
    );
}

#[test]
fn membership_changes_and_outcomes_round_trip_and_refuse_what_is_missing() {
    let published = Node {
        addr: "http://h:1".to_owned(),
        name: "n4".to_owned(),
        client_urls: vec!["http://h:2".to_owned(), "https://h:3".to_owned()],
    };
    for change in [
        MemberChange::Add {
            id: 4,
            node: Node::new("http://h:1"),
            learner: false,
        },
        MemberChange::Add {
            id: u64::MAX,
            node: published.clone(),
            learner: true,
        },
        MemberChange::Remove { id: 0 },
        MemberChange::Promote { id: 7 },
        MemberChange::UpdatePeerUrl {
            id: 4,
            addr: "http://h:9".to_owned(),
        },
        MemberChange::Publish {
            id: 4,
            name: "n4".to_owned(),
            client_urls: vec![],
        },
    ] {
        let bytes = encode_change_members_request(&change);
        assert_eq!(decode_change_members_request(&bytes), Ok(change));
    }
    for outcome in [
        Relayed::Done(Ok(Some(log_id(3, 12)))),
        Relayed::Done(Ok(None)),
        Relayed::Done(Err(MemberRefusal::Exists { id: 1 })),
        Relayed::Done(Err(MemberRefusal::PeerUrlExists {
            url: "http://h:1".to_owned(),
        })),
        Relayed::Done(Err(MemberRefusal::NotLearner { id: 2 })),
        Relayed::Done(Err(MemberRefusal::LearnerNotReady { id: 2 })),
        Relayed::Done(Err(MemberRefusal::TooManyLearners)),
        Relayed::Done(Err(MemberRefusal::NotEnoughStarted)),
        Relayed::Done(Err(MemberRefusal::Invalid("why".to_owned()))),
        Relayed::NotLeader(None),
        Relayed::NotLeader(Some(2)),
        Relayed::Failed(RemoteFailure {
            kind: FailureKind::Stopped,
            message: "stopped".to_owned(),
        }),
    ] {
        let bytes = encode_change_members_reply(&outcome);
        assert_eq!(decode_change_members_reply(&bytes), Ok(outcome));
    }
    // Missing oneofs and the added member's node are named; a node over the limits is refused.
    assert!(matches!(
        decode_change_members_request(&[]),
        Err(FormatError::Invalid {
            field: "change",
            ..
        })
    ));
    assert!(matches!(
        decode_change_members_reply(&[]),
        Err(FormatError::Invalid {
            field: "result",
            ..
        })
    ));
    assert!(matches!(
        decode_change_members_request(&[0x0a, 0x02, 0x10, 0x01]),
        Err(FormatError::Invalid { field: "node", .. })
    ));
    let too_many_urls = MemberChange::Publish {
        id: 1,
        name: "n".to_owned(),
        client_urls: vec!["http://h:1".to_owned(); kvstore_raft::member::CLIENT_URLS_MAX + 1],
    };
    assert!(matches!(
        decode_change_members_request(&encode_change_members_request(&too_many_urls)),
        Err(FormatError::Invalid {
            structure: "Node",
            field: "client_urls",
            ..
        })
    ));
}
