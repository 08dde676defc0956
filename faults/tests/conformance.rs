//! One conformance suite, run against `OsVfs` in a temporary directory and against `SimVfs`:
//! both must behave as the `Vfs` trait documents, faults aside.

use std::io;
use std::path::Path;

use kvstore::vfs::{OsVfs, Vfs};
use kvstore_faults::SimVfs;

/// Checks every documented behaviour of `vfs` in the (not yet existing) directory `root`.
fn conformance(vfs: &dyn Vfs, root: &Path) {
    directories(vfs, root);
    create_append_read(vfs, root);
    open_and_truncate(vfs, root);
    set_len(vfs, root);
    rename_and_remove(vfs, root);
    hard_links(vfs, root);
    handles_survive_rename_and_remove(vfs, root);
    list(vfs, root);
    locks(vfs, root);
}

fn kind<T: std::fmt::Debug>(result: io::Result<T>) -> io::ErrorKind {
    result.expect_err("operation should fail").kind()
}

fn read_all(file: &dyn kvstore::vfs::VfsFile) -> Vec<u8> {
    let len = file.size().unwrap();
    let mut buf = vec![0; usize::try_from(len).unwrap()];
    file.read_at(0, &mut buf).unwrap();
    buf
}

fn directories(vfs: &dyn Vfs, root: &Path) {
    assert!(!vfs.exists(root).unwrap());
    assert_eq!(kind(vfs.list(root)), io::ErrorKind::NotFound);
    assert_eq!(kind(vfs.create(&root.join("f"))), io::ErrorKind::NotFound);
    vfs.create_dir_all(&root.join("sub/deeper")).unwrap();
    vfs.create_dir_all(root).unwrap();
    vfs.create_dir_all(&root.join("sub")).unwrap();
    assert!(vfs.exists(root).unwrap());
    assert!(vfs.exists(&root.join("sub/deeper")).unwrap());
    assert_eq!(vfs.list(root).unwrap(), vec!["sub".to_owned()]);
    vfs.sync_dir(root).unwrap();
}

fn create_append_read(vfs: &dyn Vfs, root: &Path) {
    let path = root.join("data");
    let file = vfs.create(&path).unwrap();
    assert!(vfs.exists(&path).unwrap());
    assert_eq!(file.size().unwrap(), 0);
    file.append(b"hello").unwrap();
    file.append(b"").unwrap();
    file.append(b", world").unwrap();
    assert_eq!(file.size().unwrap(), 12);
    let mut buf = [0; 5];
    file.read_at(7, &mut buf).unwrap();
    assert_eq!(&buf, b"world");
    let mut empty = [0; 0];
    file.read_at(12, &mut empty).unwrap();
    assert_eq!(
        kind(file.read_at(8, &mut buf)),
        io::ErrorKind::UnexpectedEof
    );
    file.sync_data().unwrap();
    vfs.sync_dir(root).unwrap();
    assert_eq!(read_all(file.as_ref()), b"hello, world");
    vfs.remove(&path).unwrap();
}

fn open_and_truncate(vfs: &dyn Vfs, root: &Path) {
    let path = root.join("reopened");
    assert_eq!(kind(vfs.open(&path)), io::ErrorKind::NotFound);
    let file = vfs.create(&path).unwrap();
    file.append(b"abc").unwrap();
    drop(file);
    let again = vfs.open(&path).unwrap();
    assert_eq!(again.size().unwrap(), 3);
    again.append(b"def").unwrap();
    assert_eq!(read_all(again.as_ref()), b"abcdef");
    drop(again);
    let truncated = vfs.create(&path).unwrap();
    assert_eq!(truncated.size().unwrap(), 0);
    vfs.remove(&path).unwrap();
}

fn set_len(vfs: &dyn Vfs, root: &Path) {
    let mut file = vfs.create(&root.join("cut")).unwrap();
    file.append(b"0123456789").unwrap();
    file.set_len(4).unwrap();
    assert_eq!(file.size().unwrap(), 4);
    file.append(b"xy").unwrap();
    assert_eq!(read_all(file.as_ref()), b"0123xy");
    file.set_len(8).unwrap();
    assert_eq!(read_all(file.as_ref()), b"0123xy\0\0");
    file.sync_data().unwrap();
    vfs.remove(&root.join("cut")).unwrap();
}

