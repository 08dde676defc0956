#!/usr/bin/env python3
"""Generates spec/vectors/** independently of the Rust encoder (stdlib only).

Every byte here is computed from spec/FORMAT.md by this script: its own varint, MessagePack subset,
Adler-32 (zlib), CRC32C (table below), bloom hash and a hand-built LZ4 block. Run it from anywhere:
    python3 spec/vectors/gen.py
It rewrites the generated vectors; regression vectors found by fuzzing live in files it does not
touch (names starting with `fuzz_`).
"""
import hashlib, json, os, struct, zlib

ROOT = os.path.dirname(os.path.abspath(__file__))

# ---------- primitives ----------
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF

assert crc32c(b"123456789") == 0xE3069283

def adler32(b): return zlib.adler32(b) & 0xFFFFFFFF

def varint(n):
    out = bytearray()
    while True:
        g = n & 0x7F; n >>= 7
        if n: out.append(g | 0x80)
        else: out.append(g); return bytes(out)

def u8(n): return struct.pack(">B", n)
def u16(n): return struct.pack(">H", n)
def u32(n): return struct.pack(">I", n)
def u64(n): return struct.pack(">Q", n)

# MessagePack subset, smallest encodings.
def mp_uint(n):
    if n < 0x80: return u8(n)
    if n < 0x100: return b"\xcc" + u8(n)
    if n < 0x10000: return b"\xcd" + u16(n)
    if n < 0x100000000: return b"\xce" + u32(n)
    return b"\xcf" + u64(n)
def mp_str(s):
    s = s.encode(); assert len(s) < 32
    return u8(0xA0 | len(s)) + s
def mp_bin(b):
    if len(b) < 0x100: return b"\xc4" + u8(len(b)) + b
    if len(b) < 0x10000: return b"\xc5" + u16(len(b)) + b
    return b"\xc6" + u32(len(b)) + b
def mp_map(n): assert n < 16; return u8(0x80 | n)
def mp_arr(n): assert n < 16; return u8(0x90 | n)

def write(struct_dir, name, data, expected, raw=False):
    d = os.path.join(ROOT, struct_dir); os.makedirs(d, exist_ok=True)
    if raw:
        open(os.path.join(d, name + ".raw"), "wb").write(data)
    else:
        h = data.hex()
        lines = [" ".join(h[i:i+2] for i in range(j, min(j+64, len(h)), 2)) for j in range(0, len(h), 64)]
        open(os.path.join(d, name + ".hex"), "w").write("\n".join(lines) + "\n")
    open(os.path.join(d, name + ".json"), "w").write(json.dumps(expected, indent=2) + "\n")

def err(kind, offset): return {"error": kind, "offset": offset}

# ---------- varint ----------
for name, v in [("zero", 0), ("one_byte_max", 127), ("two_bytes_min", 128), ("seed_created_at", 1690000000), ("u64_max", 2**64 - 1)]:
    b = varint(v); write("varint", name, b, {"value": v, "consumed": len(b)})
seed_printed = bytes.fromhex("808fa6f505")
val = sum((b & 0x7F) << (7 * i) for i, b in enumerate(seed_printed))
write("varint", "seed_readme_as_printed", seed_printed, {"value": val, "consumed": 5})
write("varint", "overlong", bytes.fromhex("8000"), err("overlong_varint", 0))
write("varint", "overflow", bytes.fromhex("ffffffffffffffffff02"), err("varint_overflow", 0))
write("varint", "truncated", bytes.fromhex("8080"), err("truncated", 0))
write("varint", "empty", b"", err("truncated", 0))

# ---------- WAL frames ----------
def frame(rtype, payload, version=1, reserved=0, length=None, cks=None):
    h = u8(version) + u8(rtype) + u16(reserved) + u32(len(payload) if length is None else length) + u32(adler32(payload) if cks is None else cks)
    return h + payload + h

seed_payload = b'{"op":"put","key":"foo"}'
seed = frame(1, seed_payload)
assert seed.hex() == "01010000000000185c04076e" + seed_payload.hex() + "01010000000000185c04076e"
write("wal_frame", "seed_example", seed, {"type": 1, "payload_hex": seed_payload.hex(), "consumed": 48})
bad = bytearray(seed); bad[12] ^= 0x01  # flip a payload bit: header and trailer agree, Adler-32 does not
write("wal_frame", "bad_checksum", bytes(bad), err("bad_checksum", 8))
bad = bytearray(seed); bad[-1] ^= 0xFF  # trailer checksum differs from header
write("wal_frame", "header_trailer_mismatch", bytes(bad), err("header_trailer_mismatch", 36))
write("wal_frame", "torn_trailer", seed[:40], err("truncated", 36))
write("wal_frame", "torn_payload", seed[:20], err("truncated", 12))
write("wal_frame", "torn_header", seed[:7], err("truncated", 0))
write("wal_frame", "bad_version", frame(2, seed_payload, version=2), err("unsupported_version", 0))
write("wal_frame", "reserved_type_txn_commit", frame(4, seed_payload), err("unknown_tag", 1))
write("wal_frame", "reserved_not_zero", frame(1, seed_payload, reserved=1), err("reserved_not_zero", 2))
write("wal_frame", "length_over_limit", frame(1, b"", length=0x08000001), err("length_too_large", 4))
write("wal_frame", "length_past_eof", frame(1, b"", length=0x07FFFFFF)[:12], err("truncated", 12))
write("wal_frame", "empty_payload", frame(2, b""), {"type": 2, "payload_hex": "", "consumed": 24})
# Types 5 (lease grant) and 6 (lease revoke) frame like any other type (WAL v1 revision 2); 7
# (checkpoint) stays reserved. The framing does not look at the payload.
for name, t in [("lease_grant_type", 5), ("lease_revoke_type", 6)]:
    b = frame(t, seed_payload); write("wal_frame", name, b, {"type": t, "payload_hex": seed_payload.hex(), "consumed": len(b)})
write("wal_frame", "reserved_type_checkpoint", frame(7, seed_payload), err("unknown_tag", 1))

# ---------- WAL records (frame + MessagePack payload) ----------
def head(rev, created, synced):
    return mp_str("revision") + mp_uint(rev) + mp_str("created_at_ms") + mp_uint(created) + mp_str("synced_through") + mp_uint(synced)
def lease_field(lease):
    return mp_str("lease") + mp_uint(lease) if lease else b""  # absent = no lease; 0 is never written
def put_payload(rev, created, synced, k, v, lease=0):
    return (mp_map(6 if lease else 5) + head(rev, created, synced) + mp_str("key") + mp_bin(k) + mp_str("value") + mp_bin(v)
            + lease_field(lease))
def del_payload(rev, created, synced, k):
    return mp_map(4) + head(rev, created, synced) + mp_str("key") + mp_bin(k)
def batch_payload(rev, created, synced, ops):
    out = mp_map(4) + head(rev, created, synced) + mp_str("ops") + mp_arr(len(ops))
    for op in ops:
        if op[0] == "put":
            lease = op[3] if len(op) > 3 else 0
            out += (mp_map(4 if lease else 3) + mp_str("op") + mp_str("put") + mp_str("key") + mp_bin(op[1]) + mp_str("value") + mp_bin(op[2])
                    + lease_field(lease))
        else: out += mp_map(2) + mp_str("op") + mp_str("delete") + mp_str("key") + mp_bin(op[1])
    return out
def grant_payload(rev, created, synced, lease, ttl_ms):
    return mp_map(5) + head(rev, created, synced) + mp_str("lease") + mp_uint(lease) + mp_str("ttl_ms") + mp_uint(ttl_ms)
def revoke_payload(rev, created, synced, lease, keys):
    out = mp_map(5) + head(rev, created, synced) + mp_str("lease") + mp_uint(lease) + mp_str("keys") + mp_arr(len(keys))
    for k in keys: out += mp_bin(k)
    return out
def rec_json(rtype, rev, created, synced, consumed, **kw):
    d = {"type": rtype, "revision": rev, "created_at_ms": created, "synced_through": synced}
    d.update(kw); d["consumed"] = consumed; return d

