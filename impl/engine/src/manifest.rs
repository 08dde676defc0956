//! The manifest *store*: reading `manifest.json` through the [`Vfs`], persisting a new one
//! atomically, and converting between the on-disk [`Manifest`] and the in-memory [`Version`].
//!
//! Invariants:
//! - A manifest is replaced only by the protocol of `spec/FORMAT.md` § 5.2: write
//!   `manifest.json.tmp`, `sync_data` it, rename it onto `manifest.json`, `sync_dir`. When
//!   [`persist`] returns `Ok` the new manifest is durable; when it fails the durable manifest is
//!   the old one or the new one, both complete, and the caller must not act on the new one.
//! - [`to_version`] goes through [`Version::apply`], so a loaded manifest passes the same checks
//!   as a live flush or compaction. The on-disk file record has no `max_revision`; loaded files get
//!   the manifest's `lastRevision` (an upper bound, which is all the engine relies on), and L0
//!   recency is the file number (see [`crate::version`]).
//! - [`to_manifest`] of [`to_version`] of a manifest lists the same files with the same fields.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::manifest::{
    self as codec, MANIFEST_FILE_NAME, MANIFEST_LEN_MAX, MANIFEST_TMP_FILE_NAME, Manifest,
    sst_file_name,
};
use crate::version::{FileMeta, Version, VersionEdit};
use crate::vfs::Vfs;

/// Parses an SST file name (`<20 digits>.sst`) into its number (the codec's rule, re-exported
/// here for the directory scan of recovery).
pub use crate::format::manifest::parse_sst_file_name;

/// Reads and decodes `dir/manifest.json`; `Ok(None)` if it does not exist.
pub fn load(vfs: &dyn Vfs, dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let file = match vfs.open_read(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path, e)),
    };
    let len = file.size().map_err(|e| Error::io("size", &path, e))?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MANIFEST_LEN_MAX)
        .ok_or_else(|| Error::Corruption {
            file: path.clone(),
            offset: 0,
            what: format!("manifest is {len} bytes, more than MANIFEST_LEN_MAX"),
        })?;
    let mut bytes = vec![0u8; len];
    file.read_at(0, &mut bytes)
        .map_err(|e| Error::io("read", &path, e))?;
    codec::decode(&bytes)
        .map(Some)
        .map_err(|e| Error::corruption(&path, 0, &e))
}

/// Makes `manifest` the durable manifest of `dir` (the protocol of the module doc).
pub fn persist(vfs: &dyn Vfs, dir: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = dir.join(MANIFEST_TMP_FILE_NAME);
    let path = dir.join(MANIFEST_FILE_NAME);
    let bytes = codec::encode(manifest);
    debug_assert!(
        codec::decode(&bytes).as_ref() == Ok(manifest),
        "manifest does not round-trip"
    );
    write_synced(vfs, &tmp, &bytes)?;
    fail::fail_point!("manifest::before_rename", |_| Err(Error::failpoint(
        "manifest::before_rename"
    )));
    vfs.rename(&tmp, &path)
        .map_err(|e| Error::io("rename", &tmp, e))?;
    fail::fail_point!("manifest::after_rename", |_| Err(Error::failpoint(
        "manifest::after_rename"
    )));
    vfs.sync_dir(dir).map_err(|e| Error::io("sync_dir", dir, e))
}

/// Creates (or truncates) file `path`, writes `bytes` and syncs them: the first half of an
/// atomic replace, before the rename that names the file (its name is the caller's to sync).
pub(crate) fn write_synced(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = vfs.create(path).map_err(|e| Error::io("create", path, e))?;
    file.append(bytes)
        .map_err(|e| Error::io("append", path, e))?;
    file.sync_data()
        .map_err(|e| Error::io("sync_data", path, e))
}