fn rename_and_remove(vfs: &dyn Vfs, root: &Path) {
    let (a, b) = (root.join("a"), root.join("b"));
    vfs.create(&a).unwrap().append(b"new").unwrap();
    vfs.create(&b).unwrap().append(b"old").unwrap();
    vfs.rename(&a, &b).unwrap();
    assert!(!vfs.exists(&a).unwrap());
    assert_eq!(read_all(vfs.open(&b).unwrap().as_ref()), b"new");
    assert_eq!(kind(vfs.rename(&a, &b)), io::ErrorKind::NotFound);
    vfs.rename(&b, &root.join("sub/b")).unwrap();
    assert!(vfs.exists(&root.join("sub/b")).unwrap());
    vfs.sync_dir(root).unwrap();
    vfs.sync_dir(&root.join("sub")).unwrap();
    vfs.remove(&root.join("sub/b")).unwrap();
    assert!(!vfs.exists(&root.join("sub/b")).unwrap());
    assert_eq!(
        kind(vfs.remove(&root.join("sub/b"))),
        io::ErrorKind::NotFound
    );
}

fn hard_links(vfs: &dyn Vfs, root: &Path) {
    let (original, link) = (root.join("original"), root.join("sub/link"));
    vfs.create(&original).unwrap().append(b"shared").unwrap();
    vfs.hard_link(&original, &link).unwrap();
    assert_eq!(read_all(vfs.open(&link).unwrap().as_ref()), b"shared");
    // One file, two names: an append through one is read through the other.
    vfs.open(&link).unwrap().append(b"!").unwrap();
    assert_eq!(read_all(vfs.open(&original).unwrap().as_ref()), b"shared!");
    assert_eq!(
        kind(vfs.hard_link(&original, &link)),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(vfs.hard_link(&root.join("missing"), &root.join("other"))),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(vfs.hard_link(&original, &root.join("no/such/dir"))),
        io::ErrorKind::NotFound
    );
    // Removing one name leaves the other.
    vfs.remove(&original).unwrap();
    assert_eq!(read_all(vfs.open(&link).unwrap().as_ref()), b"shared!");
    vfs.remove(&link).unwrap();
    vfs.sync_dir(root).unwrap();
    vfs.sync_dir(&root.join("sub")).unwrap();
}

fn handles_survive_rename_and_remove(vfs: &dyn Vfs, root: &Path) {
    let path = root.join("moving");
    let file = vfs.create(&path).unwrap();
    file.append(b"one").unwrap();
    vfs.rename(&path, &root.join("moved")).unwrap();
    file.append(b"two").unwrap();
    assert_eq!(
        read_all(vfs.open(&root.join("moved")).unwrap().as_ref()),
        b"onetwo"
    );
    vfs.remove(&root.join("moved")).unwrap();
    file.append(b"three").unwrap();
    assert_eq!(read_all(file.as_ref()), b"onetwothree");
    file.sync_data().unwrap();
}

fn list(vfs: &dyn Vfs, root: &Path) {
    for name in ["b.sst", "a.wal", "c"] {
        vfs.create(&root.join(name)).unwrap();
    }
    assert_eq!(vfs.list(root).unwrap(), ["a.wal", "b.sst", "c", "sub"]);
    assert_eq!(vfs.list(&root.join("sub")).unwrap(), ["deeper"]);
    for name in ["b.sst", "a.wal", "c"] {
        vfs.remove(&root.join(name)).unwrap();
    }
    assert_eq!(vfs.list(root).unwrap(), ["sub"]);
}

fn locks(vfs: &dyn Vfs, root: &Path) {
    let path = root.join("LOCK");
    let held = vfs.lock(&path).unwrap();
    assert!(vfs.exists(&path).unwrap());
    assert_eq!(kind(vfs.lock(&path)), io::ErrorKind::WouldBlock);
    drop(held);
    let again = vfs.lock(&path).unwrap();
    assert_eq!(kind(vfs.lock(&path)), io::ErrorKind::WouldBlock);
    drop(again);
}

#[test]
fn os_vfs_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&OsVfs, &dir.path().join("db"));
}

#[test]
fn sim_vfs_conforms_at_absolute_root() {
    conformance(&SimVfs::new(1), Path::new("/db"));
}

#[test]
fn sim_vfs_conforms_at_relative_root() {
    conformance(&SimVfs::new(2), Path::new("nested/db"));
}

#[test]
fn sim_vfs_conforms_as_a_trait_object() {
    let vfs: std::sync::Arc<dyn Vfs> = std::sync::Arc::new(SimVfs::new(3));
    conformance(vfs.as_ref(), Path::new("/x/y"));
}