T = 1690000000000
p = put_payload(1, T, 0, b"foo", b"bar"); b = frame(1, p)
write("wal_record", "put", b, rec_json("put", 1, T, 0, len(b), key_hex=b"foo".hex(), value_hex=b"bar".hex()))
p = del_payload(2, T + 1, 77, b"foo"); b = frame(2, p)
write("wal_record", "delete", b, rec_json("delete", 2, T + 1, 77, len(b), key_hex=b"foo".hex()))
ops = [("put", b"a", b"1"), ("delete", b"b"), ("put", b"", b"")]
p = batch_payload(3, T + 2, 150, ops); b = frame(3, p)
write("wal_record", "batch", b, rec_json("batch", 3, T + 2, 150, len(b), ops=[
    {"op": "put", "key_hex": "61", "value_hex": "31"}, {"op": "delete", "key_hex": "62"}, {"op": "put", "key_hex": "", "value_hex": ""}]))
p = put_payload(2**64 - 1, 2**64 - 1, 2**64 - 1, bytes(range(256)), b"\x00" * 300); b = frame(1, p)
write("wal_record", "put_max_integers_and_bin16", b, rec_json("put", 2**64 - 1, 2**64 - 1, 2**64 - 1, len(b), key_hex=bytes(range(256)).hex(), value_hex=("00" * 300)))
# Readers accept any field order and non-minimal widths: uint64 revision, bin32 key, str8 name.
p = (mp_map(5) + mp_str("key") + b"\xc6" + u32(1) + b"k" + b"\xd9\x05value" + mp_bin(b"v") + mp_str("synced_through") + b"\xcf" + u64(0)
     + mp_str("created_at_ms") + mp_uint(5) + mp_str("revision") + b"\xcf" + u64(9))
b = frame(1, p)
write("wal_record", "put_any_order_wide_encodings", b, dict(rec_json("put", 9, 5, 0, len(b), key_hex="6b", value_hex="76"), canonical=False))
p = mp_map(4) + head(1, 0, 0) + mp_str("key") + mp_str("foo")  # key as str, not bin
write("wal_record", "key_as_str", frame(2, p), err("bad_msgpack", 12 + len(p) - 4))
p = mp_map(3) + head(1, 0, 0)
write("wal_record", "missing_key", frame(2, p), err("invalid_value", 12))
p = del_payload(1, 0, 0, b"k")[:-0] ; p = mp_map(5) + p[1:] + mp_str("extra") + mp_uint(1)
write("wal_record", "unknown_field", frame(2, p), err("invalid_value", 12 + len(p) - 7))
p = mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(0)
write("wal_record", "empty_batch", frame(3, p), err("invalid_value", 12 + len(p) - 1))
p = put_payload(1, 0, 0, b"k", b"v")
write("wal_record", "put_payload_in_delete_frame", frame(2, p), err("invalid_value", 12 + len(p) - 9))
write("wal_record", "seed_json_payload", seed, err("bad_msgpack", 12))
p = del_payload(1, 0, 0, b"k") + b"\x00"
write("wal_record", "trailing_byte", frame(2, p), err("trailing_bytes", 12 + len(p) - 1))
# Payload error offsets (FORMAT § 3.4, "Error offsets"): a duplicate is reported at its name,
# before its value is read (here the duplicate's value is not even a uint).
first = mp_str("revision") + mp_uint(1)
p = mp_map(5) + first + mp_str("revision") + mp_str("x") + head(1, 0, 0)[len(first):] + mp_str("key") + mp_bin(b"k")
write("wal_record", "duplicate_field_before_its_value", frame(2, p), err("invalid_value", 12 + 1 + len(first)))
pre = mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(1) + mp_map(2) + mp_str("op")
p = pre + mp_str("merge") + mp_str("key") + mp_bin(b"k")
write("wal_record", "unknown_op_name", frame(3, p), err("unknown_tag", 12 + len(pre)))
pre = mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(1) + mp_map(3) + mp_str("op") + mp_str("delete") + mp_str("key") + mp_bin(b"k")
p = pre + mp_str("value") + mp_bin(b"v")
write("wal_record", "delete_op_with_value", frame(3, p), err("invalid_value", 12 + len(pre)))
p = mp_map(4) + mp_str("created_at_ms") + mp_uint(0) + mp_str("synced_through") + mp_uint(0) + mp_str("key") + mp_bin(b"k") + mp_str("value") + mp_bin(b"v") + b"\x00"
write("wal_record", "missing_field_before_trailing_bytes", frame(1, p), err("invalid_value", 12))
p = u8(0x89) + put_payload(1, 0, 0, b"k", b"v")[1:]
write("wal_record", "map_of_nine_entries", frame(1, p), err("length_too_large", 12))
p = mp_map(5) + del_payload(1, 0, 0, b"k")[1:]
write("wal_record", "map_claims_more_fields", frame(2, p), err("truncated", 12 + len(p)))
pre = mp_map(4) + head(1, 0, 0) + mp_str("ops")
p = pre + b"\xdc" + u16(100) + mp_map(2) + mp_str("op") + mp_str("delete") + mp_str("key") + mp_bin(b"k")
write("wal_record", "ops_count_above_remaining", frame(3, p), err("length_too_large", 12 + len(pre)))

# Leases (WAL v1 revision 2, FORMAT § 3.3, § 3.4). A put's `lease` is written last, after `value`;
# absent means no lease (the expected JSON then has no "lease" either).
LEASE_ID_MAX = 2**63 - 1
LEASE_TTL_MS_MAX = 9_000_000_000_000
p = put_payload(4, T + 3, 0, b"foo", b"bar", lease=7); b = frame(1, p)
write("wal_record", "put_with_lease", b, rec_json("put", 4, T + 3, 0, len(b), key_hex=b"foo".hex(), value_hex=b"bar".hex(), lease=7))
p = put_payload(4, T + 3, 0, b"foo", b"bar", lease=LEASE_ID_MAX); b = frame(1, p)
write("wal_record", "put_with_lease_id_max", b, rec_json("put", 4, T + 3, 0, len(b), key_hex=b"foo".hex(), value_hex=b"bar".hex(), lease=LEASE_ID_MAX))
ops = [("put", b"a", b"1", 0x1234), ("delete", b"b"), ("put", b"c", b"")]
p = batch_payload(5, T + 4, 0, ops); b = frame(3, p)
write("wal_record", "batch_with_leased_put", b, rec_json("batch", 5, T + 4, 0, len(b), ops=[
    {"op": "put", "key_hex": "61", "value_hex": "31", "lease": 0x1234}, {"op": "delete", "key_hex": "62"}, {"op": "put", "key_hex": "63", "value_hex": ""}]))
