//! The pipelined commit, interleavings pinned down: while one group's WAL sync is in flight,
//! the next group is decided (against the first one's applied writes), logged and applied
//! without waiting, but nothing of either is readable, observed or answered until the sync ends,
//! and then in revision order. A WAL sync (or append) that blocks until the test opens a gate
//! holds the first group there. And the wake-ups: a caller queued behind a leader is woken to
//! lead, and many concurrent writers are each answered with their own revision.

use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kvstore::txn::{Compare, CompareOp, CompareTarget, Txn, TxnOp};
use kvstore::vfs::{OsVfs, Vfs, VfsFile, VfsLock};
use kvstore::{Db, Durability, Options, WriteOptions};

/// How long the test waits for something that must happen before calling it a hang.
const HANG: Duration = Duration::from_secs(30);

/// A gate WAL syncs stop at while it is armed: `armed` makes the next WAL sync wait (and says
/// so through `blocked`) until `open`.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<GateState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    armed: bool,
    blocked: bool,
}

impl Gate {
    fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        if !state.armed {
            return;
        }
        state.blocked = true;
        self.cv.notify_all();
        while state.armed {
            state = self.cv.wait(state).unwrap();
        }
    }

    fn arm(&self) {
        self.state.lock().unwrap().armed = true;
    }

    fn wait_blocked(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.blocked {
            let (next, timeout) = self.cv.wait_timeout(state, HANG).unwrap();
            assert!(!timeout.timed_out(), "the WAL sync never reached the gate");
            state = next;
        }
    }

    fn open(&self) {
        let mut state = self.state.lock().unwrap();
        state.armed = false;
        self.cv.notify_all();
    }
}

/// The real filesystem, with WAL syncs stopping at `gate` and WAL appends at `append_gate`.
#[derive(Debug, Default)]
struct GatedVfs {
    gate: Arc<Gate>,
    append_gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Box<dyn VfsFile>,
    gate: Option<Arc<Gate>>,
    append_gate: Option<Arc<Gate>>,
}

impl VfsFile for GatedFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        if let Some(gate) = &self.append_gate {
            gate.pass();
        }
        self.inner.append(data)
    }
    fn sync_data(&self) -> io::Result<()> {
        if let Some(gate) = &self.gate {
            gate.pass();
        }
        self.inner.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl GatedVfs {
    fn wrap(&self, path: &Path, inner: Box<dyn VfsFile>) -> Box<dyn VfsFile> {
        let is_wal = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("wal-"));
        Box::new(GatedFile {
            inner,
            gate: is_wal.then(|| Arc::clone(&self.gate)),
            append_gate: is_wal.then(|| Arc::clone(&self.append_gate)),
        })
    }
}

