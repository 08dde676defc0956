//! [`Model`]: the semantics of kvstore as a plain ordered map, the executable form of
//! `spec/SEMANTICS.md` ("What a read returns", "Revisions").
//!
//! Invariants:
//! - Every commit ([`Mutation`]) takes exactly the next revision, `revision + 1`, whether or not
//!   it changes anything (a delete of an absent key is still a commit).
//! - A batch is applied whole, in its order, all under one revision; a later op of a batch on the
//!   same key wins.
//! - A key maps to the value and the revision of the last commit that put it; a delete removes it.

use std::collections::BTreeMap;
use std::ops::Bound;

/// One op inside a batch: `Some(value)` puts, `None` deletes.
pub type BatchOp = (Vec<u8>, Option<Vec<u8>>);

/// One commit: what a successful `put`, `delete` or `write(batch)` does.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Mutation {
    /// `Db::put(key, value)`.
    Put(Vec<u8>, Vec<u8>),
    /// `Db::delete(key)`.
    Delete(Vec<u8>),
    /// `Db::write(batch)`: every op under one revision, all or nothing.
    Batch(Vec<BatchOp>),
}

/// A value as a read sees it: the bytes and the revision of the commit that wrote them.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Cell {
    /// The value.
    pub value: Vec<u8>,
    /// The revision of the commit that wrote it.
    pub revision: u64,
}

/// The whole state of a database: every live key and the last revision committed.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub struct Model {
    map: BTreeMap<Vec<u8>, Cell>,
    revision: u64,
}

impl Model {
    /// The empty database: no keys, revision 0.
    pub fn new() -> Model {
        Model::default()
    }

    /// A state read back from an engine: `map` and its `last_revision`.
    pub fn from_parts(map: BTreeMap<Vec<u8>, Cell>, revision: u64) -> Model {
        Model { map, revision }
    }

    /// Commits `mutation`; returns its revision (the previous one plus one).
    pub fn apply(&mut self, mutation: &Mutation) -> u64 {
        self.revision = self.revision.saturating_add(1);
        let revision = self.revision;
        let mut set = |key: &[u8], value: Option<&Vec<u8>>| match value {
            Some(value) => {
                self.map.insert(
                    key.to_vec(),
                    Cell {
                        value: value.clone(),
                        revision,
                    },
                );
            }
            None => {
                self.map.remove(key);
            }
        };
        match mutation {
            Mutation::Put(key, value) => set(key, Some(value)),
            Mutation::Delete(key) => set(key, None),
            Mutation::Batch(ops) => {
                for (key, value) in ops {
                    set(key, value.as_ref());
                }
            }
        }
        revision
    }

    /// What `get(key)` returns.
    pub fn get(&self, key: &[u8]) -> Option<&Cell> {
        self.map.get(key)
    }

    /// What a scan of `[start, end)` returns, in key order.
    pub fn scan(&self, start: Bound<&[u8]>, end: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.map
            .range::<[u8], _>((start, end))
            .map(|(k, c)| (k.clone(), c.value.clone()))
            .collect()
    }

    /// The revision of the last commit (0 before any).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every live key and its cell.
    pub fn cells(&self) -> &BTreeMap<Vec<u8>, Cell> {
        &self.map
    }

    /// A one-line difference between `self` (expected) and `other` (found), for messages.
    pub fn diff(&self, other: &Model) -> String {
        let mut out = Vec::new();
        if self.revision != other.revision {
            out.push(format!(
                "last revision {} vs {}",
                self.revision, other.revision
            ));
        }
        let keys: std::collections::BTreeSet<&Vec<u8>> =
            self.map.keys().chain(other.map.keys()).collect();
        for key in keys {
            let (a, b) = (self.map.get(key), other.map.get(key));
            if a != b {
                out.push(format!(
                    "{}: {} vs {}",
                    show(key),
                    show_cell(a),
                    show_cell(b)
                ));
            }
        }
        if out.is_empty() {
            "equal".to_owned()
        } else {
            out.join("; ")
        }
    }
}

/// Bytes as text if printable, else hex-ish, shortened.
pub fn show(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(12)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    if bytes.len() > 12 {
        format!("{shown}..({} B)", bytes.len())
    } else {
        shown
    }
}

fn show_cell(cell: Option<&Cell>) -> String {
    cell.map_or_else(
        || "absent".to_owned(),
        |c| format!("{}@{}", show(&c.value), c.revision),
    )
}

#[cfg(test)]
mod tests {
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
                revision: 3
            })
        );
        assert_eq!(m.scan(Bound::Unbounded, Bound::Excluded(b"b")).len(), 1);
        assert_eq!(m.revision(), 3);
    }
}