# A grant changes no key: it carries the revision before it (here 5).
p = grant_payload(5, T + 5, 0, 7, 60000); b = frame(5, p)
write("wal_record", "lease_grant", b, rec_json("lease_grant", 5, T + 5, 0, len(b), lease=7, ttl_ms=60000))
p = grant_payload(5, T + 5, 0, LEASE_ID_MAX, LEASE_TTL_MS_MAX); b = frame(5, p)
write("wal_record", "lease_grant_max_values", b, rec_json("lease_grant", 5, T + 5, 0, len(b), lease=LEASE_ID_MAX, ttl_ms=LEASE_TTL_MS_MAX))
keys = [b"", b"a", b"ab", b"b"]  # strictly increasing bytewise: the empty key first, a prefix before its extension
p = revoke_payload(6, T + 6, 0, 7, keys); b = frame(6, p)
write("wal_record", "lease_revoke_with_keys", b, rec_json("lease_revoke", 6, T + 6, 0, len(b), lease=7, keys_hex=[k.hex() for k in keys]))
p = revoke_payload(6, T + 6, 0, 9, []); b = frame(6, p)
write("wal_record", "lease_revoke_no_keys", b, rec_json("lease_revoke", 6, T + 6, 0, len(b), lease=9, keys_hex=[]))
# Errors. A lease or ttl_ms out of range is invalid_value at the integer's type byte.
pre = mp_map(5) + head(1, 0, 0) + mp_str("lease")
write("wal_record", "lease_grant_lease_zero", frame(5, pre + mp_uint(0) + mp_str("ttl_ms") + mp_uint(60000)), err("invalid_value", 12 + len(pre)))
write("wal_record", "lease_grant_lease_above_max", frame(5, pre + mp_uint(LEASE_ID_MAX + 1) + mp_str("ttl_ms") + mp_uint(60000)), err("invalid_value", 12 + len(pre)))
pre = mp_map(5) + head(1, 0, 0) + mp_str("lease") + mp_uint(7) + mp_str("ttl_ms")
write("wal_record", "lease_grant_ttl_zero", frame(5, pre + mp_uint(0)), err("invalid_value", 12 + len(pre)))
write("wal_record", "lease_grant_ttl_above_max", frame(5, pre + mp_uint(LEASE_TTL_MS_MAX + 1)), err("invalid_value", 12 + len(pre)))
# A missing field is invalid_value at offset 0 of the payload, after the map's last entry.
p = mp_map(4) + head(1, 0, 0) + mp_str("lease") + mp_uint(7)
write("wal_record", "lease_grant_missing_ttl_ms", frame(5, p), err("invalid_value", 12))
p = mp_map(4) + head(1, 0, 0) + mp_str("lease") + mp_uint(7)
write("wal_record", "lease_revoke_missing_keys", frame(6, p), err("invalid_value", 12))
# `keys` in a grant is a field the record type does not have: invalid_value at its name.
pre = grant_payload(1, 0, 0, 7, 60000); pre = mp_map(6) + pre[1:]
write("wal_record", "lease_grant_with_keys", frame(5, pre + mp_str("keys") + mp_arr(0)), err("invalid_value", 12 + len(pre)))
# A key of `keys` not above the one before it is key_order at that key's bin type byte.
pre = mp_map(5) + head(1, 0, 0) + mp_str("lease") + mp_uint(7) + mp_str("keys") + mp_arr(3) + mp_bin(b"a") + mp_bin(b"c")
write("wal_record", "lease_revoke_keys_out_of_order", frame(6, pre + mp_bin(b"b")), err("key_order", 12 + len(pre)))
pre = mp_map(5) + head(1, 0, 0) + mp_str("lease") + mp_uint(7) + mp_str("keys") + mp_arr(2) + mp_bin(b"a")
write("wal_record", "lease_revoke_keys_repeated", frame(6, pre + mp_bin(b"a")), err("key_order", 12 + len(pre)))
# A `keys` count above the bytes after the array header / 2 is length_too_large at the array's
# type byte, before any allocation: 100 keys claimed, 3 bytes (one key) follow.
pre = mp_map(5) + head(1, 0, 0) + mp_str("lease") + mp_uint(7) + mp_str("keys")
write("wal_record", "lease_revoke_keys_count_above_remaining", frame(6, pre + b"\xdc" + u16(100) + mp_bin(b"k")), err("length_too_large", 12 + len(pre)))
# A put's lease 0 is never written: invalid_value at the integer's type byte (also in a put op).
pre = mp_map(6) + put_payload(1, 0, 0, b"k", b"v")[1:] + mp_str("lease")
write("wal_record", "put_lease_zero", frame(1, pre + mp_uint(0)), err("invalid_value", 12 + len(pre)))
pre = (mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(1) + mp_map(4) + mp_str("op") + mp_str("put") + mp_str("key") + mp_bin(b"k")
       + mp_str("value") + mp_bin(b"v") + mp_str("lease"))
write("wal_record", "batch_put_op_lease_zero", frame(3, pre + mp_uint(0)), err("invalid_value", 12 + len(pre)))
# `lease` in a delete record or a delete op is an unknown field: invalid_value at that name (in an
# op, judged after the op map, since the `op` name may come after it).
pre = mp_map(5) + del_payload(1, 0, 0, b"k")[1:]
write("wal_record", "delete_with_lease", frame(2, pre + mp_str("lease") + mp_uint(7)), err("invalid_value", 12 + len(pre)))
pre = mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(1) + mp_map(3) + mp_str("op") + mp_str("delete") + mp_str("key") + mp_bin(b"k")
write("wal_record", "delete_op_with_lease", frame(3, pre + mp_str("lease") + mp_uint(7)), err("invalid_value", 12 + len(pre)))
pre = mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(1) + mp_map(3)
p = pre + mp_str("lease") + mp_uint(7) + mp_str("op") + mp_str("delete") + mp_str("key") + mp_bin(b"k")
write("wal_record", "delete_op_with_lease_before_op", frame(3, p), err("invalid_value", 12 + len(pre)))

# ---------- WAL replay (one segment; parameters in the expected JSON) ----------
# Stamps (WAL v1 revision 3, FORMAT § 3.4): an optional `stamp` (1..=u64::MAX) on every record
# type, written last; absent means no stamp (the expected JSON then has no "stamp" either).
def stamped(payload, stamp):
    assert payload[0] < 0x8f; return u8(payload[0] + 1) + payload[1:] + mp_str("stamp") + mp_uint(stamp)
p = stamped(put_payload(4, T + 3, 0, b"foo", b"bar", lease=7), 42); b = frame(1, p)
write("wal_record", "put_with_lease_and_stamp", b, rec_json("put", 4, T + 3, 0, len(b), key_hex=b"foo".hex(), value_hex=b"bar".hex(), lease=7, stamp=42))
p = stamped(del_payload(2, T + 1, 0, b"foo"), 2**64 - 1); b = frame(2, p)
write("wal_record", "delete_with_stamp_u64_max", b, rec_json("delete", 2, T + 1, 0, len(b), key_hex=b"foo".hex(), stamp=2**64 - 1))
p = stamped(batch_payload(3, T + 2, 0, [("put", b"a", b"1"), ("delete", b"b")]), 300); b = frame(3, p)
write("wal_record", "batch_with_stamp", b, rec_json("batch", 3, T + 2, 0, len(b), ops=[
    {"op": "put", "key_hex": "61", "value_hex": "31"}, {"op": "delete", "key_hex": "62"}], stamp=300))
p = stamped(grant_payload(5, T + 5, 0, 7, 60000), 5); b = frame(5, p)
write("wal_record", "lease_grant_with_stamp", b, rec_json("lease_grant", 5, T + 5, 0, len(b), lease=7, ttl_ms=60000, stamp=5))
p = stamped(revoke_payload(5, T + 6, 0, 9, []), 6); b = frame(6, p)
write("wal_record", "lease_revoke_no_keys_with_stamp", b, rec_json("lease_revoke", 5, T + 6, 0, len(b), lease=9, keys_hex=[], stamp=6))
# Any order: a stamp first is read alike (not the canonical encoding, which writes it last).
p = mp_map(5) + mp_str("stamp") + mp_uint(8) + del_payload(2, T, 0, b"k")[1:]; b = frame(2, p)
write("wal_record", "stamp_first", b, dict(rec_json("delete", 2, T, 0, len(b), key_hex="6b", stamp=8), canonical=False))
# A stamp of 0 is never written: invalid_value at the integer's type byte.
pre = mp_map(5) + del_payload(1, 0, 0, b"k")[1:] + mp_str("stamp")
write("wal_record", "stamp_zero", frame(2, pre + mp_uint(0)), err("invalid_value", 12 + len(pre)))
# A second stamp is a duplicate field, at its name; a signed integer is bad_msgpack at its type byte.
pre = mp_map(6) + del_payload(1, 0, 0, b"k")[1:] + mp_str("stamp") + mp_uint(3)
write("wal_record", "stamp_twice", frame(2, pre + mp_str("stamp") + mp_uint(3)), err("invalid_value", 12 + len(pre)))
pre = mp_map(5) + del_payload(1, 0, 0, b"k")[1:] + mp_str("stamp")
write("wal_record", "stamp_negative", frame(2, pre + b"\xd0\xff"), err("bad_msgpack", 12 + len(pre)))
# A stamp belongs to the record, not to a batch op: inside an op it is an unknown field, at its name.
pre = mp_map(4) + head(1, 0, 0) + mp_str("ops") + mp_arr(1) + mp_map(3) + mp_str("op") + mp_str("delete") + mp_str("key") + mp_bin(b"k")
write("wal_record", "stamp_in_batch_op", frame(3, pre + mp_str("stamp") + mp_uint(3)), err("invalid_value", 12 + len(pre)))

def rec(rtype, rev, synced, key=b"k", value=b"v"):
    if rtype == 1: return frame(1, put_payload(rev, T, synced, key, value))
    return frame(2, del_payload(rev, T, synced, key))

