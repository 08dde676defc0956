//! Criterion micro-benchmarks: the codecs (WAL record, SST block, varint, bloom), the memtable,
//! and `Db` operations on a warm database (put, get hit/miss, scan, batch commit per durability).
//!
//! Run: `cargo bench -p kvstore-benches --bench micro` (add `-- <filter>` for one group).
//! These are wall-clock figures for local comparison; CI's regression check counts instructions
//! instead (`ci/bench-check.sh`).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kvstore::entry::{Entry, VersionMeta};
use kvstore::format::sst::block::{decode_block, encode_block};
use kvstore::format::sst::{BlockHandle, Bloom, BloomBuilder, Compression, encode_entry};
use kvstore::format::wal::{BatchOp, WalBody, WalRecord, decode_record, encode_record};
use kvstore::format::{checksum, varint};
use kvstore::memtable::MemTable;
use kvstore::{Db, Durability, Options, ScanOptions, WriteBatch, WriteOptions};
use kvstore_benches::workload::{self, KEY_PREFIX};

const SEED: u64 = 42;
/// Entries in the warm database and the memtable benchmarks.
const WARM_ENTRIES: u64 = 20_000;
/// Entries per batch in the WAL record and batch-commit benchmarks.
const BATCH_ENTRIES: u64 = 100;

fn entry(i: u64) -> Entry {
    Entry {
        key: workload::key(i).to_vec(),
        value: Some(workload::value(SEED, i).to_vec()),
        revision: i + 1,
        meta: VersionMeta::first(true, i + 1),
        wal_offset: i * 300,
        created_at_ms: 1_700_000_000_000,
    }
}

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");

    let record = WalRecord {
        revision: 7,
        created_at_ms: 1_700_000_000_000,
        synced_through: 0,
        stamp: 0,
        body: WalBody::Batch(
            (0..BATCH_ENTRIES)
                .map(|i| BatchOp::Put {
                    key: workload::key(i).to_vec(),
                    value: workload::value(SEED, i).to_vec(),
                    lease: 0,
                })
                .collect(),
        ),
    };
    let encoded = encode_record(&record).expect("a valid record encodes");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("wal_record_encode_batch100", |b| {
        b.iter(|| encode_record(black_box(&record)))
    });
    g.bench_function("wal_record_decode_batch100", |b| {
        b.iter(|| decode_record(black_box(&encoded)))
    });

    // One ~4 KiB SST block of 15 entries (the engine's default block size).
    let mut raw = Vec::new();
    for i in 0..15 {
        encode_entry(entry(i).as_sst(), &mut raw);
    }
    for (name, compression) in [("lz4", Compression::Lz4), ("raw", Compression::None)] {
        let (stored, compressed) = encode_block(&raw, compression);
        let handle = BlockHandle {
            offset: 0,
            stored_len: stored.len() as u32,
            compressed,
            crc32c: checksum::crc32c(&stored),
        };
        g.throughput(Throughput::Bytes(raw.len() as u64));
        g.bench_function(format!("sst_block_encode_{name}"), |b| {
            b.iter(|| encode_block(black_box(&raw), compression))
        });
        g.bench_function(format!("sst_block_decode_{name}"), |b| {
            b.iter(|| decode_block(black_box(&stored), &handle))
        });
    }

    let values: Vec<u64> = (0..1000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9) >> (i % 60))
        .collect();
    let mut buf = Vec::new();
    for &v in &values {
        varint::encode(v, &mut buf);
    }
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("varint_encode_1000", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(buf.len());
            for &v in &values {
                varint::encode(black_box(v), &mut out);
            }
            out
        })
    });
    g.bench_function("varint_decode_1000", |b| {
        b.iter(|| {
            let mut rest = &buf[..];
            let mut sum = 0u64;
            while let Ok((v, used)) = varint::decode(rest) {
                sum = sum.wrapping_add(v);
                rest = &rest[used..];
            }
            sum
        })
    });

    let mut builder = BloomBuilder::default();
    for i in 0..WARM_ENTRIES {
        builder.add(&workload::key(i));
    }
    let bloom = builder.build(10);
    let bloom_bytes = bloom.encode();
    g.throughput(Throughput::Elements(1));
    g.bench_function("bloom_build_20k", |b| b.iter(|| builder.build(10)));
    g.bench_function("bloom_decode_20k", |b| {
        b.iter(|| Bloom::decode(black_box(&bloom_bytes)))
    });
    g.bench_function("bloom_may_contain_hit", |b| {
        let key = workload::key(1234);
        b.iter(|| bloom.may_contain(black_box(&key)))
    });
    g.bench_function("bloom_may_contain_miss", |b| {
        let key = workload::key(WARM_ENTRIES + 1234);
        b.iter(|| bloom.may_contain(black_box(&key)))
    });
    g.finish();
}

