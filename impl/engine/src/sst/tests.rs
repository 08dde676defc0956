//! Unit tests on [`crate::vfs::OsVfs`]; the property, corruption and simulated-disk tests are in
//! `impl/engine/tests/sst_io.rs`.

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
        meta: crate::entry::VersionMeta::first(
            ((!i.is_multiple_of(7)).then(|| vec![i as u8; (i % 50) as usize])).is_some(),
            u64::from(i) + 1,
        ),
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
        assert_eq!(table.get(&e.key, u64::MAX).unwrap().as_ref(), Some(e));
    }
    assert_eq!(table.get(b"key", u64::MAX).unwrap(), None);
    assert_eq!(table.get(b"key00001x", u64::MAX).unwrap(), None);
    assert_eq!(table.get(b"zzz", u64::MAX).unwrap(), None);
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
    table.get(&entries[3].key, u64::MAX).unwrap();
    assert_eq!((cache.hits(), cache.misses()), (0, 1));
    table.get(&entries[3].key, u64::MAX).unwrap();
    assert_eq!((cache.hits(), cache.misses()), (1, 1));
    // Absent keys the bloom rejects touch neither the cache nor the file.
    let mut bloom_misses = 0;
    for i in 0..200u32 {
        let lookups = cache.hits() + cache.misses();
        let key = format!("absent{i}");
        assert_eq!(table.get(key.as_bytes(), u64::MAX).unwrap(), None);
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
            meta: crate::entry::VersionMeta::first(true, entry(i).revision),
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

/// A table of `n` entries in 256-byte blocks, opened with a fresh 1 MiB cache.
fn open_small_block_table(
    dir: &Path,
    number: u64,
    n: u32,
) -> (Vec<Entry>, Arc<Table>, Arc<BlockCache>) {
    let path = dir.join(format!("{number:06}.sst"));
    let entries: Vec<Entry> = (0..n).map(entry).collect();
    write(&path, small_blocks(), &entries);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let table = Table::open(&OsVfs, &path, number, Arc::clone(&cache)).unwrap();
    (entries, table, cache)
}

#[test]
fn gets_in_key_order_read_ahead_and_shuffled_gets_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, table, cache) = open_small_block_table(dir.path(), 5, 2000);
    let blocks = table.block_count() as u64;
    assert!(blocks > 100, "{blocks}");
    for e in &entries {
        assert_eq!(table.get(&e.key, u64::MAX).unwrap().as_ref(), Some(e));
    }
    // Without read-ahead every block would be one miss; with it, runs of 8..64 KiB of 256-byte
    // blocks are read with one miss each.
    assert!(
        cache.misses() * 10 < blocks,
        "{} misses, {blocks} blocks",
        cache.misses()
    );

    // A stride of 7 blocks never asks for the block after the last one read: one miss per block
    // asked for, nothing read ahead, nothing cached that was not asked for.
    let (entries, table, cache) = open_small_block_table(dir.path(), 6, 2000);
    let mut asked = std::collections::BTreeSet::new();
    for e in &entries {
        let block = table.find_block(&e.key).unwrap();
        if block % 7 == 0 && asked.insert(block) {
            assert_eq!(table.get(&e.key, u64::MAX).unwrap().as_ref(), Some(e));
        }
    }
    assert_eq!(cache.misses(), asked.len() as u64);
    assert_eq!(cache.len(), asked.len());
}

#[test]
fn a_bad_block_in_a_read_ahead_run_fails_only_the_reads_that_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let (entries, table, _) = open_small_block_table(dir.path(), 7, 1000);
    let bad = 6;
    let handle = table.index().blocks[bad].handle;
    drop(table);
    let path = dir.path().join("000007.sst");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[handle.offset as usize + 1] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let table = Table::open(&OsVfs, &path, 7, Arc::new(BlockCache::new(1 << 20))).unwrap();
    let mut failed = 0;
    for e in &entries {
        match table.get(&e.key, u64::MAX) {
            Ok(found) => assert_eq!(found.as_ref(), Some(e)),
            Err(Error::Corruption { offset, .. }) => {
                assert_eq!(table.find_block(&e.key), Some(bad));
                assert_eq!(offset, handle.offset);
                failed += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    let in_bad = entries
        .iter()
        .filter(|e| table.find_block(&e.key) == Some(bad))
        .count();
    assert!(in_bad > 0);
    assert_eq!(failed, in_bad);

    // A scan that stops before the bad block succeeds although its read-ahead covered it; one
    // that reaches it fails there. No cache, so the scan's own run reads the bad block.
    let table = Table::open(&OsVfs, &path, 7, Arc::new(BlockCache::new(0))).unwrap();
    let before_bad = entries
        .iter()
        .take_while(|e| table.find_block(&e.key) < Some(bad))
        .count();
    let scan = table.iter(KeyRange::all(), Direction::Forward);
    let got: Vec<Entry> = scan.take(before_bad).map(Result::unwrap).collect();
    assert_eq!(got, entries[..before_bad]);
    let mut scan = table.iter(KeyRange::all(), Direction::Forward);
    assert!(scan.by_ref().take(before_bad).all(|r| r.is_ok()));
    assert!(matches!(scan.next(), Some(Err(Error::Corruption { .. }))));
}