def replay_case(name, seg, records, end, base=0, start=0):
    write("wal_replay", name, seg, {"base_offset": base, "start_offset": start,
          "records": [{"offset": o, "revision": r} for o, r in records], "end": end})

r1 = rec(1, 1, 0); r2 = rec(1, 2, len(r1)); o3 = len(r1) + len(r2); r3 = rec(2, 3, o3)
log = r1 + r2 + r3
replay_case("clean", log, [(0, 1), (len(r1), 2), (o3, 3)], {"kind": "clean", "offset": len(log)})
replay_case("clean_from_start_offset", log, [(1000 + o3, 3)], {"kind": "clean", "offset": 1000 + len(log)}, base=1000, start=1000 + o3)
replay_case("torn_tail_cut", log[:-5], [(0, 1), (len(r1), 2)], {"kind": "torn_tail", "offset": o3})
replay_case("torn_tail_zero_filled", log + bytes(100), [(0, 1), (len(r1), 2), (o3, 3)], {"kind": "torn_tail", "offset": len(log)})
bad = bytearray(log); bad[-20] ^= 0x04  # bit flip in the LAST record: indistinguishable from torn
replay_case("last_record_bit_flip_is_torn", bytes(bad), [(0, 1), (len(r1), 2)], {"kind": "torn_tail", "offset": o3})
bad = bytearray(log); bad[len(r1) + 20] ^= 0x04  # bit flip in record 2; record 3 says o3 was synced
replay_case("middle_record_bit_flip_is_corrupt", bytes(bad), [(0, 1)], {"kind": "corrupt", "offset": len(r1), "witness_offset": o3})
# Record 2 damaged, record 3 written before any sync covered record 2 (synced_through = len(r1)):
# the page cache may have persisted 3 without 2, so it is a torn tail, and 3 is discarded.
r3u = rec(2, 3, len(r1)); log_u = r1 + r2 + r3u
bad = bytearray(log_u); bad[len(r1) + 20] ^= 0x04
replay_case("middle_damage_unsynced_is_torn", bytes(bad), [(0, 1)], {"kind": "torn_tail", "offset": len(r1)})
bad = bytearray(log); bad[len(r1) + 1] = 9  # unknown type in record 2's header
replay_case("middle_bad_type_is_corrupt", bytes(bad), [(0, 1)], {"kind": "corrupt", "offset": len(r1), "witness_offset": o3})

# ---------- SST ----------
def meta_of(v, rev, create, ver, lease):
    """(create_revision, version, lease) of an entry: a value defaults to a first version."""
    if v is None:
        return (0 if create is None else create, 0 if ver is None else ver, lease)
    return (rev if create is None else create, 1 if ver is None else ver, lease)
def entry(k, v, rev, walo, created, create=None, ver=None, lease=0):
    c, n, l = meta_of(v, rev, create, ver, lease)
    return (u32(len(k)) + k + (u32(0xFFFFFFFF) if v is None else u32(len(v)) + v) + varint(rev)
            + varint(rev - c if v is not None else c) + varint(n) + varint(l) + varint(walo) + varint(created))
def ejson(k, v, rev, walo, created, create=None, ver=None, lease=0):
    c, n, l = meta_of(v, rev, create, ver, lease)
    return {"key_hex": k.hex(), "value_hex": None if v is None else v.hex(), "revision": rev, "create_revision": c,
            "version": n, "lease": l, "wal_offset": walo, "created_at_ms": created}

# The seed's example entry in SST v4: create_delta 0, version 1, lease 0 after the revision.
seed_entry = entry(b"abc", b"xyz", 1, 123, 1690000000)
assert seed_entry.hex() == "000000036162630000000378797a010001007b80b5eda506"
write("sst_entry", "seed_example_corrected", seed_entry, dict(ejson(b"abc", b"xyz", 1, 123, 1690000000), consumed=len(seed_entry)))
# The seed's bytes as printed (a v1-shaped entry): its walOffset lands in create_delta, its
# createdAt in version, and the v4 entry's lease is missing.
seed_as_printed = bytes.fromhex("0000000361626300000003" "78797a017b808fa6f505")
write("sst_entry", "seed_example_as_printed", seed_as_printed, err("truncated", 21))
t = entry(b"gone", None, 7, 0, 0)
write("sst_entry", "tombstone", t, dict(ejson(b"gone", None, 7, 0, 0), consumed=len(t)))
# A later version of a key: created at 3, modified 4 times since, attached to lease 0x1234.
later = entry(b"key", b"v5", 12, 40, T, create=3, ver=5, lease=0x1234)
write("sst_entry", "later_version_with_lease", later, dict(ejson(b"key", b"v5", 12, 40, T, create=3, ver=5, lease=0x1234), consumed=len(later)))
write("sst_entry", "value_with_version_zero", entry(b"k", b"v", 5, 0, 0, ver=0), err("invalid_value", 11))
write("sst_entry", "create_revision_above_revision", u32(1) + b"k" + u32(1) + b"v" + varint(5) + varint(5) + varint(1) + varint(0) + varint(0) + varint(0), err("invalid_value", 11))
write("sst_entry", "tombstone_with_version", entry(b"k", None, 5, 0, 0, ver=2), err("invalid_value", 10))
write("sst_entry", "key_too_long", u32(65537) + b"x" * 10, err("length_too_large", 0))
write("sst_entry", "value_too_long", u32(1) + b"k" + u32(0x04000001), err("length_too_large", 5))
write("sst_entry", "value_past_eof", u32(1) + b"k" + u32(0x04000000) + b"abc", err("truncated", 9))
write("sst_entry", "overlong_revision", u32(1) + b"k" + u32(0) + b"\x80\x00\x00\x00", err("overlong_varint", 9))

def bloom_hash(key):
    M = 2**64 - 1
    h = 0xcbf29ce484222325
    for b in key: h = ((h ^ b) * 0x100000001b3) & M
    z = h; z ^= z >> 30; z = (z * 0xbf58476d1ce4e5b9) & M; z ^= z >> 27; z = (z * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)
