use super::*;
use crate::txn::{RangeRequest, TXN_OPS_MAX};

/// A view over a map of live keys and a map of each key's newest revision (deletions too).
struct MapView {
    revision: u64,
    live: BTreeMap<Vec<u8>, Versioned>,
    newest: BTreeMap<Vec<u8>, u64>,
}

fn version(value: &[u8], revision: u64, create_revision: u64, version: u64) -> Versioned {
    Versioned {
        value: value.to_vec(),
        revision,
        created_at_ms: 0,
        create_revision,
        version,
        lease: 0,
    }
}

fn view() -> MapView {
    let live: BTreeMap<Vec<u8>, Versioned> = [
        (b"a".to_vec(), version(b"1", 3, 2, 2)),
        (b"b".to_vec(), version(b"2", 4, 4, 1)),
        (b"c".to_vec(), version(b"3", 5, 5, 1)),
    ]
    .into_iter()
    .collect();
    let mut newest: BTreeMap<Vec<u8>, u64> =
        live.iter().map(|(k, v)| (k.clone(), v.revision)).collect();
    newest.insert(b"gone".to_vec(), 6);
    MapView {
        revision: 6,
        live,
        newest,
    }
}

impl StateView for MapView {
    fn revision(&self) -> u64 {
        self.revision
    }
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        Ok(self.live.get(key).cloned())
    }
    fn range(&self, range: &KeyRange) -> Result<Vec<(Vec<u8>, Versioned)>> {
        Ok(self
            .live
            .iter()
            .filter(|(k, _)| range.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    fn newest_revision(&self, key: &[u8]) -> Result<Option<u64>> {
        Ok(self.newest.get(key).copied())
    }
    fn first_written_since(&self, range: &KeyRange, since: u64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .newest
            .iter()
            .find(|(k, r)| range.contains(k) && **r > since)
            .map(|(k, _)| k.clone()))
    }
}

fn put(key: &[u8], value: &[u8]) -> TxnOp {
    TxnOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
        lease: 0,
    }
}

fn read(range: KeyRange) -> TxnOp {
    TxnOp::Range(RangeRequest { range, limit: None })
}

#[test]
fn compares_follow_etcds_rules_for_present_and_missing_keys() {
    let v = view();
    let check = |compare: Compare| holds(&compare, &v).unwrap();
    assert!(check(Compare::key(
        b"a",
        CompareOp::Equal,
        CompareTarget::Value(b"1".to_vec())
    )));
    assert!(check(Compare::key(
        b"a",
        CompareOp::Greater,
        CompareTarget::Value(b"0".to_vec())
    )));
    assert!(check(Compare::key(
        b"a",
        CompareOp::Equal,
        CompareTarget::Version(2)
    )));
    assert!(check(Compare::key(
        b"a",
        CompareOp::Less,
        CompareTarget::ModRevision(4)
    )));
    assert!(check(Compare::key(
        b"a",
        CompareOp::Equal,
        CompareTarget::CreateRevision(2)
    )));
    // A missing key: version 0 (etcd's "does not exist" idiom), and any value compare false.
    assert!(check(Compare::key(
        b"zz",
        CompareOp::Equal,
        CompareTarget::Version(0)
    )));
    assert!(!check(Compare::key(
        b"zz",
        CompareOp::NotEqual,
        CompareTarget::Value(b"x".to_vec())
    )));
    // A range compare holds for every key or not at all.
    let range = |op, n| Compare {
        key: Vec::new(),
        range: Some(KeyRange::all()),
        target: CompareTarget::ModRevision(n),
        op,
    };
    assert!(check(range(CompareOp::Greater, 2)));
    assert!(!check(range(CompareOp::Greater, 3)));
}