fn memtable(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    let entries: Vec<Entry> = (0..WARM_ENTRIES).map(entry).collect();
    g.throughput(Throughput::Elements(WARM_ENTRIES));
    g.bench_function("insert_20k", |b| {
        b.iter_batched(
            || entries.clone(),
            |entries| {
                let table = MemTable::new();
                for e in entries {
                    table.insert(e);
                }
                table
            },
            BatchSize::LargeInput,
        )
    });
    let table = MemTable::new();
    for e in entries {
        table.insert(e);
    }
    let order = workload::shuffled(WARM_ENTRIES, SEED);
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_hit", |b| {
        let mut next = order.iter().cycle();
        b.iter(|| {
            let i = *next.next().unwrap_or(&0);
            table.get(&workload::key(i), u64::MAX)
        })
    });
    g.bench_function("get_miss", |b| {
        let key = workload::key(WARM_ENTRIES + 7);
        b.iter(|| table.get(black_box(&key), u64::MAX))
    });
    g.finish();
}

/// A warm database: WARM_ENTRIES entries, flushed to SSTs, in a temporary directory.
fn warm_db(dir: &std::path::Path) -> Db {
    let options = Options {
        durability: Durability::Buffered,
        ..Options::default()
    };
    let db = Db::open(dir, options).expect("open");
    for start in (0..WARM_ENTRIES).step_by(1000) {
        let mut batch = WriteBatch::new();
        for i in start..start + 1000 {
            batch.put(&workload::key(i), &workload::value(SEED, i));
        }
        db.write(batch).expect("write");
    }
    db.flush().expect("flush");
    db
}

fn db_ops(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = warm_db(dir.path());
    let order = workload::shuffled(WARM_ENTRIES, SEED);
    let mut g = c.benchmark_group("db");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_hit", |b| {
        let mut next = order.iter().cycle();
        b.iter(|| db.get(&workload::key(*next.next().unwrap_or(&0))))
    });
    g.bench_function("get_miss", |b| {
        let mut next = order.iter().cycle();
        b.iter(|| db.get(&workload::key(WARM_ENTRIES + *next.next().unwrap_or(&0))))
    });
    g.bench_function("put_buffered", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = (i + 1) % WARM_ENTRIES;
            db.put(&workload::key(i), &workload::value(SEED + 1, i))
        })
    });
    g.throughput(Throughput::Elements(WARM_ENTRIES));
    g.bench_function("scan_prefix_20k", |b| {
        b.iter(|| {
            db.scan_prefix(KEY_PREFIX, ScanOptions::default())
                .expect("scan")
                .count()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("batch_commit_100");
    g.throughput(Throughput::Elements(BATCH_ENTRIES));
    g.sample_size(20);
    for (name, durability) in [
        ("buffered", Durability::Buffered),
        ("group_commit", Durability::GroupCommit),
        ("sync", Durability::Sync),
    ] {
        let mut start = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut batch = WriteBatch::new();
                for i in start..start + BATCH_ENTRIES {
                    batch.put(&workload::key(i % WARM_ENTRIES), &workload::value(SEED, i));
                }
                start += BATCH_ENTRIES;
                db.write_with(
                    batch,
                    WriteOptions {
                        durability: Some(durability),
                        ..WriteOptions::default()
                    },
                )
            })
        });
    }
    g.finish();
    db.close().expect("close");
}

criterion_group!(benches, codecs, memtable, db_ops);
criterion_main!(benches);