def bloom_block(keys, bpk=10):
    probes = max(1, min(30, (bpk * 69 + 50) // 100))
    nbytes = max(8, (len(keys) * bpk + 7) // 8)
    bits = bytearray(nbytes); m = nbytes * 8
    for k in keys:
        h = bloom_hash(k); h1 = h & 0xFFFFFFFF; h2 = (h >> 32) | 1
        for i in range(probes):
            bit = (h1 + i * h2) % m; bits[bit // 8] |= 1 << (bit % 8)
    body = u8(probes) + u32(nbytes) + bytes(bits)
    return body + u32(crc32c(body)), probes, nbytes

def table(blocks, bloom_keys=None):
    """blocks: list of (first_key, raw_bytes, stored_bytes, compressed)."""
    out = b"SST1\x04"; index = u32(len(blocks)); meta = []
    for fk, _raw, stored, comp in blocks:
        off = len(out); out += stored
        flag = 0x80000000 if comp else 0
        index += u32(len(fk)) + fk + u64(off) + u32(len(stored) | flag) + u32(crc32c(stored))
        meta.append({"offset": off, "stored_len": len(stored), "compressed": comp, "crc32c": crc32c(stored)})
    bloom_off = 0; bloom = None
    if bloom_keys is not None:
        bloom_off = len(out); bb, probes, nbytes = bloom_block(bloom_keys); out += bb
        bloom = {"probes": probes, "bits_len": nbytes}
    index_off = len(out); out += index
    f = u64(index_off) + u64(bloom_off) + u32(crc32c(index))
    out += f + u32(crc32c(f)) + u32(0x53535446)
    return out, {"index_offset": index_off, "bloom_offset": bloom_off or None, "blocks": meta, "bloom": bloom}

def raw_block(entries):
    return b"".join(entry(*e) for e in entries)

E1 = [(b"apple", b"red", 1, 10, T), (b"banana", None, 2, 20, T), (b"cherry", b"dark red", 3, 30, T)]
r = raw_block(E1)
data, meta = table([(b"apple", r, r, False)])
write("sst_table", "one_block", data, dict(meta, entries=[ejson(*e) for e in E1]))
data, meta = table([(b"apple", r, r, False)], bloom_keys=[e[0] for e in E1])
write("sst_table", "one_block_with_bloom", data, dict(meta, entries=[ejson(*e) for e in E1]))
E2 = [(b"k%02d" % i, (b"v%02d" % i) if i % 3 else None, 100 + i, 1000 + i, T + i) for i in range(9)]
blocks = [(E2[i][0], raw_block(E2[i:i + 3]), raw_block(E2[i:i + 3]), False) for i in range(0, 9, 3)]
data, meta = table(blocks, bloom_keys=[e[0] for e in E2])
write("sst_table", "three_blocks_tombstones_bloom", data, dict(meta, entries=[ejson(*e) for e in E2]))
# A hand-built LZ4 block: key "k", value 100 x "a". Sequence 1: 10 literals (through the first
# "a"), match offset 1 length 94; sequence 2: 11 literals. Token 0xAF = 10 literals, 15+75+4 match.
E3 = [(b"k", b"a" * 100, 1, 0, 0)]
raw = raw_block(E3); assert len(raw) == 115
lz = bytes([0xAF]) + raw[:10] + b"\x01\x00" + bytes([75]) + bytes([0xB0]) + raw[104:]
assert raw[10:104] == b"a" * 94
stored = u32(len(raw)) + lz
data, meta = table([(b"k", raw, stored, True)])
write("sst_table", "compressed_block", data, dict(meta, entries=[ejson(*e) for e in E3], canonical=False))
# Several versions of one key, newest first, in one block; a tombstone between two lives.
E4 = [(b"a", b"1", 2, 0, T), (b"k", b"v3", 9, 0, T, 6, 2), (b"k", b"v2", 6, 0, T, 6, 1), (b"k", None, 5, 0, T),
      (b"k", b"v1", 1, 0, T), (b"z", b"9", 3, 0, T)]
r4 = raw_block(E4)
data, meta = table([(b"a", r4, r4, False)], bloom_keys=[b"a", b"k", b"z"])
write("sst_table", "versions_newest_first", data, dict(meta, entries=[ejson(*e) for e in E4]))
E5 = [(b"k", b"v1", 1, 0, T), (b"k", b"v2", 6, 0, T, 1, 2)]
r5 = raw_block(E5)
data, _ = table([(b"k", r5, r5, False)])
write("sst_table", "versions_oldest_first", data, err("key_order", 5 + len(raw_block(E5[:1]))))

good, _ = table([(b"apple", r, r, False)], bloom_keys=[e[0] for e in E1])
fs = len(good) - 28
idx_off = struct.unpack(">Q", good[fs:fs + 8])[0]
bloom_off = struct.unpack(">Q", good[fs + 8:fs + 16])[0]
bad = bytearray(good); bad[idx_off + 6] ^= 0x01
write("sst_table", "corrupt_index", bytes(bad), err("bad_checksum", idx_off))
bad = bytearray(good); bad[fs + 3] ^= 0x01
write("sst_table", "corrupt_footer", bytes(bad), err("bad_checksum", fs + 20))
bad = bytearray(good); bad[-1] ^= 0x01
write("sst_table", "bad_footer_magic", bytes(bad), err("bad_magic", fs + 24))
write("sst_table", "truncated_last_byte", good[:-1], err("bad_magic", fs - 1 + 24))
write("sst_table", "truncated_to_header", good[:5], err("truncated", 0))
bad = bytearray(good); bad[5 + 2] ^= 0x01
write("sst_table", "corrupt_block", bytes(bad), err("bad_checksum", 5))
bad = bytearray(good); bad[bloom_off + 10] ^= 0x01
write("sst_table", "corrupt_bloom", bytes(bad), err("bad_checksum", bloom_off + 5 + (bloom_off and good[bloom_off+1:bloom_off+5] and struct.unpack(">I", good[bloom_off+1:bloom_off+5])[0])))
bad = bytearray(good); bad[0] = ord("X")
write("sst_table", "bad_header_magic", bytes(bad), err("bad_magic", 0))
bad = bytearray(good); bad[4] = 3
write("sst_table", "unsupported_version", bytes(bad), err("unsupported_version", 4))
# Keys out of order across blocks (each block valid, CRCs valid).
ba = raw_block([E2[3]]); bb = raw_block([E2[0]])
data, _ = table([(E2[3][0], ba, ba, False), (E2[0][0], bb, bb, False)])
write("sst_table", "index_keys_out_of_order", data, err("key_order", 5 + len(ba) + len(bb) + 4 + 4 + len(E2[3][0]) + 16))

# ---------- manifest ----------
def manifest_bytes(body_obj=None, body_text=None, crc=None, extra=""):
    body = body_text if body_text is not None else json.dumps(body_obj, separators=(",", ":"))
    c = crc32c(body.encode()) if crc is None else crc
    return ('{"body":' + body + ',"crc32c":' + str(c) + extra + "}\n").encode()

FILE = {"file": "00000000000000000007.sst", "level": 0, "minKeyHex": "6170706c65", "maxKeyHex": "636865727279", "size": 4242, "walOffset": 512, "createdAt": T}
BODY = {"formatVersion": 4, "nextFileNumber": 8, "walOffset": 512, "lastRevision": 3, "historyHorizon": 2, "files": [FILE], "leases": []}
def mjson(body):
    return {"format_version": body["formatVersion"], "next_file_number": body["nextFileNumber"], "wal_offset": body["walOffset"],
            "last_revision": body["lastRevision"], "history_horizon": body["historyHorizon"], "last_stamp": body.get("lastStamp", 0), "files": [{"file": f["file"], "level": f["level"], "min_key_hex": f["minKeyHex"],
            "max_key_hex": f["maxKeyHex"], "size": f["size"], "wal_offset": f["walOffset"], "created_at_ms": f["createdAt"]} for f in body["files"]],
            "leases": [{"id": l["id"], "ttl_ms": l["ttlMs"]} for l in body["leases"]]}
write("manifest", "one_file", manifest_bytes(BODY), mjson(BODY), raw=True)
EMPTY = {"formatVersion": 4, "nextFileNumber": 1, "walOffset": 0, "lastRevision": 0, "historyHorizon": 0, "files": [], "leases": []}
write("manifest", "empty", manifest_bytes(EMPTY), mjson(EMPTY), raw=True)
pretty = json.dumps(BODY, indent=2)
write("manifest", "pretty_body_whitespace", manifest_bytes(body_text=pretty), dict(mjson(BODY), canonical=False), raw=True)
mb = manifest_bytes(BODY); body_at = len(b'{"body":')
write("manifest", "bad_checksum", manifest_bytes(BODY, crc=crc32c(json.dumps(BODY, separators=(",", ":")).encode()) ^ 1), err("bad_checksum", body_at), raw=True)
rot = mb.replace(b'"size":4242', b'"size":4243')
write("manifest", "bit_rot_in_body", rot, err("bad_checksum", body_at), raw=True)
b2 = dict(BODY, formatVersion=5)
write("manifest", "unsupported_version", manifest_bytes(b2), err("unsupported_version", body_at), raw=True)
# A version-1 manifest (kvstore before MVCC: no historyHorizon) is refused by its version.
b1 = {k: v for k, v in BODY.items() if k not in ("historyHorizon", "leases")}; b1["formatVersion"] = 1
write("manifest", "version_1", manifest_bytes(b1), err("unsupported_version", body_at), raw=True)
# A valid format-2 manifest (before leases: no `leases`) is refused by its version too.
bv2 = {k: v for k, v in BODY.items() if k != "leases"}; bv2["formatVersion"] = 2
write("manifest", "version_2", manifest_bytes(bv2), err("unsupported_version", body_at), raw=True)
# A valid format-3 manifest (before stamps) is refused by its version too.
bv3 = dict(BODY, formatVersion=3)
write("manifest", "version_3", manifest_bytes(bv3), err("unsupported_version", body_at), raw=True)
b3 = dict(BODY, files=[dict(FILE, minKeyHex="636865727279", maxKeyHex="6170706c65")])
write("manifest", "min_key_above_max_key", manifest_bytes(b3), err("key_order", body_at), raw=True)
b4 = dict(BODY, files=[dict(FILE, minKeyHex="6170706C65")])
write("manifest", "uppercase_hex", manifest_bytes(b4), err("invalid_value", body_at), raw=True)
b5 = dict(BODY, files=[dict(FILE, file="../escape.sst")])
write("manifest", "file_name_with_slash", manifest_bytes(b5), err("invalid_value", body_at), raw=True)
b6 = dict(BODY, files=[FILE, FILE])
write("manifest", "duplicate_file", manifest_bytes(b6), err("invalid_value", body_at), raw=True)
b7 = dict(BODY, files=[dict(FILE, level=7)])
write("manifest", "level_too_deep", manifest_bytes(b7), err("length_too_large", body_at), raw=True)
write("manifest", "seed_shape_without_checksum", json.dumps({"files": [], "walOffset": 0}).encode(), err("bad_json", 7), raw=True)
write("manifest", "truncated", mb[:40], err("bad_json", 39), raw=True)
write("manifest", "not_json", b"\x00\xff", err("bad_json", 0), raw=True)
# The version is read before the schema: a later version's new field is unsupported_version.
b8 = dict(BODY, formatVersion=5, newField=[1, 2])
write("manifest", "future_version_unknown_field", manifest_bytes(b8), err("unsupported_version", body_at), raw=True)
b9 = {k: v for k, v in BODY.items() if k != "lastRevision"}; b9["formatVersion"] = 5
write("manifest", "future_version_missing_field", manifest_bytes(b9), err("unsupported_version", body_at), raw=True)
b10 = dict(BODY, files=[dict(FILE, file="7.sst")])
write("manifest", "sst_name_not_20_digits", manifest_bytes(b10), err("invalid_value", body_at), raw=True)
b11 = dict(BODY, nextFileNumber=2**64 - 1, files=[dict(FILE, file="99999999999999999999.sst")])
write("manifest", "sst_number_above_u64_max", manifest_bytes(b11), err("invalid_value", body_at), raw=True)
b12 = dict(BODY, nextFileNumber=7)
write("manifest", "file_number_not_below_next_file_number", manifest_bytes(b12), err("invalid_value", body_at), raw=True)
def f(n, level, lo, hi): return dict(FILE, file="%020d.sst" % n, level=level, minKeyHex=lo.hex(), maxKeyHex=hi.hex())
b13 = dict(BODY, files=[f(5, 1, b"a", b"c"), f(6, 1, b"b", b"d")])
write("manifest", "overlap_at_level_1", manifest_bytes(b13), err("key_order", body_at), raw=True)
b14 = dict(BODY, files=[f(5, 2, b"b", b"c"), f(6, 2, b"a", b"b")])
write("manifest", "shared_boundary_key_at_level_2", manifest_bytes(b14), err("key_order", body_at), raw=True)
b15 = dict(BODY, files=[f(4, 0, b"a", b"z"), f(5, 0, b"b", b"c"), f(6, 1, b"a", b"b"), f(7, 1, b"c", b"z"), f(3, 2, b"a", b"z")])
write("manifest", "overlap_at_level_0_and_across_levels", manifest_bytes(b15), mjson(b15), raw=True)
# Leases (format 3): strictly increasing ids, id in 1..=LEASE_ID_MAX, ttlMs in 1..=LEASE_TTL_MS_MAX;
# check-order step 8, invalid_value at the body's `{`.
def lease(i, ttl): return {"id": i, "ttlMs": ttl}
b16 = dict(BODY, leases=[lease(7, 60000), lease(LEASE_ID_MAX, LEASE_TTL_MS_MAX)])
write("manifest", "two_leases", manifest_bytes(b16), mjson(b16), raw=True)
b17 = dict(BODY, leases=[lease(9, 60000), lease(7, 60000)])
write("manifest", "lease_ids_decreasing", manifest_bytes(b17), err("invalid_value", body_at), raw=True)
b18 = dict(BODY, leases=[lease(7, 60000), lease(7, 1000)])
write("manifest", "lease_ids_repeated", manifest_bytes(b18), err("invalid_value", body_at), raw=True)
b19 = dict(BODY, leases=[lease(0, 60000)])
write("manifest", "lease_id_zero", manifest_bytes(b19), err("invalid_value", body_at), raw=True)
b20 = dict(BODY, leases=[lease(LEASE_ID_MAX + 1, 60000)])
write("manifest", "lease_id_above_max", manifest_bytes(b20), err("invalid_value", body_at), raw=True)
b21 = dict(BODY, leases=[lease(7, 0)])
write("manifest", "lease_ttl_zero", manifest_bytes(b21), err("invalid_value", body_at), raw=True)
b22 = dict(BODY, leases=[lease(7, LEASE_TTL_MS_MAX + 1)])
write("manifest", "lease_ttl_above_max", manifest_bytes(b22), err("invalid_value", body_at), raw=True)
# Step 7 (a file overlap, key_order) comes before step 8 (a bad lease).
b23 = dict(b13, leases=[lease(0, 60000)])
write("manifest", "file_overlap_before_bad_lease", manifest_bytes(b23), err("key_order", body_at), raw=True)
# An unknown member in a leases element is a schema error (step 5): bad_json where the parser
# stopped, the closing quote of the unknown member's name (as `seed_shape_without_checksum`).
b24 = dict(BODY, leases=[dict(lease(7, 60000), extra=1)])
mb24 = manifest_bytes(b24)
write("manifest", "lease_unknown_member", mb24, err("bad_json", mb24.index(b'"extra"') + len('"extra"') - 1), raw=True)
# Stamps (format 4): `lastStamp`, written after `historyHorizon` and only when not 0; a present 0
# is invalid_value at the body's `{` (check-order step 9, after the leases); any other JSON type
# or a negative number is a schema error (step 5).
def with_stamp(body, stamp):
    out = {}
    for k, v in body.items():
        out[k] = v
        if k == "historyHorizon": out["lastStamp"] = stamp
    return out
b25 = with_stamp(BODY, 17)
write("manifest", "last_stamp", manifest_bytes(b25), mjson(b25), raw=True)
b26 = with_stamp(BODY, 2**64 - 1)
write("manifest", "last_stamp_u64_max", manifest_bytes(b26), mjson(b26), raw=True)
b27 = with_stamp(BODY, 0)
write("manifest", "last_stamp_zero", manifest_bytes(b27), err("invalid_value", body_at), raw=True)
b28 = dict(BODY, lastStamp=17)  # after "leases": any member order is read alike
write("manifest", "last_stamp_last_member", manifest_bytes(b28), dict(mjson(b28), canonical=False), raw=True)
b29 = with_stamp(BODY, -1)
mb29 = manifest_bytes(b29)
write("manifest", "last_stamp_negative", mb29, err("bad_json", mb29.index(b'-1') + 1), raw=True)
# ---------- export stream (FORMAT § 6) ----------
# header (32 bytes) := "KVEXPORT" version:u8 reserved:[u8;7] revision:u64 horizon:u64
# chunk := kind:u8 length:u32 payload crc32c:u32 (over kind, length, payload)
# kinds: 1 versions (SST entries, § 4.2, wal_offset 0), 2 leases, 0xFF trailer
# trailer payload := versions:u64 leases:u64 stream_crc32c:u32 (CRC32C of every byte before it)
EXPORT_HEADER_LEN = 32
EXPORT_CHUNK_LEN_MAX = 16 * 1024 * 1024
def ex_header(rev, horizon, magic=b"KVEXPORT", version=1, reserved=bytes(7)):
    h = magic + u8(version) + reserved + u64(rev) + u64(horizon); assert len(h) == EXPORT_HEADER_LEN
    return h
def ex_chunk(kind, payload, length=None, crc=None):
    body = u8(kind) + u32(len(payload) if length is None else length) + payload
    return body + u32(crc32c(body) if crc is None else crc)
def ex_entries(E): return b"".join(entry(*e) for e in E)
def ex_versions(E): return ex_chunk(1, ex_entries(E))
def ex_leases_payload(leases, count=None):
    out = varint(len(leases) if count is None else count)
    for i, t in leases: out += varint(i) + varint(t)
    return out
def ex_leases(leases): return ex_chunk(2, ex_leases_payload(leases))
def ex_trailer_payload(before, versions, leases, crc=None):
    return u64(versions) + u64(leases) + u32(crc32c(before) if crc is None else crc)
def ex_stream(rev, horizon, chunks, versions, leases, crc=None, header=None):
    """Header, `chunks`, and a trailer counting `versions` and `leases` (stream CRC `crc` if given)."""
    s = (header or ex_header(rev, horizon)) + b"".join(chunks)
    return s + ex_chunk(0xFF, ex_trailer_payload(s, versions, leases, crc))
def ex_json(rev, horizon, E, leases, **kw):
    return dict({"revision": rev, "horizon": horizon, "versions": [ejson(*e) for e in E],
                 "leases": [{"id": i, "ttl_ms": t} for i, t in leases]}, **kw)
# Entries are (key, value or None, revision, wal_offset (0), created_at_ms, create_revision, version, lease)
# as `entry`/`ejson` take them (defaults: a value is a first version, a tombstone's metadata is 0).

# Valid, canonical (what the reference encoder writes): header, one versions chunk (far below the
# 1 MiB cut), one leases chunk (always), trailer.
write("export", "empty", ex_stream(0, 0, [ex_leases([])], 0, 0), ex_json(0, 0, [], []))
# One key, horizon 2 at revision 4: the versions above the horizon (4, the tombstone at 3) and the
# newest at or below it (2, the key's second put since its creation at 1); the live value is
# leased to 7, which the leases chunk holds.
E_ONE = [(b"k", b"v3", 4, 0, T + 4, 4, 1, 7), (b"k", None, 3, 0, T + 3), (b"k", b"v2", 2, 0, T + 2, 1, 2)]
L_ONE = [(7, 60000)]
V_ONE = ex_versions(E_ONE); LC_ONE = ex_leases(L_ONE)
one_key = ex_stream(4, 2, [V_ONE, LC_ONE], 3, 1)
write("export", "one_key_versions_tombstone_lease", one_key, ex_json(4, 2, E_ONE, L_ONE))
# Several keys at revision 10, horizon 5. History: 1 put a; 2 put b; 3 put a; 4 delete b; 5 put c
# (lease 3); 6 put a (lease 9); 7 put ab = ""; 8 put b; 9 put c (lease 3); 10 put "" (the empty
# key). Kept: every version above 5, and the newest at or below 5 of a (3) and c (5); b's tombstone
# at 4 is dropped (no older version of b is kept), as are a@1 and b@2. create_revision survives
# the versions it names (a's is 1). Lease 12 is granted and names no key; the largest id and TTL.
E_SEV = [(b"", b"e", 10, 0, T + 10),
         (b"a", b"3", 6, 0, T + 6, 1, 3, 9), (b"a", b"2", 3, 0, T + 3, 1, 2),
         (b"ab", b"", 7, 0, T + 7),
         (b"b", b"y", 8, 0, T + 8),
         (b"c", b"r", 9, 0, T + 9, 5, 2, 3), (b"c", b"q", 5, 0, T + 5, 5, 1, 3)]
L_SEV = [(3, 30000), (9, 120000), (12, 1000), (LEASE_ID_MAX, LEASE_TTL_MS_MAX)]
write("export", "several_keys_leases_horizon", ex_stream(10, 5, [ex_versions(E_SEV), ex_leases(L_SEV)], len(E_SEV), len(L_SEV)),
      ex_json(10, 5, E_SEV, L_SEV))
# Valid, not canonical: versions cut into two chunks (between two versions of one key; order is
# checked across chunks), and a stream without a leases chunk (it is optional; no key is leased).
write("export", "two_versions_chunks", ex_stream(10, 5, [ex_versions(E_SEV[:2]), ex_versions(E_SEV[2:]), ex_leases(L_SEV)], len(E_SEV), len(L_SEV)),
      ex_json(10, 5, E_SEV, L_SEV, canonical=False))
E_NL = [(b"x", b"2", 2, 0, T + 2, 1, 2), (b"x", b"1", 1, 0, T + 1)]
write("export", "no_leases_chunk", ex_stream(2, 0, [ex_versions(E_NL)], 2, 0), ex_json(2, 0, E_NL, [], canonical=False))

# Errors. Offsets are stream offsets; inside a payload, the payload's offset plus the error's
# offset in it (§ 6). The header: magic at 0, version at 8, reserved at 9, horizon at 24.
def ex_err(name, data, kind, offset): write("export", name, data, err(kind, offset))
ex_err("bad_magic", ex_stream(4, 2, [V_ONE, LC_ONE], 3, 1, header=ex_header(4, 2, magic=b"KVEXPORX")), "bad_magic", 0)
ex_err("version_2", ex_stream(4, 2, [V_ONE, LC_ONE], 3, 1, header=ex_header(4, 2, version=2)), "unsupported_version", 8)
ex_err("reserved_byte_set", ex_stream(4, 2, [V_ONE, LC_ONE], 3, 1, header=ex_header(4, 2, reserved=bytes(6) + b"\x01")), "reserved_not_zero", 9)
ex_err("horizon_above_revision", ex_stream(4, 5, [V_ONE, LC_ONE], 3, 1), "invalid_value", 24)
# Chunk heads: kind at the chunk's first byte, length at the byte after it; the length is checked
# before the chunk's presence (here 3 entries follow a head claiming 16 MiB + 1).
H = EXPORT_HEADER_LEN
ex_err("unknown_chunk_kind", ex_stream(4, 2, [ex_chunk(3, b"\x00"), V_ONE, LC_ONE], 3, 1), "unknown_tag", H)
ex_err("chunk_length_above_max", ex_header(4, 2) + u8(1) + u32(EXPORT_CHUNK_LEN_MAX + 1) + ex_entries(E_ONE), "length_too_large", H + 1)
# A payload bit flipped after the chunk's CRC was computed (the stream CRC covers the flipped byte,
# so only the chunk CRC is wrong): bad_checksum at the chunk's first byte.
bad = bytearray(V_ONE); bad[5 + 4 + 1 + 4] ^= 0x01  # first byte of the first value, "v3"
ex_err("chunk_crc_wrong", ex_stream(4, 2, [bytes(bad), LC_ONE], 3, 1), "bad_checksum", H)
# Trailer: the chunk starts after the header, the versions chunk and the leases chunk.
TR = H + len(V_ONE) + len(LC_ONE)
assert len(one_key) == TR + 5 + 20 + 4
ex_err("stream_crc_wrong", ex_stream(4, 2, [V_ONE, LC_ONE], 3, 1, crc=crc32c(one_key[:TR]) ^ 1), "bad_checksum", TR)
ex_err("trailer_versions_count_wrong", ex_stream(4, 2, [V_ONE, LC_ONE], 4, 1), "invalid_value", TR)
ex_err("trailer_leases_count_wrong", ex_stream(4, 2, [V_ONE, LC_ONE], 3, 0), "invalid_value", TR)
tp = ex_trailer_payload(one_key[:TR], 3, 1)
ex_err("trailer_payload_21_bytes", one_key[:TR] + ex_chunk(0xFF, tp + b"\x00"), "invalid_value", TR)
ex_err("trailer_payload_19_bytes", one_key[:TR] + ex_chunk(0xFF, tp[:19]), "invalid_value", TR)
# Truncation: at the first byte of the chunk that does not fit, or at the end of the stream when
# no chunk starts there.
ex_err("ends_mid_chunk", one_key[:H + 10], "truncated", H)
ex_err("ends_mid_chunk_head", one_key[:TR + 3], "truncated", TR)
ex_err("ends_mid_trailer", one_key[:-1], "truncated", TR)
ex_err("ends_without_trailer", one_key[:TR], "truncated", TR)
ex_err("ends_after_header", one_key[:H], "truncated", H)
ex_err("bytes_after_trailer", one_key + b"\x00", "trailing_bytes", len(one_key))
# etcd's snapshot framing after the trailer (§ 6.1): zero padding to a multiple of 512, then the
# SHA-256 of the stream and the padding. Valid framing is accepted (not canonical: the encoder
# writes the bare stream); a framing one byte short is trailing_bytes at its first byte; a
# padding byte that is not zero invalid_value at it; a wrong digest bad_checksum at the digest.
def etcd_framing(stream):
    pad = bytes((512 - len(stream) % 512) % 512)
    return pad + hashlib.sha256(stream + pad).digest()
FR_ONE = etcd_framing(one_key)
assert (len(one_key) + len(FR_ONE)) % 512 == 32
write("export", "etcd_snapshot_framing", one_key + FR_ONE, ex_json(4, 2, E_ONE, L_ONE, canonical=False))
ex_err("etcd_snapshot_framing_short", one_key + FR_ONE[1:], "trailing_bytes", len(one_key))
FR_NZ = bytearray(FR_ONE); FR_NZ[10] = 1
ex_err("etcd_snapshot_padding_not_zero", one_key + bytes(FR_NZ), "invalid_value", len(one_key) + 10)
FR_BAD = bytearray(FR_ONE); FR_BAD[-1] ^= 0xFF
ex_err("etcd_snapshot_digest_wrong", one_key + bytes(FR_BAD), "bad_checksum", len(one_key) + len(FR_ONE) - 32)
# Versions: order, uniqueness and the revision bound are checked per entry, at the entry's first
# byte (the error's offset in the payload; as SST blocks report key_order at the entry).
P = H + 5  # the first chunk's payload
E_ASC = list(reversed(E_ONE))  # k@2, k@3, k@4: the tombstone at 3 is the first out of order
ex_err("versions_ascending_revisions", ex_stream(4, 2, [ex_versions(E_ASC), LC_ONE], 3, 1), "key_order", P + len(entry(*E_ASC[0])))
E_OOK = [(b"b", b"1", 2, 0, T + 2), (b"a", b"1", 1, 0, T + 1)]
ex_err("keys_descending", ex_stream(2, 0, [ex_versions(E_OOK), ex_leases([])], 2, 0), "key_order", P + len(entry(*E_OOK[0])))
# The same (key, revision) at the end of one chunk and the start of the next.
V_A = ex_versions(E_ONE[:2]); V_B = ex_versions(E_ONE[1:])
ex_err("repeated_key_revision_across_chunks", ex_stream(4, 2, [V_A, V_B, LC_ONE], 4, 1), "key_order", H + len(V_A) + 5)
E_ABOVE = [(b"a", b"1", 2, 0, T + 2), (b"b", b"1", 5, 0, T + 5)]
ex_err("version_above_header_revision", ex_stream(4, 0, [ex_versions(E_ABOVE), ex_leases([])], 2, 0), "invalid_value", P + len(entry(*E_ABOVE[0])))
E_WAL = [E_ONE[0], (b"k", None, 3, 77, T + 3), E_ONE[2]]
ex_err("wal_offset_not_zero", ex_stream(4, 2, [ex_versions(E_WAL), LC_ONE], 3, 1), "invalid_value", P + len(entry(*E_WAL[0])))
# An empty versions chunk: invalid_value at its (empty) payload's offset.
ex_err("empty_versions_chunk", ex_stream(4, 2, [ex_chunk(1, b""), V_ONE, LC_ONE], 3, 1), "invalid_value", P)
# An entry that runs past its chunk's payload: the payload ends after the second entry's value_len
# (a tombstone's), so its missing bytes begin at the revision varint, the payload's end; the
# chunk's CRC and the next chunk follow, and are not read as the entry.
pl = entry(*E_ONE[0]) + entry(*E_ONE[1])[:4 + 1 + 4]
ex_err("entry_runs_past_payload", ex_stream(4, 2, [ex_chunk(1, pl), LC_ONE], 2, 1), "truncated", P + len(pl))
# Chunk sequence: a versions chunk after the leases chunk, a second leases chunk: invalid_value at
# that chunk's first byte.
ex_err("versions_chunk_after_leases_chunk", ex_stream(4, 2, [LC_ONE, V_ONE], 3, 1), "invalid_value", H + len(LC_ONE))
ex_err("two_leases_chunks", ex_stream(4, 2, [V_ONE, LC_ONE, LC_ONE], 3, 1), "invalid_value", H + len(V_ONE) + len(LC_ONE))
# Leases payload (after V_ONE): count varint, then (id, ttl_ms) pairs; a bad id at its varint.
LP = H + len(V_ONE) + 5
def ex_leases_case(name, payload, nleases, kind, offset):
    ex_err(name, ex_stream(4, 2, [V_ONE, ex_chunk(2, payload)], 3, nleases), kind, offset)
ex_leases_case("lease_id_zero", ex_leases_payload([(0, 60000), (7, 60000)]), 2, "invalid_value", LP + 1)
first = varint(9) + varint(60000)
ex_leases_case("lease_ids_decreasing", ex_leases_payload([(9, 60000), (7, 60000)]), 2, "invalid_value", LP + 1 + len(first))
first = varint(7) + varint(60000)
ex_leases_case("lease_ids_repeated", ex_leases_payload([(7, 60000), (7, 1000)]), 2, "invalid_value", LP + 1 + len(first))
# A count above (payload bytes after the count) / 2 (each lease takes at least two bytes) is
# length_too_large at the count, before any allocation: 3 claimed, 4 bytes (one lease) follow.
p = ex_leases_payload([(7, 60000)], count=3); assert len(p) - 1 == 4
ex_leases_case("lease_count_above_remaining", p, 3, "length_too_large", LP)
p = ex_leases_payload(L_ONE)
ex_leases_case("leases_trailing_bytes", p + b"\x00", 1, "trailing_bytes", LP + len(p))

# ---------- backup meta (FORMAT § 7) ----------
# meta := "KVBACKUP" version:u8 reserved:[u8;7] id:u64 revision:u64 horizon:u64 created_at_ms:u64
#         table_count:u32 (number:u64 size:u64 crc32c:u32)* manifest_len:u32 manifest crc32c:u32
BK_HEAD_LEN = 52
def bk_meta(id_, rev, horizon, created, tables, manifest, magic=b"KVBACKUP", version=1,
            reserved=bytes(7), count=None, mlen=None, crc=None, tail=b""):
    out = magic + u8(version) + reserved + u64(id_) + u64(rev) + u64(horizon) + u64(created)
    out += u32(len(tables) if count is None else count)
    for n, size, c in tables: out += u64(n) + u64(size) + u32(c)
    out += u32(len(manifest) if mlen is None else mlen) + manifest
    return out + u32(crc32c(out) if crc is None else crc) + tail
def bk_json(id_, rev, horizon, created, tables, manifest):
    return {"id": id_, "revision": rev, "horizon": horizon, "created_at_ms": created,
            "tables": [{"number": n, "size": s, "crc32c": c} for n, s, c in tables],
            "manifest_hex": manifest.hex()}
BK_TABLES = [(5, 4096, 0xDEADBEEF), (9, 77, 1)]
BK_MAN = b'{"formatVersion":1}'
write("backup_meta", "two_tables", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN), bk_json(3, 40, 12, T, BK_TABLES, BK_MAN))
write("backup_meta", "no_table", bk_meta(1, 0, 0, 0, [], b""), bk_json(1, 0, 0, 0, [], b""))
def bk_err(name, data, kind, offset): write("backup_meta", name, data, err(kind, offset))
bk_err("bad_magic", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, magic=b"KVBACKUX"), "bad_magic", 0)
bk_err("version_2", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, version=2), "unsupported_version", 8)
bk_err("reserved_byte_set", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, reserved=b"\x01" + bytes(6)), "reserved_not_zero", 9)
bk_err("horizon_above_revision", bk_meta(3, 40, 41, T, BK_TABLES, BK_MAN), "invalid_value", 32)
# Counts are checked against the limit (2^20) and the bytes left (20 a table) before any table is read.
bk_err("table_count_above_max", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, count=(1 << 20) + 1), "length_too_large", 48)
bk_err("table_count_above_remaining", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, count=4), "length_too_large", 48)
bk_err("tables_not_increasing", bk_meta(3, 40, 12, T, list(reversed(BK_TABLES)), BK_MAN), "key_order", BK_HEAD_LEN + 20)
BK_MLEN_AT = BK_HEAD_LEN + 2 * 20
bk_err("manifest_len_above_max", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, mlen=64 * 1024 * 1024 + 1), "length_too_large", BK_MLEN_AT)
bk_err("manifest_runs_past_end", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, mlen=1000), "truncated", BK_MLEN_AT + 4)
BK_CRC_AT = BK_MLEN_AT + 4 + len(BK_MAN)
bk_err("crc_wrong", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, crc=0), "bad_checksum", BK_CRC_AT)
bk_err("bytes_after_crc", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN, tail=b"\x00"), "trailing_bytes", BK_CRC_AT + 4)
bk_err("ends_mid_head", bk_meta(3, 40, 12, T, BK_TABLES, BK_MAN)[:30], "truncated", 24)

print("vectors written under", ROOT)
