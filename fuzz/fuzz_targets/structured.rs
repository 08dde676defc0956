//! Builds valid structures from arbitrary input, encodes them, checks decode(encode(x)) == x,
//! then applies arbitrary mutations (bit flips, overwrites, truncation) and decodes again: no
//! panic, and a mutated WAL never replays records that were not written.
#![no_main]

use arbitrary::Arbitrary;
use kvstore::format::manifest::{self, FileMeta, LeaseMeta, Manifest};
use kvstore::format::sst::{Compression, Entry, TableBuilder, TableOptions, decode_table};
use kvstore::format::wal::{self, BatchOp, ReplayEnd, Segment, WalBody, WalRecord};
use kvstore::format::{LEASE_ID_MAX, LEASE_TTL_MS_MAX};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// Bounds on generated sizes, so one input stays fast.
const OPS_MAX: usize = 16;
const RECORDS_MAX: usize = 16;

#[derive(Debug, Arbitrary)]
enum Mutation {
    Flip { at: u16, bit: u8 },
    Set { at: u16, byte: u8 },
    Truncate { len: u16 },
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        if bytes.is_empty() {
            return;
        }
        match *m {
            Mutation::Flip { at, bit } => {
                let i = usize::from(at) % bytes.len();
                bytes[i] ^= 1 << (bit % 8);
            }
            Mutation::Set { at, byte } => {
                let i = usize::from(at) % bytes.len();
                bytes[i] = byte;
            }
            Mutation::Truncate { len } => bytes.truncate(usize::from(len) % (bytes.len() + 1)),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum ArbOp {
    Put(Vec<u8>, Vec<u8>, u64),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Grant(u64, u64),
    Revoke(u64, std::collections::BTreeSet<Vec<u8>>),
}

/// An arbitrary number as a lease id the format carries (1..=LEASE_ID_MAX).
fn lease_id(n: u64) -> u64 {
    n % LEASE_ID_MAX + 1
}

#[derive(Debug, Arbitrary)]
enum Input {
    Wal {
        ops: Vec<(ArbOp, u64)>,
        sync_every: u8,
        mutations: Vec<Mutation>,
    },
    Sst {
        entries: BTreeMap<Vec<u8>, (Option<Vec<u8>>, u64, u64, u64)>,
        block: u16,
        lz4: bool,
        bits: u8,
        mutations: Vec<Mutation>,
    },
    Manifest {
        files: Vec<(u64, u8, Vec<u8>, Vec<u8>, u64, u64, u64)>,
        head: (u64, u64, u64),
        leases: BTreeMap<u64, u64>,
        mutations: Vec<Mutation>,
    },
}

fn wal_case(ops: Vec<(ArbOp, u64)>, sync_every: u8, mutations: &[Mutation]) {
    let mut log = Vec::new();
    let mut written = Vec::new();
    let mut synced = 0u64;
    for (i, (op, created_at_ms)) in ops.into_iter().take(RECORDS_MAX).enumerate() {
        let body = match op {
            ArbOp::Put(key, value, lease) => WalBody::Put {
                key,
                value,
                // Every fourth put without a lease (the field absent).
                lease: if lease % 4 == 0 { 0 } else { lease_id(lease) },
            },
            ArbOp::Delete(key) => WalBody::Delete { key },
            ArbOp::Batch(ops) if !ops.is_empty() => WalBody::Batch(
                ops.into_iter()
                    .take(OPS_MAX)
                    .map(|(key, value)| match value {
                        Some(value) => BatchOp::Put {
                            key,
                            value,
                            lease: 0,
                        },
                        None => BatchOp::Delete { key },
                    })
                    .collect(),
            ),
            ArbOp::Batch(_) => continue,
            ArbOp::Grant(lease, ttl_ms) => WalBody::LeaseGrant {
                lease: lease_id(lease),
                ttl_ms: ttl_ms % LEASE_TTL_MS_MAX + 1,
            },
            ArbOp::Revoke(lease, keys) => WalBody::LeaseRevoke {
                lease: lease_id(lease),
                keys: keys.into_iter().take(OPS_MAX).collect(),
            },
        };
        let record = WalRecord {
            revision: i as u64 + 1,
            created_at_ms,
            synced_through: synced,
            stamp: 0,
            body,
        };
        let Ok(bytes) = wal::encode_record(&record) else {
            continue;
        };
        let offset = log.len() as u64;
        assert_eq!(
            wal::decode_record(&bytes),
            Ok((record.clone(), bytes.len()))
        );
        log.extend_from_slice(&bytes);
        written.push((offset, record));
        if sync_every > 0 && i % usize::from(sync_every) == 0 {
            synced = log.len() as u64;
        }
    }
    let out = wal::replay(
        &[Segment {
            base_offset: 0,
            bytes: &log,
        }],
        0,
    );
    assert_eq!(out.records, written);
    assert_eq!(
        out.end,
        ReplayEnd::Clean {
            offset: log.len() as u64
        }
    );
    mutate(&mut log, mutations);
    let out = wal::replay(
        &[Segment {
            base_offset: 0,
            bytes: &log,
        }],
        0,
    );
    // Adler-32 plus the header/trailer copy can in principle let a mutated record through; a
    // record at an offset where none was written would be a much stronger signal of a bug.
    for (offset, _) in &out.records {
        assert!(
            written.iter().any(|(o, _)| o == offset),
            "replayed a record at {offset} never written"
        );
    }
}

fn sst_case(
    entries: BTreeMap<Vec<u8>, (Option<Vec<u8>>, u64, u64, u64)>,
    block: u16,
    lz4: bool,
    bits: u8,
    mutations: &[Mutation],
) {
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(
            |(key, (value, revision, wal_offset, created_at_ms))| Entry {
                key,
                create_revision: if value.is_some() { revision.max(1) } else { 0 },
                version: u64::from(value.is_some()),
                lease: 0,
                revision: revision.max(1),
                value,
                wal_offset,
                created_at_ms,
            },
        )
        .collect();
    let options = TableOptions {
        block_size_bytes: usize::from(block % 2048) + 1,
        compression: if lz4 {
            Compression::Lz4
        } else {
            Compression::None
        },
        bloom_bits_per_key: u32::from(bits % 20),
    };
    let Ok((mut bytes, summary)) = TableBuilder::build(options, &entries) else {
        assert!(entries.is_empty());
        return;
    };
    assert_eq!(summary.file_size, bytes.len() as u64);
    let table = decode_table(&bytes).expect("a built table decodes");
    assert_eq!(table.entries, entries);
    mutate(&mut bytes, mutations);
    let _ = decode_table(&bytes);
}

fn manifest_case(
    files: Vec<(u64, u8, Vec<u8>, Vec<u8>, u64, u64, u64)>,
    head: (u64, u64, u64),
    leases: BTreeMap<u64, u64>,
    mutations: &[Mutation],
) {
    // A valid manifest: numbers unique and below nextFileNumber, and (each file's keys starting
    // with its own index byte) no overlap within a level.
    let mut seen = std::collections::BTreeSet::new();
    let files: Vec<FileMeta> = files
        .into_iter()
        .map(|f| (f.0 % (u64::MAX / 2), f.1, f.2, f.3, f.4, f.5, f.6))
        .filter(|f| seen.insert(f.0))
        .take(256)
        .enumerate()
        .map(|(i, (n, level, a, b, size, wal_offset, created_at_ms))| {
            let (mut min_key, mut max_key) = if a <= b { (a, b) } else { (b, a) };
            let first = u8::try_from(i).unwrap_or(u8::MAX);
            min_key.insert(0, first);
            max_key.insert(0, first);
            FileMeta {
                file: manifest::sst_file_name(n),
                level: u32::from(level % 7),
                min_key,
                max_key,
                size,
                wal_offset,
                created_at_ms,
            }
        })
        .collect();
    let above_every_file = seen.last().map_or(0, |n| n + 1);
    let m = Manifest {
        format_version: manifest::MANIFEST_FORMAT_VERSION,
        next_file_number: above_every_file.saturating_add(head.0 % (u64::MAX / 2)),
        wal_offset: head.1,
        last_revision: head.2,
        history_horizon: head.2 / 2,
        files,
        leases: leases
            .into_iter()
            .map(|(id, ttl_ms)| {
                let id = lease_id(id);
                let ttl_ms = ttl_ms % LEASE_TTL_MS_MAX + 1;
                (id, LeaseMeta { id, ttl_ms })
            })
            .collect::<BTreeMap<u64, LeaseMeta>>()
            .into_values()
            .collect(),
    };
    let mut bytes = manifest::encode(&m);
    assert_eq!(manifest::decode(&bytes), Ok(m));
    mutate(&mut bytes, mutations);
    let _ = manifest::decode(&bytes);
}

fuzz_target!(|input: Input| {
    match input {
        Input::Wal {
            ops,
            sync_every,
            mutations,
        } => wal_case(ops, sync_every, &mutations),
        Input::Sst {
            entries,
            block,
            lz4,
            bits,
            mutations,
        } => sst_case(entries, block, lz4, bits, &mutations),
        Input::Manifest {
            files,
            head,
            leases,
            mutations,
        } => manifest_case(files, head, leases, &mutations),
    }
});