#[test]
fn the_branch_runs_in_order_and_reads_its_own_writes() {
    let txn = Txn {
        compares: vec![Compare::key(
            b"a",
            CompareOp::Equal,
            CompareTarget::Version(2),
        )],
        success: vec![
            put(b"a", b"new"),
            TxnOp::DeleteRange(KeyRange::key(b"b")),
            put(b"d", b"4"),
            read(KeyRange::all()),
        ],
        failure: vec![put(b"x", b"never")],
    };
    let (succeeded, writes, results) = evaluate(&txn, &view(), 7, 99).unwrap();
    assert!(succeeded);
    assert_eq!(writes.len(), 3);
    let OpResult::Range { rows, more } = &results[3] else {
        panic!("{results:?}")
    };
    let keys: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![&b"a"[..], b"c", b"d"]);
    assert!(!more);
    assert_eq!(
        rows[0].1,
        Versioned {
            created_at_ms: 99,
            ..version(b"new", 7, 2, 3)
        }
    );
    assert_eq!(
        rows[2].1,
        Versioned {
            created_at_ms: 99,
            ..version(b"4", 7, 7, 1)
        }
    );
    let OpResult::Put { prev } = &results[0] else {
        panic!("{results:?}")
    };
    assert_eq!(prev.as_ref().map(|p| p.value.as_slice()), Some(&b"1"[..]));
}

#[test]
fn a_failed_compare_runs_the_failure_branch_and_reads_write_nothing() {
    let txn = Txn {
        compares: vec![Compare::key(
            b"a",
            CompareOp::Equal,
            CompareTarget::Value(b"other".to_vec()),
        )],
        success: vec![put(b"x", b"1")],
        failure: vec![read(KeyRange::prefix(b"a"))],
    };
    let (succeeded, writes, results) = evaluate(&txn, &view(), 7, 0).unwrap();
    assert!(!succeeded);
    assert!(writes.is_empty(), "a read-only branch commits nothing");
    assert!(matches!(&results[0], OpResult::Range { rows, .. } if rows.len() == 1));
}

#[test]
fn a_key_written_twice_in_a_branch_is_refused() {
    let twice = Txn {
        success: vec![put(b"a", b"1"), put(b"a", b"2")],
        ..Txn::default()
    };
    assert!(matches!(
        evaluate(&twice, &view(), 7, 0),
        Err(Error::InvalidArgument(_))
    ));
    let put_in_deleted = Txn {
        success: vec![TxnOp::DeleteRange(KeyRange::all()), put(b"a", b"2")],
        ..Txn::default()
    };
    assert!(evaluate(&put_in_deleted, &view(), 7, 0).is_err());
    let deleted_after_put = Txn {
        success: vec![put(b"q", b"2"), TxnOp::DeleteRange(KeyRange::all())],
        ..Txn::default()
    };
    assert!(evaluate(&deleted_after_put, &view(), 7, 0).is_err());
}

#[test]
fn a_limit_cuts_a_range_and_says_so() {
    let txn = Txn {
        success: vec![TxnOp::Range(RangeRequest {
            range: KeyRange::all(),
            limit: Some(2),
        })],
        ..Txn::default()
    };
    let (_, _, results) = evaluate(&txn, &view(), 7, 0).unwrap();
    assert!(matches!(&results[0], OpResult::Range { rows, more: true } if rows.len() == 2));
}

#[test]
fn conflicts_are_writes_after_the_snapshot_to_what_was_read() {
    let v = view();
    assert_eq!(conflict(&v, 6, &[b"a".to_vec()], &[]).unwrap(), None);
    assert_eq!(conflict(&v, 3, &[b"a".to_vec()], &[]).unwrap(), None);
    assert_eq!(
        conflict(&v, 2, &[b"a".to_vec()], &[]).unwrap(),
        Some(b"a".to_vec())
    );
    // A deletion in a scanned range after the snapshot is a conflict too.
    assert_eq!(
        conflict(&v, 5, &[], &[KeyRange::prefix(b"g")]).unwrap(),
        Some(b"gone".to_vec())
    );
    assert_eq!(conflict(&v, 6, &[], &[KeyRange::all()]).unwrap(), None);
}

fn nested(compares: Vec<Compare>, success: Vec<TxnOp>, failure: Vec<TxnOp>) -> TxnOp {
    TxnOp::Txn(Txn {
        compares,
        success,
        failure,
    })
}

