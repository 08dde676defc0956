//! Point checks of `spec/SEMANTICS.md` statements that the campaigns rely on.

use kvstore::Durability;
use kvstore_faults::{PersistenceModel, SimVfs};
use kvstore_model::{Engine, Mutation, Oracle, Outcome, Setup, Step};

fn put(k: &str, v: &str, durability: Option<Durability>) -> Step {
    Step::Write(
        Mutation::Put(k.as_bytes().to_vec(), v.as_bytes().to_vec()),
        durability,
    )
}

/// "Revisions across a crash": a revision assigned to a `Buffered` commit lost in a power cut is
/// given again to the next commit after recovery; durable revisions are kept.
#[test]
fn a_lost_buffered_revision_is_reused_after_recovery() {
    let setup = Setup::new(Durability::Sync);
    let mut engine = Engine::open(SimVfs::new(3), setup.clone(), Oracle::new()).unwrap();
    assert_eq!(engine.step(&put("a", "1", None)), Ok(Outcome::Done));
    assert_eq!(
        engine.step(&put("b", "2", Some(Durability::Buffered))),
        Ok(Outcome::Done)
    );
    assert_eq!(engine.oracle().current().revision(), 2);
    let (sim, oracle) = engine.crash();
    let mut engine =
        Engine::open(sim.reboot(PersistenceModel::UnsyncedLost), setup, oracle).unwrap();
    // The buffered commit (revision 2) was lost; revision 1 survived.
    assert_eq!(engine.oracle().durable().revision(), 1);
    assert!(engine.oracle().durable().get(b"b").is_none());
    // The next commit gets revision 2 again: the oracle checks the acknowledged revision.
    assert_eq!(engine.step(&put("c", "3", None)), Ok(Outcome::Done));
    assert_eq!(
        engine.oracle().current().get(b"c").map(|c| c.revision),
        Some(2)
    );
}
