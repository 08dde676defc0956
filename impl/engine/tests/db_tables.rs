//! Tables on `SimVfs` (inline background work, a logical clock): at most `max_open_tables`
//! table readers stay open however many tables the database has; small adjacent tables are
//! merged instead of piling up; a table whose size or key span disagrees with the manifest
//! (two tables swapped on disk) is corruption naming the file.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kvstore::vfs::{Vfs, VfsFile, VfsLock};
use kvstore::{Db, Error, KeyRange, Options, ScanOptions};
use kvstore_faults::SimVfs;

const DIR: &str = "/db";
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn options() -> Options {
    common::small_options()
}

/// Counts the SST handles opened for reading and alive at once: each `open` of a `.sst`
/// increments, each drop of such a handle decrements.
#[derive(Debug, Clone)]
struct CountingVfs {
    inner: SimVfs,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    open_now: AtomicUsize,
    open_peak: AtomicUsize,
    opens: AtomicUsize,
}

impl Counts {
    fn reset_peak(&self) {
        let now = self.open_now.load(Ordering::SeqCst);
        self.open_peak.store(now, Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct CountedFile {
    inner: Box<dyn VfsFile>,
    counts: Arc<Counts>,
}

impl Drop for CountedFile {
    fn drop(&mut self) {
        self.counts.open_now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl VfsFile for CountedFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn append(&self, data: &[u8]) -> io::Result<()> {
        self.inner.append(data)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl Vfs for CountingVfs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.inner.create(path)
    }
    fn open(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        self.inner.open(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Box<dyn VfsFile>> {
        let file = self.inner.open_read(path)?;
        if path.extension().is_none_or(|e| e != "sst") {
            return Ok(file);
        }
        let now = self.counts.open_now.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.open_peak.fetch_max(now, Ordering::SeqCst);
        self.counts.opens.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(CountedFile {
            inner: file,
            counts: Arc::clone(&self.counts),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.hard_link(from, to)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn VfsLock>> {
        self.inner.lock(path)
    }
}

/// The SST file names in the database directory, sorted.
fn tables(vfs: &SimVfs) -> Vec<String> {
    let mut names: Vec<String> = vfs
        .list(Path::new(DIR))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    names.sort();
    names
}

fn contents(db: &Db, range: KeyRange, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let opts = ScanOptions {
        reverse,
        ..ScanOptions::default()
    };
    db.scan(range, opts).unwrap().map(|r| r.unwrap()).collect()
}

/// A value of 300 bytes that LZ4 barely compresses, different for every `i`.
fn value(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..300)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const OPEN_TABLES: usize = 16;

/// A database of about 270 tables read through a cache of 16: every get and every scan answers
/// as the model does, tables are reopened after their eviction, and at no moment are more than
/// the bound plus the one table being opened held open (`spec/SEMANTICS.md`, "Open tables").
#[test]
fn more_tables_than_open_slots_answer_every_read_within_the_bound() {
    let opts = Options {
        sst_target_file_size_bytes: 1024,
        max_open_tables: OPEN_TABLES,
        ..options()
    };
    let sim = SimVfs::new(11);
    let vfs = CountingVfs {
        inner: sim.clone(),
        counts: Arc::default(),
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
    let key = |i: u64| format!("t{i:05}").into_bytes();
    let mut model = Model::new();
    // Keys in a scattered order, so flushes overlap and compaction merges (and cuts) them.
    for i in (0..800u64).map(|j| j * 337 % 800) {
        db.put(&key(i), &value(i)).unwrap();
        model.insert(key(i), value(i));
    }
    db.compact_range(KeyRange::all()).unwrap();
    let db_stats = db.stats();
    db.close().unwrap();
    let count = tables(&sim).len();
    assert!(
        count > 10 * OPEN_TABLES,
        "only {count} tables: {:?}",
        db_stats
    );

    vfs.counts.reset_peak();
    let opens_before = vfs.counts.opens.load(Ordering::SeqCst);
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts).unwrap();
    let counts = &vfs.counts;
    assert!(
        counts.opens.load(Ordering::SeqCst) - opens_before >= count,
        "open checks every listed table"
    );
    // Gets in an order that jumps between tables.
    for j in 0..800u64 {
        let i = j * 337 % 800;
        assert_eq!(db.get(&key(i)).unwrap(), Some(value(i)), "key {i}");
    }
    assert_eq!(db.get(b"t99999").unwrap(), None);
    let all: Vec<_> = model.clone().into_iter().collect();
    assert_eq!(contents(&db, KeyRange::all(), false), all);
    let reversed: Vec<_> = all.iter().rev().cloned().collect();
    assert_eq!(contents(&db, KeyRange::all(), true), reversed);
    let (lo, hi) = (key(123), key(456));
    let some = contents(&db, kvstore::db::key_range(&lo[..]..&hi[..]), false);
    assert_eq!(some, all[123..456].to_vec());
    // Two scans alive at once, interleaved.
    let mut a = db.scan(KeyRange::all(), ScanOptions::default()).unwrap();
    let rev = ScanOptions {
        reverse: true,
        ..ScanOptions::default()
    };
    let mut b = db.scan(KeyRange::all(), rev).unwrap();
    for j in 0..800 {
        assert_eq!(a.next().unwrap().unwrap(), all[j]);
        assert_eq!(b.next().unwrap().unwrap(), all[799 - j]);
    }
    drop((a, b));

    // The bound, plus per live scan the table it reads (evicted or not), plus one being opened.
    let peak = counts.open_peak.load(Ordering::SeqCst);
    let opens = counts.opens.load(Ordering::SeqCst) - opens_before;
    assert!(
        peak <= OPEN_TABLES + 3,
        "{peak} table handles open at once, bound {OPEN_TABLES}"
    );
    assert!(
        opens > 2 * count,
        "tables reopened after eviction: {opens} opens"
    );
    assert!(counts.open_now.load(Ordering::SeqCst) <= OPEN_TABLES);
    db.close().unwrap();
    assert_eq!(
        counts.open_now.load(Ordering::SeqCst),
        0,
        "close closes them"
    );
}

/// A scan keeps reading a table that a compaction removed from the tree after the scan began,
/// even once the cache has evicted its reader: the file stays until no tree lists it.
#[test]
fn a_scan_outlives_the_compaction_of_the_tables_it_reads() {
    let opts = Options {
        sst_target_file_size_bytes: 1024,
        max_open_tables: OPEN_TABLES,
        ..options()
    };
    let vfs = SimVfs::new(12);
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts).unwrap();
    let key = |i: u64| format!("s{i:05}").into_bytes();
    for i in (0..400u64).map(|j| j * 137 % 400) {
        db.put(&key(i), &value(i)).unwrap();
    }
    db.compact_range(KeyRange::all()).unwrap();
    let before = tables(&vfs);
    let mut scan = db.scan(KeyRange::all(), ScanOptions::default()).unwrap();
    assert_eq!(scan.next().unwrap().unwrap(), (key(0), value(0)));
    // Overwrite everything and push it down: every table the scan will read is compacted away.
    for i in 0..400u64 {
        db.put(&key(i), b"new").unwrap();
    }
    db.compact_range(KeyRange::all()).unwrap();
    for i in 1..400u64 {
        assert_eq!(scan.next().unwrap().unwrap(), (key(i), value(i)), "key {i}");
    }
    assert!(scan.next().is_none());
    drop(scan);
    let after = tables(&vfs);
    assert!(
        before.iter().all(|t| !after.contains(t)),
        "the old tables are removed once the scan is gone"
    );
    assert_eq!(db.get(&key(7)).unwrap(), Some(b"new".to_vec()));
}

/// A thousand tiny flushes of disjoint keys (as a thousand `kvstore put` processes leave) end
/// in a bounded number of files: runs of small adjacent tables are merged, not only moved.
#[test]
fn a_thousand_tiny_flushes_end_in_few_files() {
    let vfs = SimVfs::new(13);
    // The default target file size, as the `kvstore` tool opens a database.
    let tool_like = Options {
        sst_target_file_size_bytes: Options::default().sst_target_file_size_bytes,
        ..options()
    };
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), tool_like).unwrap();
    // Increasing keys, as a script of `kvstore put` calls writes: every flush lands beside the
    // previous ones, so compaction only ever moves them.
    let key = |i: u64| format!("p{i:05}").into_bytes();
    let mut model = Model::new();
    for i in 0..1000u64 {
        db.put(&key(i), format!("v{i}").as_bytes()).unwrap();
        model.insert(key(i), format!("v{i}").into_bytes());
        db.flush().unwrap();
    }
    let stats = db.stats();
    let files: usize = stats.files_per_level.iter().sum();
    let bytes: u64 = stats.bytes_per_level.iter().sum();
    // 5 files here; 1000 (every flush its own file) when small tables are only moved.
    assert!(files <= 10, "{files} files ({bytes} bytes): {stats:?}");
    assert_eq!(tables(&vfs).len(), files, "merged inputs are removed");
    let all: Vec<_> = model.into_iter().collect();
    assert_eq!(contents(&db, KeyRange::all(), false), all);
    db.close().unwrap();
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options()).unwrap();
    assert_eq!(contents(&db, KeyRange::all(), false), all);
}

/// Rewrites `path` on `vfs` to hold `bytes`, durably.
fn overwrite(vfs: &SimVfs, path: &Path, bytes: &[u8]) {
    let file = vfs.create(path).unwrap();
    file.append(bytes).unwrap();
    file.sync_data().unwrap();
}

/// Builds a database with three tables moved to the last level and returns the paths of the
/// second and the third, which have the same size: their entries are alike, and the first
/// table's big value puts all their WAL offsets in two-byte varints.
fn two_tables(vfs: &SimVfs, key_len: usize) -> (PathBuf, PathBuf) {
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options()).unwrap();
    db.put(b"c", &[7; 200]).unwrap();
    db.flush().unwrap();
    for prefix in ["a", "b"] {
        for i in 0..20u32 {
            let key = format!("{prefix}{i:0key_len$}");
            db.put(key.as_bytes(), b"value").unwrap();
        }
        db.flush().unwrap();
    }
    db.compact_range(KeyRange::all()).unwrap();
    db.close().unwrap();
    let names = tables(vfs);
    assert_eq!(names.len(), 3, "{names:?}");
    let dir = Path::new(DIR);
    (dir.join(&names[1]), dir.join(&names[2]))
}

/// Two tables swapped on disk (same names, each with the other's bytes) make the open fail with
/// corruption naming a table and what disagrees with the manifest, whether their sizes differ
/// or only their keys do.
#[test]
fn swapped_tables_are_corruption_at_open() {
    for same_size in [true, false] {
        let vfs = SimVfs::new(14);
        // Keys of one width give tables of one size; a wider second set gives another.
        let (first, second) = two_tables(&vfs, 3);
        let (a, b) = (vfs.peek(&first).unwrap(), vfs.peek(&second).unwrap());
        let b = if same_size {
            b
        } else {
            let other = SimVfs::new(15);
            let db = Db::open_with_vfs(Arc::new(other.clone()), Path::new(DIR), options()).unwrap();
            for i in 0..30u32 {
                db.put(format!("b{i:05}").as_bytes(), b"value").unwrap();
            }
            db.flush().unwrap();
            db.close().unwrap();
            let name = tables(&other).pop().unwrap();
            other.peek(&Path::new(DIR).join(name)).unwrap()
        };
        assert_eq!(
            a.len() == b.len(),
            same_size,
            "{} and {} bytes",
            a.len(),
            b.len()
        );
        overwrite(&vfs, &first, &b);
        overwrite(&vfs, &second, &a);
        match Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options()) {
            Err(Error::Corruption { file, what, .. }) => {
                assert!(file == first || file == second, "{file:?}");
                let expected = if same_size { "smallest key" } else { "bytes" };
                assert!(what.contains(expected), "{what}");
                assert!(what.contains("manifest"), "{what}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
}

/// The tables in the database directory with their actual smallest and largest keys, by
/// smallest key (read with the public SST reader, not through the database).
fn spans(vfs: &SimVfs) -> Vec<(PathBuf, Vec<u8>, Vec<u8>)> {
    let cache = Arc::new(kvstore::sst::BlockCache::new(0));
    let mut spans: Vec<_> = tables(vfs)
        .into_iter()
        .map(|name| {
            let path = Path::new(DIR).join(name);
            let table = kvstore::sst::Table::open(vfs, &path, 0, Arc::clone(&cache)).unwrap();
            let (lo, hi) = table.key_span().unwrap().unwrap();
            (path, lo, hi)
        })
        .collect();
    spans.sort_by(|a, b| a.1.cmp(&b.1));
    spans
}

/// A table replaced while the database is open is caught when it is reopened after an
/// eviction: a point read and a scan both report the same corruption instead of answering from
/// the wrong table.
#[test]
fn a_table_swapped_after_open_is_corruption_at_its_lazy_open() {
    let opts = Options {
        sst_target_file_size_bytes: 1024,
        max_open_tables: OPEN_TABLES,
        ..options()
    };
    let vfs = SimVfs::new(16);
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts.clone()).unwrap();
    let key = |i: u64| format!("w{i:05}").into_bytes();
    for i in (0..400u64).map(|j| j * 137 % 400) {
        db.put(&key(i), &value(i)).unwrap();
    }
    db.compact_range(KeyRange::all()).unwrap();
    db.close().unwrap();
    let spans = spans(&vfs);
    assert!(spans.len() > 4 * OPEN_TABLES);
    // Open (which checks every table), then swap the two lowest tables, then make the cache
    // evict them by reading the keys above them.
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), opts).unwrap();
    let (first, second) = (&spans[0], &spans[1]);
    let (a, b) = (vfs.peek(&first.0).unwrap(), vfs.peek(&second.0).unwrap());
    overwrite(&vfs, &first.0, &b);
    overwrite(&vfs, &second.0, &a);
    for i in (0..400u64).rev().filter(|&i| key(i) > second.2) {
        assert_eq!(db.get(&key(i)).unwrap(), Some(value(i)));
    }
    let get = db.get(&first.1);
    let scan: Result<Vec<_>, _> = db
        .scan(KeyRange::all(), ScanOptions::default())
        .unwrap()
        .collect();
    for result in [get.map(drop), scan.map(drop)] {
        match result {
            Err(Error::Corruption { file, what, .. }) => {
                assert_eq!(file, first.0);
                assert!(what.contains("manifest"), "{what}");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }
}

/// A table entry newer than the manifest's `lastRevision` (here: the manifest rewritten with an
/// older one) is corruption for every read that meets the key, at any revision: never a version
/// silently hidden above the newest revision.
#[test]
fn a_table_entry_newer_than_the_manifest_says_is_corruption() {
    let vfs = SimVfs::new(17);
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options()).unwrap();
    for i in 0..5u64 {
        db.put(&[b'r', i as u8], b"v").unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let path = Path::new(DIR).join(kvstore::format::manifest::MANIFEST_FILE_NAME);
    let mut bytes = Vec::new();
    let file = vfs.open(&path).unwrap();
    bytes.resize(usize::try_from(file.size().unwrap()).unwrap(), 0);
    file.read_at(0, &mut bytes).unwrap();
    let mut manifest = kvstore::format::manifest::decode(&bytes).unwrap();
    assert_eq!(manifest.last_revision, 5);
    manifest.last_revision = 2;
    overwrite(&vfs, &path, &kvstore::format::manifest::encode(&manifest));
    let db = Db::open_with_vfs(Arc::new(vfs.clone()), Path::new(DIR), options()).unwrap();
    assert_eq!(db.stats().last_revision, 2);
    for at in [None, Some(2)] {
        let got = match at {
            None => db.get(b"r\x04").map(|_| ()),
            Some(r) => db.get_at(b"r\x04", r).map(|_| ()),
        };
        assert!(
            matches!(got, Err(Error::Corruption { ref what, .. }) if what.contains("lastRevision")),
            "{got:?}"
        );
    }
    let scanned: Result<Vec<_>, _> = db
        .scan(KeyRange::all(), ScanOptions::default())
        .unwrap()
        .collect();
    assert!(
        matches!(scanned, Err(Error::Corruption { .. })),
        "{scanned:?}"
    );
    assert!(
        db.put(b"r\x04", b"w").is_err(),
        "deciding a put of the key reads the table too"
    );
}