#[test]
fn a_nested_txn_compares_against_the_database_before_the_txn_and_runs_in_place() {
    let a_is_1 = Compare::key(b"a", CompareOp::Equal, CompareTarget::Value(b"1".to_vec()));
    let txn = Txn {
        compares: Vec::new(),
        success: vec![
            // `a` becomes "9" first; the nested compare still sees "1" (etcd's compareToPath).
            put(b"a", b"9"),
            nested(
                vec![a_is_1],
                vec![put(b"x", b"then"), read(KeyRange::key(b"a"))],
                vec![put(b"x", b"else")],
            ),
            read(KeyRange::key(b"x")),
        ],
        failure: Vec::new(),
    };
    let (succeeded, writes, results) = evaluate(&txn, &view(), 7, 0).unwrap();
    assert!(succeeded);
    // One batch: the outer put, then the nested branch's.
    let keys: Vec<&[u8]> = writes
        .iter()
        .map(|w| match w {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key.as_slice(),
        })
        .collect();
    assert_eq!(keys, vec![&b"a"[..], &b"x"[..]]);
    let OpResult::Txn {
        succeeded,
        results: inner,
    } = &results[1]
    else {
        panic!("the second result is the nested txn's: {results:?}");
    };
    assert!(
        *succeeded,
        "the nested compare saw the value before the txn"
    );
    // The nested read sees the outer put before it, the outer read the nested put.
    let OpResult::Range { rows, .. } = &inner[1] else {
        panic!("the nested branch's second result is its read: {inner:?}");
    };
    assert_eq!(rows[0].1.value, b"9");
    let OpResult::Range { rows, .. } = &results[2] else {
        panic!("the third result is the outer read: {results:?}");
    };
    assert_eq!(rows[0].1.value, b"then");
}

#[test]
fn a_key_written_twice_across_nested_levels_is_refused() {
    for success in [
        vec![
            put(b"a", b"1"),
            nested(Vec::new(), vec![put(b"a", b"2")], Vec::new()),
        ],
        vec![
            nested(Vec::new(), vec![put(b"a", b"2")], Vec::new()),
            TxnOp::DeleteRange(KeyRange::key(b"a")),
        ],
    ] {
        let txn = Txn {
            compares: Vec::new(),
            success,
            failure: Vec::new(),
        };
        let error = evaluate(&txn, &view(), 7, 0).unwrap_err();
        assert!(
            error.to_string().contains("duplicate key"),
            "unexpected error: {error}"
        );
    }
    // Only the branch that runs counts: the nested failure branch's put does not.
    let txn = Txn {
        compares: Vec::new(),
        success: vec![
            put(b"a", b"1"),
            nested(Vec::new(), vec![put(b"b", b"2")], vec![put(b"a", b"3")]),
        ],
        failure: Vec::new(),
    };
    assert!(evaluate(&txn, &view(), 7, 0).is_ok());
}

#[test]
fn nested_txns_share_the_ops_budget_as_etcd_does() {
    let with = |outer_ops: usize, nested_ops: usize| Txn {
        compares: Vec::new(),
        success: std::iter::once(nested(
            Vec::new(),
            vec![read(KeyRange::all()); nested_ops],
            Vec::new(),
        ))
        .chain(std::iter::repeat_n(read(KeyRange::all()), outer_ops - 1))
        .collect(),
        failure: Vec::new(),
    };
    assert!(with(2, TXN_OPS_MAX - 2).validate().is_ok());
    assert!(with(2, TXN_OPS_MAX - 1).validate().is_err());
    let deep = |levels: usize| {
        let mut txn = Txn {
            success: vec![put(b"leaf", b"v")],
            ..Txn::default()
        };
        for _ in 1..levels {
            txn = Txn {
                success: vec![TxnOp::Txn(txn)],
                ..Txn::default()
            };
        }
        txn
    };
    assert!(deep(TXN_OPS_MAX).validate().is_ok());
    assert!(deep(TXN_OPS_MAX + 1).validate().is_err());
    // A bad key deep down is found too.
    let mut bad = deep(3);
    if let TxnOp::Txn(level2) = &mut bad.success[0] {
        level2.failure.push(put(b"", b"v"));
    }
    assert!(bad.validate().is_err());
}
