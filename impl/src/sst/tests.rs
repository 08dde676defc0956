//! Unit tests on [`crate::vfs::OsVfs`]; the property, corruption and simulated-disk tests are in
//! `impl/tests/sst_io.rs`.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::entry::Entry;
use crate::error::Error;
use crate::format::sst::{Compression, TableOptions};
use crate::options::Options;
use crate::range::{Direction, KeyRange};
use crate::vfs::OsVfs;

fn entry(i: u32) -> Entry {
    Entry {
        key: format!("key{i:05}").into_bytes(),
        value: (!i.is_multiple_of(7)).then(|| vec![i as u8; (i % 50) as usize]),
        revision: u64::from(i) + 1,
        wal_offset: u64::from(i) * 10,
        created_at_ms: 1_700_000_000_000,
    }
}

fn small_blocks() -> TableOptions {
    TableOptions {
        block_size_bytes: 256,
        compression: Compression::Lz4,
        bloom_bits_per_key: 10,
    }
}

fn write(
    path: &Path,
    options: TableOptions,
    entries: &[Entry],
) -> crate::format::sst::TableSummary {
    let mut w = TableWriter::create(&OsVfs, path, options).unwrap();
    for e in entries {
        w.add(e).unwrap();
    }
    assert_eq!(w.entry_count(), entries.len() as u64);
    w.finish().unwrap()
}

#[test]
fn write_open_get_and_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000001.sst");
    let entries: Vec<Entry> = (0..500).map(entry).collect();
    let summary = write(&path, small_blocks(), &entries);
    assert!(summary.block_count > 10);
    let table = Table::open(&OsVfs, &path, 1, Arc::new(BlockCache::new(1 << 20))).unwrap();
    assert_eq!(table.size_bytes(), summary.file_size);
    assert_eq!(table.block_count() as u64, summary.block_count);
    assert_eq!((table.file_number(), table.path()), (1, path.as_path()));
    for e in &entries {
        assert_eq!(table.get(&e.key).unwrap().as_ref(), Some(e));
    }
    assert_eq!(table.get(b"key").unwrap(), None);
    assert_eq!(table.get(b"key00001x").unwrap(), None);
    assert_eq!(table.get(b"zzz").unwrap(), None);
    let all: Vec<Entry> = table
        .iter(KeyRange::all(), Direction::Forward)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all, entries);
    let range = KeyRange::new(
        Bound::Excluded(b"key00100".to_vec()),
        Bound::Included(b"key00200".to_vec()),
    );
    let rev: Vec<Entry> = table
        .iter(range, Direction::Reverse)
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<Entry> = entries[101..=200].iter().rev().cloned().collect();
    assert_eq!(rev, expected);
}

#[test]
fn second_get_of_a_block_is_a_cache_hit_and_bloom_miss_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000002.sst");
    let entries: Vec<Entry> = (0..100).map(entry).collect();
    write(&path, small_blocks(), &entries);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table = Table::open(&OsVfs, &path, 2, Arc::clone(&cache)).unwrap();
    table.get(&entries[3].key).unwrap();
    assert_eq!((cache.hits(), cache.misses()), (0, 1));
    table.get(&entries[3].key).unwrap();
    assert_eq!((cache.hits(), cache.misses()), (1, 1));
    // Absent keys the bloom rejects touch neither the cache nor the file.
    let mut bloom_misses = 0;
    for i in 0..200u32 {
        let lookups = cache.hits() + cache.misses();
        let key = format!("absent{i}");
        assert_eq!(table.get(key.as_bytes()).unwrap(), None);
        if cache.hits() + cache.misses() == lookups {
            bloom_misses += 1;
        }
    }
    assert!(bloom_misses > 150, "{bloom_misses}");
    cache.forget_file(2);
    assert!(cache.is_empty());
}

#[test]
fn writer_rejects_disorder_and_empty_tables_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000003.sst");
    let mut w = TableWriter::create(&OsVfs, &path, TableOptions::default()).unwrap();
    w.add(&entry(5)).unwrap();
    assert!(matches!(w.add(&entry(5)), Err(Error::InvalidArgument(_))));
    assert!(matches!(w.add(&entry(4)), Err(Error::InvalidArgument(_))));
    w.add(&entry(6)).unwrap();
    assert_eq!(w.entry_count(), 2);
    assert!(w.estimated_size_bytes() > 0);
    w.finish().unwrap();
    let empty = TableWriter::create(&OsVfs, &path, TableOptions::default()).unwrap();
    assert!(matches!(empty.finish(), Err(Error::InvalidArgument(_))));
}

#[test]
fn estimated_size_tracks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("000004.sst");
    let mut w = TableWriter::create(&OsVfs, &path, small_blocks()).unwrap();
    let value_len = 1000;
    for i in 0..600 {
        // Bytes LZ4 cannot shrink, so the file really grows by ~1 KB an entry.
        let mut state = u64::from(i) | 1 << 40;
        let value = (0..value_len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        w.add(&Entry {
            value: Some(value),
            ..entry(i)
        })
        .unwrap();
        // Compression can shrink a block as it is flushed, so the estimate is not monotonic, but
        // it always covers what is on disk plus what is buffered (at most one append chunk and
        // one open block).
        let on_disk = std::fs::metadata(&path).unwrap().len();
        assert!(w.estimated_size_bytes() >= on_disk);
        let slack = (super::writer::APPEND_CHUNK_BYTES + 2 * (value_len + 100)) as u64;
        assert!(w.estimated_size_bytes() <= on_disk + slack);
    }
    let on_disk_before_finish = std::fs::metadata(&path).unwrap().len();
    assert!(
        on_disk_before_finish > 0,
        "600 KB of entries cross an append chunk"
    );
    let summary = w.finish().unwrap();
    assert!(summary.file_size >= on_disk_before_finish);
}

#[test]
fn table_options_follow_engine_options() {
    let o = Options {
        sst_block_size_bytes: 8192,
        compression: false,
        bloom_bits_per_key: 0,
        ..Options::default()
    };
    assert_eq!(
        table_options(&o),
        TableOptions {
            block_size_bytes: 8192,
            compression: Compression::None,
            bloom_bits_per_key: 0
        }
    );
    assert_eq!(
        table_options(&Options::default()).compression,
        Compression::Lz4
    );
}

#[test]
fn table_and_iter_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Table>();
    send_sync::<BlockCache>();
    send::<TableIter>();
    fn source<T: crate::iter::EntrySource>() {}
    source::<TableIter>();
}
