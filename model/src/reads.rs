//! Reading a whole engine state back and comparing it with the model: the live state (with its
//! leases), reads at older revisions, snapshots.
//!
//! Invariant: every read that has two paths (a scan and a point read; a lease's keys and the
//! keys naming it; a scan's owned rows and the rows `Scan::visit` lends) is read both ways, and
//! a disagreement is [`ReadError::Inconsistent`] (or a failed check), not a state.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};

use kvstore::{Db, KeyRange, ScanOptions};

use crate::model::{Cell, Model, RevisionError};

/// Why [`read_all`] could not read a state.
#[derive(Debug)]
pub enum ReadError {
    /// A read returned this engine error (e.g. `Error::Corruption`).
    Engine(kvstore::Error),
    /// The engine's reads disagree with each other (a scan and a point read).
    Inconsistent(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Engine(e) => write!(f, "read failed: {e}"),
            ReadError::Inconsistent(what) => f.write_str(what),
        }
    }
}

/// Reads the whole state of `db`: a full scan, each key's value and revision from a point read
/// (which must agree with the scan), and the last revision. Keeps the engine's error, for
/// campaigns that tell corruption reports from other failures.
pub fn read_all(db: &Db) -> Result<Model, ReadError> {
    let scan = db
        .scan(KeyRange::all(), ScanOptions::default())
        .map_err(ReadError::Engine)?;
    let mut map = BTreeMap::new();
    for item in scan {
        let (key, value) = item.map_err(ReadError::Engine)?;
        let versioned = db
            .get_versioned(&key)
            .map_err(ReadError::Engine)?
            .ok_or_else(|| {
                ReadError::Inconsistent(format!("scan returned {key:?} but get does not"))
            })?;
        if versioned.value != value {
            return Err(ReadError::Inconsistent(format!(
                "scan and get disagree on {key:?}"
            )));
        }
        map.insert(key, cell(versioned));
    }
    let mut leases = BTreeMap::new();
    for id in db.leases().map_err(ReadError::Engine)? {
        let status = db
            .time_to_live(id)
            .map_err(ReadError::Engine)?
            .ok_or_else(|| ReadError::Inconsistent(format!("lease {id} listed but not found")))?;
        let attached: Vec<&Vec<u8>> = map
            .iter()
            .filter(|(_, c): &(&Vec<u8>, &Cell)| c.lease == id)
            .map(|(k, _)| k)
            .collect();
        if status.keys.iter().collect::<Vec<_>>() != attached {
            return Err(ReadError::Inconsistent(format!(
                "lease {id} lists keys {:?}, the live keys naming it are {attached:?}",
                status.keys
            )));
        }
        let ttl_ms = u64::try_from(status.granted_ttl.as_millis()).unwrap_or(u64::MAX);
        leases.insert(id, ttl_ms);
    }
    Ok(Model::from_parts(map, db.stats().last_revision)
        .with_leases(leases)
        .with_stamp(db.last_stamp()))
}

pub(crate) fn cell(versioned: kvstore::Versioned) -> Cell {
    Cell {
        value: versioned.value,
        revision: versioned.revision,
        create_revision: versioned.create_revision,
        version: versioned.version,
        lease: versioned.lease,
    }
}

/// Revisions [`check_history`] reads at most: all of them for short histories, else an even
/// sample including both ends.
pub const HISTORY_READS_MAX: u64 = 4;

/// Reads `db` as of `revision` (a scan at it, and a point read of each key it returns and of
/// each key `model` ever held, which must agree) and compares it with `model.state_at(revision)`;
/// a revision below the model's horizon must be refused with `Compacted`, one above its last
/// revision with `FutureRevision`.
pub fn check_read_at(db: &Db, model: &Model, revision: u64) -> Result<(), String> {
    let expected = match model.state_at(revision) {
        Ok(state) => state,
        Err(refusal) => {
            let got = db.scan(
                KeyRange::all(),
                ScanOptions {
                    revision: Some(revision),
                    ..ScanOptions::default()
                },
            );
            return match (refusal, got) {
                (RevisionError::Compacted, Err(kvstore::Error::Compacted { .. }))
                | (RevisionError::Future, Err(kvstore::Error::FutureRevision { .. })) => Ok(()),
                (refusal, Err(e)) => Err(format!(
                    "read at {revision}: {e}, the model says {refusal:?}"
                )),
                (refusal, Ok(_)) => Err(format!(
                    "read at {revision} accepted, the model says {refusal:?}"
                )),
            };
        }
    };
    let opts = ScanOptions {
        revision: Some(revision),
        ..ScanOptions::default()
    };
    let mut map = BTreeMap::new();
    let scan = db
        .scan(KeyRange::all(), opts)
        .map_err(|e| format!("scan at {revision}: {e}"))?;
    for row in scan.versioned() {
        let (key, versioned) = row.map_err(|e| format!("scan at {revision}: {e}"))?;
        map.insert(key, cell(versioned));
    }
    for key in model.keys_ever() {
        let got = db
            .get_at(key, revision)
            .map_err(|e| format!("get_at({key:?}, {revision}): {e}"))?
            .map(cell);
        if got.as_ref() != map.get(key) {
            return Err(format!(
                "get_at({key:?}, {revision}) returned {got:?}, the scan at it {:?}",
                map.get(key)
            ));
        }
    }
    let found = Model::from_parts(map, revision);
    if found != expected {
        return Err(format!(
            "read at revision {revision}: {}",
            expected.diff(&found)
        ));
    }
    Ok(())
}