impl Vfs for GatedVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(self.wrap(path, OsVfs.create(path)?))
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(self.wrap(path, OsVfs.open(path)?))
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        Ok(self.wrap(path, OsVfs.open_read(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsVfs.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        OsVfs.remove(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsVfs.hard_link(from, to)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        OsVfs.list(dir)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        OsVfs.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        OsVfs.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsVfs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        OsVfs.lock(path)
    }
}

/// Waits until the WAL ends past `offset` (a record was appended); returns where it ends.
fn wal_beyond(db: &Db, offset: u64) -> u64 {
    let db = db.clone();
    within("appending a record", move || {
        loop {
            let end = db.stats().wal_end_offset;
            if end > offset {
                return end;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Runs `f` on a thread and returns its result, failing the test if it does not finish in time
/// (a commit that waits on a lock held across the sync, or for a wake-up that never comes).
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} did not finish within {HANG:?}: a hang"))
}

#[test]
fn the_next_group_is_decided_logged_and_applied_while_one_syncs_and_published_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let vfs = Arc::new(GatedVfs {
        gate: Arc::clone(&gate),
        ..GatedVfs::default()
    });
    let db = Db::open_with_vfs(vfs, dir.path(), Options::default()).unwrap();
    let before = db.put(b"seed", b"0").unwrap();
    gate.arm();
    let syncing = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"a", b"1"))
    };
    gate.wait_blocked();
    let wal_before = db.stats().wal_end_offset;

    // A buffered put, then a txn deciding on the syncing commit's write: each gets past decide,
    // log and apply while the sync is blocked (the WAL grows), and then waits for its turn.
    let buffered = WriteOptions {
        durability: Some(Durability::Buffered),
        ..WriteOptions::default()
    };
    let put_b = {
        let db = db.clone();
        std::thread::spawn(move || db.put_with(b"b", b"2", buffered))
    };
    let after_b = wal_beyond(&db, wal_before);
    let txn = Txn {
        compares: vec![Compare::key(
            b"a",
            CompareOp::Equal,
            CompareTarget::Version(1),
        )],
        success: vec![TxnOp::Put {
            key: b"c".to_vec(),
            value: b"3".to_vec(),
            lease: 0,
        }],
        failure: vec![],
    };
    let txn_c = {
        let db = db.clone();
        std::thread::spawn(move || db.txn_with(txn, buffered))
    };
    wal_beyond(&db, after_b);
    // Nothing is readable yet: not the syncing commit, not the ones decided after it.
    let reads = {
        let db = db.clone();
        within("a read", move || {
            let stats = db.stats();
            (
                stats.last_revision,
                db.get(b"a").unwrap(),
                db.get(b"b").unwrap(),
                db.get(b"c").unwrap(),
            )
        })
    };
    assert_eq!(
        reads,
        (before, None, None, None),
        "published before the sync ended"
    );
    assert!(
        !put_b.is_finished() && !txn_c.is_finished(),
        "answered before the sync ended"
    );

    gate.open();
    let a = syncing.join().unwrap().unwrap();
    let b = put_b.join().unwrap().unwrap();
    let c = txn_c.join().unwrap().unwrap();
    assert!(
        c.succeeded,
        "the txn, logged while `a` synced, was decided against its applied write"
    );
    assert_eq!((b, c.revision), (a + 1, a + 2), "revisions in WAL order");
    assert_eq!(db.get(b"c").unwrap(), Some(b"3".to_vec()));
    assert_eq!(db.stats().last_revision, a + 2);
}

/// A caller that queues while the leader is still logging is woken to lead the next group when
/// the leader hands leadership on: no other caller arrives to take the lead, and the leader's own
/// group does not include it, so without that hand-over it would wait forever.
#[test]
fn a_caller_queued_behind_a_logging_leader_leads_the_next_group() {
    let dir = tempfile::tempdir().unwrap();
    let vfs = Arc::new(GatedVfs::default());
    let db = Db::open_with_vfs(
        Arc::clone(&vfs) as Arc<dyn Vfs>,
        dir.path(),
        Options::default(),
    )
    .unwrap();
    let before = db.put(b"seed", b"0").unwrap();
    vfs.append_gate.arm();
    let leader = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"a", b"1"))
    };
    vfs.append_gate.wait_blocked();
    let queued = {
        let db = db.clone();
        std::thread::spawn(move || db.put(b"b", b"2"))
    };
    // Time for `queued` to enqueue behind the leader (should it come later, it leads by itself
    // and the hand-over goes untested, but the test does not fail wrongly).
    std::thread::sleep(Duration::from_millis(200));
    vfs.append_gate.open();
    let a = leader.join().unwrap().unwrap();
    let b = within("the caller queued behind the leader", move || {
        queued.join().unwrap().unwrap()
    });
    assert_eq!((a, b), (before + 1, before + 2));
}

/// Many writers at once: each is answered (a lost wake-up of a follower, or of the caller that
/// must lead next, hangs here), with its own revision (results reach the callers they belong
/// to: every revision once, each caller's increasing), and the writes share syncs.
#[test]
fn many_concurrent_writers_are_each_answered_with_their_own_revision() {
    const WRITERS: usize = 48;
    const PUTS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), Options::default()).unwrap());
    let per_writer = within("a concurrent writer", move || {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = Arc::clone(&db);
                std::thread::spawn(move || {
                    (0..PUTS)
                        .map(|i| {
                            let key = format!("w{w}-{i}");
                            let revision = db.put(key.as_bytes(), key.as_bytes()).unwrap();
                            let stored = db.get_at(key.as_bytes(), revision).unwrap().unwrap();
                            assert_eq!(
                                (stored.value, stored.revision),
                                (key.into_bytes(), revision),
                                "the answered revision holds the caller's write"
                            );
                            revision
                        })
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let revisions: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        (revisions, db.metrics())
    });
    let (revisions, metrics) = per_writer;
    for own in &revisions {
        assert!(own.windows(2).all(|w| w[0] < w[1]), "{own:?}");
    }
    let mut all: Vec<u64> = revisions.concat();
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(WRITERS * PUTS) as u64).collect();
    assert_eq!(all, expected, "every revision answered once");
    assert_eq!(metrics.commits, (WRITERS * PUTS) as u64);
}
