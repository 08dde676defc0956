use super::*;

#[test]
fn negative_operands_make_constant_compares() {
    let (op, target) = integer_compare(CompareOp::Greater, -1, CompareTarget::Version);
    assert_eq!(
        (op, target),
        (CompareOp::NotEqual, CompareTarget::Version(u64::MAX))
    );
    let (op, _) = integer_compare(CompareOp::Less, -1, CompareTarget::Version);
    assert_eq!(op, CompareOp::Equal);
    let (op, target) = integer_compare(CompareOp::Less, 3, CompareTarget::ModRevision);
    assert_eq!(
        (op, target),
        (CompareOp::Less, CompareTarget::ModRevision(3))
    );
}

/// The revision of each response's header, depth first (a nested txn's own, then its ops').
fn revisions(responses: &[ResponseOp]) -> Vec<i64> {
    let mut out = Vec::new();
    for r in responses {
        match &r.response {
            Some(Response::ResponseRange(r)) => out.push(r.header.map_or(-1, |h| h.revision)),
            Some(Response::ResponsePut(r)) => out.push(r.header.map_or(-1, |h| h.revision)),
            Some(Response::ResponseDeleteRange(r)) => {
                out.push(r.header.map_or(-1, |h| h.revision));
            }
            Some(Response::ResponseTxn(t)) => {
                out.push(t.header.map_or(-1, |h| h.revision));
                out.extend(revisions(&t.responses));
            }
            None => out.push(-1),
        }
    }
    out
}

fn read(rows: Vec<Row>) -> Plan {
    Plan::Range {
        request: RangeRequest::default(),
        rows: Source::Read(rows),
    }
}

#[test]
fn headers_inside_a_txn_follow_etcd() {
    let plans = vec![
        read(Vec::new()),
        Plan::Delete {
            index: Some(0),
            prev_kv: false,
        },
        Plan::Put {
            key: b"k".to_vec(),
            lease: 0,
            index: 1,
            prev_kv: false,
        },
        read(Vec::new()),
    ];
    let results = vec![
        OpResult::DeleteRange {
            deleted: Vec::new(),
        },
        OpResult::Put { prev: None },
    ];
    let responses = respond(plans, results, 8).expect("results match the plans");
    // Wire revisions: the engine's plus one.
    assert_eq!(revisions(&responses), vec![8, 8, 9, 9]);
}

#[test]
fn a_nested_txn_answers_its_branch_that_ran_with_an_empty_header() {
    // [range, txn { then: [put] / else: [range] }, range]: the nested put runs.
    let plans = vec![
        read(Vec::new()),
        Plan::Txn {
            index: 0,
            success: vec![Plan::Put {
                key: b"k".to_vec(),
                lease: 0,
                index: 0,
                prev_kv: false,
            }],
            failure: vec![read(Vec::new())],
        },
        read(Vec::new()),
    ];
    let results = vec![OpResult::Txn {
        succeeded: true,
        results: vec![OpResult::Put { prev: None }],
    }];
    let responses = respond(plans, results, 8).expect("results match the plans");
    // The first range reads before the nested put, the last after it; the nested txn's
    // header is empty (revision 0).
    assert_eq!(revisions(&responses), vec![8, 0, 9, 9]);
    let Some(Response::ResponseTxn(nested)) = &responses[1].response else {
        panic!("the second response is the nested txn's: {responses:?}");
    };
    assert!(nested.succeeded);
    // A result of another kind than its plan's is an error, not a made-up answer.
    let wrong = vec![OpResult::Put { prev: None }];
    let plans = vec![Plan::Txn {
        index: 0,
        success: Vec::new(),
        failure: Vec::new(),
    }];
    assert!(matches!(
        respond(plans, wrong, 8),
        Err(EtcdError::Engine(_))
    ));
}
