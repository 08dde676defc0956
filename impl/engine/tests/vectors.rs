//! Runs every vector under `spec/vectors/<structure>/<case>.{hex,raw}` against the decoder for
//! `<structure>` and compares with `<case>.json`: either the expected decode, or
//! `{"error": "<kind>", "offset": N}`. Valid cases are also re-encoded and compared byte for byte
//! unless the JSON says `"canonical": false`. Adding a vector needs no code.

use kvstore::format::sst::{self, Entry};
use kvstore::format::wal::{self, BatchOp, ReplayEnd, Segment, WalBody, WalRecord};
use kvstore::format::{FormatError, backup, export, manifest, varint};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spec/vectors")
}

fn err_json(e: &FormatError) -> Value {
    json!({"error": e.kind.name(), "offset": e.offset})
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "key_hex": hex::encode(&e.key),
        "value_hex": e.value.as_ref().map(hex::encode),
        "revision": e.revision,
        "create_revision": e.create_revision,
        "version": e.version,
        "lease": e.lease,
        "wal_offset": e.wal_offset,
        "created_at_ms": e.created_at_ms,
    })
}

fn record_json(r: &WalRecord) -> Value {
    let mut v = json!({
        "revision": r.revision,
        "created_at_ms": r.created_at_ms,
        "synced_through": r.synced_through,
    });
    let obj = v.as_object_mut().unwrap();
    if r.stamp != 0 {
        obj.insert("stamp".into(), json!(r.stamp));
    }
    match &r.body {
        WalBody::Put { key, value, lease } => {
            obj.insert("type".into(), json!("put"));
            obj.insert("key_hex".into(), json!(hex::encode(key)));
            obj.insert("value_hex".into(), json!(hex::encode(value)));
            if *lease != 0 {
                obj.insert("lease".into(), json!(lease));
            }
        }
        WalBody::Delete { key } => {
            obj.insert("type".into(), json!("delete"));
            obj.insert("key_hex".into(), json!(hex::encode(key)));
        }
        WalBody::Batch(ops) => {
            obj.insert("type".into(), json!("batch"));
            let ops: Vec<Value> = ops
                .iter()
                .map(|op| match op {
                    BatchOp::Put { key, value, lease } => {
                        let mut op = json!({"op": "put", "key_hex": hex::encode(key), "value_hex": hex::encode(value)});
                        if *lease != 0 {
                            op.as_object_mut()
                                .unwrap()
                                .insert("lease".into(), json!(lease));
                        }
                        op
                    }
                    BatchOp::Delete { key } => json!({"op": "delete", "key_hex": hex::encode(key)}),
                })
                .collect();
            obj.insert("ops".into(), json!(ops));
        }
        WalBody::LeaseGrant { lease, ttl_ms } => {
            obj.insert("type".into(), json!("lease_grant"));
            obj.insert("lease".into(), json!(lease));
            obj.insert("ttl_ms".into(), json!(ttl_ms));
        }
        WalBody::LeaseRevoke { lease, keys } => {
            obj.insert("type".into(), json!("lease_revoke"));
            obj.insert("lease".into(), json!(lease));
            let keys: Vec<String> = keys.iter().map(hex::encode).collect();
            obj.insert("keys_hex".into(), json!(keys));
        }
    }
    v
}