/// The in-memory version a manifest describes, with `num_levels` levels.
pub fn to_version(manifest: &Manifest, num_levels: usize, path: &Path) -> Result<Version> {
    let corrupt = |what: String| Error::Corruption {
        file: path.to_path_buf(),
        offset: 0,
        what,
    };
    let mut add = Vec::with_capacity(manifest.files.len());
    for f in &manifest.files {
        let number = parse_sst_file_name(&f.file)
            .ok_or_else(|| corrupt(format!("file {:?} is not an SST name", f.file)))?;
        let level = usize::try_from(f.level).unwrap_or(usize::MAX);
        add.push(FileMeta {
            number,
            level,
            smallest_key: f.min_key.clone(),
            largest_key: f.max_key.clone(),
            size_bytes: f.size,
            wal_offset: f.wal_offset,
            created_at_ms: f.created_at_ms,
            max_revision: manifest.last_revision,
        });
    }
    let edit = VersionEdit {
        add,
        remove: Vec::new(),
        wal_offset: Some(manifest.wal_offset),
        next_file_number: Some(manifest.next_file_number),
        last_revision: Some(manifest.last_revision),
        last_stamp: Some(manifest.last_stamp),
        history_horizon: Some(manifest.history_horizon),
        leases: Some(manifest.leases.as_slice().into()),
    };
    Version::new(num_levels)
        .apply(&edit)
        .map_err(|e| corrupt(e.to_string()))
}

/// The manifest that records `version`.
pub fn to_manifest(version: &Version) -> Manifest {
    let files = (0..version.num_levels())
        .flat_map(|level| version.files(level).iter())
        .map(|f| codec::FileMeta {
            file: sst_file_name(f.number),
            level: u32::try_from(f.level).unwrap_or(u32::MAX),
            min_key: f.smallest_key.clone(),
            max_key: f.largest_key.clone(),
            size: f.size_bytes,
            wal_offset: f.wal_offset,
            created_at_ms: f.created_at_ms,
        })
        .collect();
    Manifest {
        next_file_number: version.next_file_number(),
        wal_offset: version.wal_offset(),
        last_revision: version.last_revision(),
        last_stamp: version.last_stamp(),
        history_horizon: version.history_horizon(),
        files,
        leases: version.leases().to_vec(),
        ..Manifest::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vfs::OsVfs;

    fn sample() -> Manifest {
        Manifest {
            next_file_number: 9,
            wal_offset: 512,
            last_revision: 30,
            last_stamp: 12,
            files: vec![
                codec::FileMeta {
                    file: sst_file_name(3),
                    level: 0,
                    min_key: b"a".to_vec(),
                    max_key: b"m".to_vec(),
                    size: 100,
                    wal_offset: 256,
                    created_at_ms: 5,
                },
                codec::FileMeta {
                    file: sst_file_name(7),
                    level: 1,
                    min_key: b"b".to_vec(),
                    max_key: b"c".to_vec(),
                    size: 200,
                    wal_offset: 512,
                    created_at_ms: 6,
                },
            ],
            ..Manifest::default()
        }
    }

    #[test]
    fn version_round_trip_keeps_every_field() {
        let m = sample();
        let v = to_version(&m, 7, Path::new("m")).unwrap();
        assert_eq!(v.files(0).len(), 1);
        assert_eq!(v.files(1).len(), 1);
        let mut back = to_manifest(&v);
        back.files.sort_by(|a, b| a.file.cmp(&b.file));
        assert_eq!(back, m);
    }

    #[test]
    fn bad_file_names_and_levels_are_corruption() {
        let mut m = sample();
        m.files[0].file = "x.sst".to_owned();
        assert!(matches!(
            to_version(&m, 7, Path::new("m")),
            Err(Error::Corruption { .. })
        ));
        let m = sample();
        assert!(to_version(&m, 1, Path::new("m")).is_err());
    }

    #[test]
    fn persist_then_load_and_missing_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let vfs = OsVfs;
        assert_eq!(load(&vfs, dir.path()).unwrap(), None);
        persist(&vfs, dir.path(), &sample()).unwrap();
        assert_eq!(load(&vfs, dir.path()).unwrap(), Some(sample()));
        assert!(!dir.path().join(MANIFEST_TMP_FILE_NAME).exists());
        std::fs::write(dir.path().join(MANIFEST_FILE_NAME), b"{}").unwrap();
        assert!(matches!(
            load(&vfs, dir.path()),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn sst_names_parse_strictly() {
        assert_eq!(parse_sst_file_name(&sst_file_name(42)), Some(42));
        assert_eq!(parse_sst_file_name("42.sst"), None);
        assert_eq!(parse_sst_file_name("0000000000000000004a.sst"), None);
    }
}
