use super::*;

#[test]
fn every_commit_takes_the_next_revision_and_batches_apply_in_order() {
    let mut m = Model::new();
    assert_eq!(m.apply(&Mutation::Put(b"a".to_vec(), b"1".to_vec())), 1);
    assert_eq!(m.apply(&Mutation::Delete(b"zz".to_vec())), 2);
    let batch = Mutation::Batch(vec![
        (b"a".to_vec(), None),
        (b"b".to_vec(), Some(b"2".to_vec())),
        (b"a".to_vec(), Some(b"3".to_vec())),
    ]);
    assert_eq!(m.apply(&batch), 3);
    assert_eq!(
        m.get(b"a"),
        Some(&Cell {
            value: b"3".to_vec(),
            revision: 3,
            create_revision: 1,
            version: 2,
            lease: 0,
        })
    );
    assert_eq!(m.scan(Bound::Unbounded, Bound::Excluded(b"b")).len(), 1);
    assert_eq!(m.revision(), 3);
}

#[test]
fn history_is_read_at_any_revision_above_the_horizon() {
    let mut m = Model::new();
    m.apply(&Mutation::Put(b"a".to_vec(), b"1".to_vec()));
    m.apply(&Mutation::Put(b"a".to_vec(), b"2".to_vec()));
    m.apply(&Mutation::Delete(b"a".to_vec()));
    m.apply(&Mutation::Put(b"a".to_vec(), b"4".to_vec()));
    let at = |m: &Model, r| {
        m.state_at(r).map(|s| {
            s.get(b"a")
                .map(|c| (c.value.clone(), c.create_revision, c.version))
        })
    };
    assert_eq!(at(&m, 2), Ok(Some((b"2".to_vec(), 1, 2))));
    assert_eq!(at(&m, 3), Ok(None));
    assert_eq!(
        at(&m, 4),
        Ok(Some((b"4".to_vec(), 4, 1))),
        "a put after a delete creates"
    );
    assert_eq!(at(&m, 5), Err(RevisionError::Future));
    assert_eq!(m.compact_history(3), Ok(()));
    assert_eq!(at(&m, 2), Err(RevisionError::Compacted));
    assert_eq!(m.compact_history(3), Err(RevisionError::Compacted));
    assert_eq!(m.compact_history(9), Err(RevisionError::Future));
}

#[test]
fn a_revocation_deletes_its_keys_in_one_revision_and_refusals_change_nothing() {
    let mut m = Model::new();
    let put = |k: &str, lease| Mutation::PutLease(k.as_bytes().to_vec(), b"v".to_vec(), lease);
    assert_eq!(m.refusal(&put("a", 1)), Some(Refusal::LeaseNotFound));
    assert_eq!(m.apply(&put("a", 1)), 0);
    assert_eq!(
        m.apply(&Mutation::Grant(1, 50)),
        0,
        "a grant takes no revision"
    );
    assert_eq!(
        m.refusal(&Mutation::Grant(1, 50)),
        Some(Refusal::LeaseExists)
    );
    assert_eq!(m.apply(&put("a", 1)), 1);
    assert_eq!(m.apply(&put("b", 1)), 2);
    assert_eq!(m.apply(&put("b", 0)), 3, "detached");
    assert_eq!(m.attached(1), vec![b"a".to_vec()]);
    assert_eq!(m.apply(&Mutation::Revoke(1)), 4);
    assert_eq!(m.get(b"a"), None);
    assert!(m.get(b"b").is_some());
    assert!(m.leases().is_empty());
    assert_eq!(m.events(4, 4), vec![(4, b"a".to_vec(), None)]);
    m.apply(&Mutation::Grant(2, 5));
    assert_eq!(m.apply(&Mutation::Revoke(2)), 4, "no keys, no revision");
}