/// Reads `db` at every revision from the model's horizon to its last (at most
/// [`HISTORY_READS_MAX`], evenly spread), one below the horizon and one past the last: every
/// read the history promises, compared with the model.
pub fn check_history(db: &Db, model: &Model) -> Result<(), String> {
    let (low, high) = (model.horizon().max(1), model.revision());
    let span = high.saturating_sub(low).saturating_add(1);
    let step = span.div_ceil(HISTORY_READS_MAX).max(1);
    let mut revisions: Vec<u64> = (low..=high)
        .step_by(usize::try_from(step).unwrap_or(1))
        .collect();
    revisions.push(high);
    revisions.push(high.saturating_add(1));
    if model.horizon() > 1 {
        revisions.push(model.horizon() - 1);
    }
    for revision in revisions {
        check_read_at(db, model, revision)?;
    }
    if db.history_horizon() != model.horizon() {
        return Err(format!(
            "history horizon {}, the model says {}",
            db.history_horizon(),
            model.horizon()
        ));
    }
    Ok(())
}

/// Reads `snapshot` whole (a scan, and a point read of each key `model` ever held, which must
/// agree) and compares it with `expected`, the model's state at the snapshot's revision.
pub fn check_snapshot(
    snapshot: &kvstore::Snapshot,
    expected: &Model,
    model: &Model,
) -> Result<(), String> {
    let revision = snapshot.revision();
    let mut map = BTreeMap::new();
    let scan = snapshot
        .scan(KeyRange::all(), ScanOptions::default())
        .map_err(|e| format!("scan of the snapshot at {revision}: {e}"))?;
    for row in scan.versioned() {
        let (key, versioned) =
            row.map_err(|e| format!("scan of the snapshot at {revision}: {e}"))?;
        map.insert(key, cell(versioned));
    }
    for key in model.keys_ever() {
        let got = snapshot
            .get_versioned(key)
            .map_err(|e| format!("snapshot get({key:?}) at {revision}: {e}"))?
            .map(cell);
        if got.as_ref() != map.get(key) {
            return Err(format!(
                "snapshot get({key:?}) at {revision} returned {got:?}, its scan {:?}",
                map.get(key)
            ));
        }
    }
    let found = Model::from_parts(map, revision);
    if &found != expected {
        return Err(format!(
            "snapshot at revision {revision}: {}",
            expected.diff(&found)
        ));
    }
    Ok(())
}

/// Checks that a full forward scan through `Scan::visit` (rows lent, not copied) gives the
/// model's live state exactly, and that a `Break` after the first row stops it there.
pub fn check_visit(db: &Db, model: &Model) -> Result<(), String> {
    let want = model.scan(Bound::Unbounded, Bound::Unbounded);
    let mut got: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let flow = db
        .scan(KeyRange::all(), ScanOptions::default())
        .and_then(|scan| {
            scan.visit(|k, v| {
                got.push((k.to_vec(), v.to_vec()));
                ControlFlow::<()>::Continue(())
            })
        })
        .map_err(|e| format!("visit scan: {e}"))?;
    if flow.is_break() || got != want {
        return Err(format!(
            "visit scan returned {got:?}, the model says {want:?}"
        ));
    }
    let first = db
        .scan(KeyRange::all(), ScanOptions::default())
        .and_then(|scan| scan.visit(|k, _| ControlFlow::Break(k.to_vec())))
        .map_err(|e| format!("visit scan: {e}"))?;
    let want_first = want.first().map(|(k, _)| k.clone());
    match (first, want_first) {
        (ControlFlow::Break(k), Some(w)) if k == w => Ok(()),
        (ControlFlow::Continue(()), None) => Ok(()),
        (got, want) => Err(format!(
            "visit stopped at its first row gave {got:?}, the model's first key is {want:?}"
        )),
    }
}

/// [`read_all`] with the error as a message.
pub fn observe(db: &Db) -> Result<Model, String> {
    read_all(db).map_err(|e| e.to_string())
}