/// Decodes `input` as `structure`; returns the JSON form and, for valid inputs, the canonical
/// re-encoding to compare with the input.
fn run(
    structure: &str,
    input: &[u8],
    expected: &Value,
) -> Result<(Value, Option<Vec<u8>>), FormatError> {
    Ok(match structure {
        "varint" => {
            let (value, consumed) = varint::decode(input)?;
            let mut out = Vec::new();
            varint::encode(value, &mut out);
            (json!({"value": value, "consumed": consumed}), Some(out))
        }
        "wal_frame" => {
            let (frame, consumed) = wal::decode_frame(input)?;
            let json = json!({"type": frame.record_type as u8, "payload_hex": hex::encode(frame.payload), "consumed": consumed});
            (
                json,
                Some(wal::encode_frame(frame.record_type, frame.payload)?),
            )
        }
        "wal_record" => {
            let (record, consumed) = wal::decode_record(input)?;
            let mut json = record_json(&record);
            json.as_object_mut()
                .unwrap()
                .insert("consumed".into(), json!(consumed));
            (json, Some(wal::encode_record(&record)?))
        }
        "wal_replay" => {
            let base = expected["base_offset"].as_u64().unwrap();
            let start = expected["start_offset"].as_u64().unwrap();
            let out = wal::replay(
                &[Segment {
                    base_offset: base,
                    bytes: input,
                }],
                start,
            );
            let records: Vec<Value> = out
                .records
                .iter()
                .map(|(o, r)| json!({"offset": o, "revision": r.revision}))
                .collect();
            let end = match out.end {
                ReplayEnd::Clean { offset } => json!({"kind": "clean", "offset": offset}),
                ReplayEnd::TornTail { offset, .. } => {
                    json!({"kind": "torn_tail", "offset": offset})
                }
                ReplayEnd::Corrupt {
                    offset,
                    witness_offset,
                    ..
                } => {
                    json!({"kind": "corrupt", "offset": offset, "witness_offset": witness_offset})
                }
            };
            (
                json!({"base_offset": base, "start_offset": start, "records": records, "end": end}),
                None,
            )
        }
        "sst_entry" => {
            let (entry, consumed) = sst::decode_entry(input)?;
            let mut json = entry_json(&entry);
            json.as_object_mut()
                .unwrap()
                .insert("consumed".into(), json!(consumed));
            let mut out = Vec::new();
            sst::encode_entry(entry.as_ref(), &mut out);
            (json, Some(out))
        }
        "sst_table" => {
            let t = sst::decode_table(input)?;
            let blocks: Vec<Value> = t
                .index
                .blocks
                .iter()
                .map(|b| {
                    let h = &b.handle;
                    json!({"offset": h.offset, "stored_len": h.stored_len, "compressed": h.compressed, "crc32c": h.crc32c})
                })
                .collect();
            let json = json!({
                "index_offset": t.footer.index_offset,
                "bloom_offset": t.footer.bloom_offset,
                "blocks": blocks,
                "bloom": t.bloom.as_ref().map(|b| json!({"probes": b.probes(), "bits_len": b.bits_len()})),
                "entries": t.entries.iter().map(entry_json).collect::<Vec<_>>(),
            });
            // Re-encode from the decoded parts: header, blocks (raw blocks from their entries),
            // bloom, index, footer.
            let mut out = input.get(..sst::SST_HEADER_LEN).unwrap().to_vec();
            for b in &t.index.blocks {
                let h = &b.handle;
                let stored =
                    &input[h.offset as usize..(h.offset + u64::from(h.stored_len)) as usize];
                if h.compressed {
                    out.extend_from_slice(stored);
                } else {
                    for e in sst::decode_block(stored, h)?.entries() {
                        sst::encode_entry(e.as_ref(), &mut out);
                    }
                }
            }
            if let Some(b) = &t.bloom {
                out.extend_from_slice(&b.encode());
            }
            out.extend_from_slice(&t.index.encode());
            out.extend_from_slice(&t.footer.encode());
            (json, Some(out))
        }
        "manifest" => {
            let m = manifest::decode(input)?;
            let files: Vec<Value> = m
                .files
                .iter()
                .map(|f| {
                    json!({"file": f.file, "level": f.level, "min_key_hex": hex::encode(&f.min_key),
                        "max_key_hex": hex::encode(&f.max_key), "size": f.size, "wal_offset": f.wal_offset,
                        "created_at_ms": f.created_at_ms})
                })
                .collect();
            let leases: Vec<Value> = m
                .leases
                .iter()
                .map(|l| json!({"id": l.id, "ttl_ms": l.ttl_ms}))
                .collect();
            let json = json!({"format_version": m.format_version, "next_file_number": m.next_file_number,
                "wal_offset": m.wal_offset, "last_revision": m.last_revision,
                "history_horizon": m.history_horizon, "last_stamp": m.last_stamp, "files": files,
                "leases": leases});
            (json, Some(manifest::encode(&m)))
        }
        "export" => {
            let c = export::decode_stream(input)?;
            let leases: Vec<Value> = c
                .leases
                .iter()
                .map(|l| json!({"id": l.id, "ttl_ms": l.ttl_ms}))
                .collect();
            let json = json!({"revision": c.header.revision, "horizon": c.header.horizon,
                "versions": c.versions.iter().map(entry_json).collect::<Vec<_>>(), "leases": leases});
            (json, Some(export::encode_stream(&c)))
        }
        "backup_meta" => {
            let m = backup::decode(input)?;
            let tables: Vec<Value> = m
                .tables
                .iter()
                .map(|t| json!({"number": t.number, "size": t.size, "crc32c": t.crc32c}))
                .collect();
            let json = json!({"id": m.id, "revision": m.revision, "horizon": m.horizon,
                "created_at_ms": m.created_at_ms, "tables": tables,
                "manifest_hex": hex::encode(&m.manifest)});
            (json, Some(backup::encode(&m)))
        }
        other => panic!("no decoder for vector directory {other}"),
    })
}

fn read_input(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "hex") {
        let text: String = String::from_utf8(bytes)
            .unwrap()
            .split_whitespace()
            .collect();
        hex::decode(text).unwrap_or_else(|e| panic!("{}: bad hex: {e}", path.display()))
    } else {
        bytes
    }
}

#[test]
fn every_vector() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in dirs {
        let structure = dir.file_name().unwrap().to_str().unwrap().to_owned();
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "hex" || e == "raw"))
            .collect();
        inputs.sort();
        for input_path in inputs {
            let expected_path = input_path.with_extension("json");
            let mut expected: Value =
                serde_json::from_slice(&std::fs::read(&expected_path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
            let canonical = expected
                .as_object_mut()
                .unwrap()
                .remove("canonical")
                .is_none_or(|v| v != json!(false));
            let input = read_input(&input_path);
            count += 1;
            let name = input_path
                .strip_prefix(vectors_dir())
                .unwrap()
                .display()
                .to_string();
            match run(&structure, &input, &expected) {
                Ok((actual, reencoded)) => {
                    if actual != expected {
                        failures.push(format!(
                            "{name}: decoded\n  {actual}\nexpected\n  {expected}"
                        ));
                    } else if let (true, Some(bytes)) = (canonical, reencoded) {
                        let consumed = bytes.len().min(input.len());
                        if bytes != input[..consumed]
                            || (structure != "varint" && bytes.len() != input.len())
                        {
                            failures.push(format!(
                                "{name}: re-encoding differs\n  {}\n  {}",
                                hex::encode(&bytes),
                                hex::encode(&input)
                            ));
                        }
                    }
                }
                Err(e) => {
                    let actual = err_json(&e);
                    if actual != expected {
                        failures.push(format!(
                            "{name}: error {e}\n  {actual}\nexpected\n  {expected}"
                        ));
                    }
                }
            }
        }
    }
    assert!(count >= 50, "only {count} vectors found");
    assert!(
        failures.is_empty(),
        "{} of {count} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
