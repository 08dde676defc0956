#!/usr/bin/env bash
# Copies spec/vectors into fuzz/corpus/<target>/ as binary seeds (hex vectors decoded).
# Usage: bash fuzz/seed-corpus.sh   (idempotent; corpora are gitignored)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seed() { # seed <target> <vector dir>...
    local target=$1; shift
    mkdir -p "fuzz/corpus/$target"
    for dir in "$@"; do
        for f in spec/vectors/"$dir"/*.hex spec/vectors/"$dir"/*.raw; do
            [ -e "$f" ] || continue
            local out="fuzz/corpus/$target/vector-$dir-$(basename "${f%.*}")"
            case "$f" in
                *.hex) python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex("".join(sys.stdin.read().split())))' < "$f" > "$out" ;;
                *.raw) cp "$f" "$out" ;;
            esac
        done
    done
}

seed wal_decode wal_frame wal_record wal_replay
seed sst_decode sst_table sst_entry
seed manifest_decode manifest
seed varint varint
seed export_decode export
seed backup_meta_decode backup_meta
# lease_payload's input is the frame's type byte (5 or 6, whose parity picks grant or revoke)
# and the payload: each lease record vector, unframed.
mkdir -p fuzz/corpus/lease_payload
for f in spec/vectors/wal_record/lease_*.hex; do
    [ -e "$f" ] || continue
    python3 -c 'import sys; b = bytes.fromhex("".join(sys.stdin.read().split())); sys.stdout.buffer.write(b[1:2] + b[12:-12])' \
        < "$f" > "fuzz/corpus/lease_payload/vector-$(basename "${f%.hex}")"
done
mkdir -p fuzz/corpus/structured
# kvstore-raft's vectors live in spec/FORMAT.md itself (§ 12.6 `raft-vector <name>`, § 12.7
# `peer-vector <name>`, each followed by a line of hex). The raft targets read a selector byte
# first (which decoder or message); each vector is seeded under every selector, since the
# messages share their field numbers and a seed for one is a start for the others.
seed_spec() { # seed_spec <target> <prefix> <selectors>
    local target=$1 prefix=$2 selectors=$3
    mkdir -p "fuzz/corpus/$target"
    python3 - "$target" "$prefix" "$selectors" <<'PY'
import sys
target, prefix, selectors = sys.argv[1], sys.argv[2] + " ", int(sys.argv[3])
lines = open("spec/FORMAT.md").read().splitlines()
for i, line in enumerate(lines[:-1]):
    if line.startswith(prefix):
        name, data = line[len(prefix):].strip(), bytes.fromhex("".join(lines[i + 1].split()))
        for s in range(selectors):
            with open(f"fuzz/corpus/{target}/vector-{name}-{s}", "wb") as out:
                out.write(bytes([s]) + data)
PY
}
seed_spec raft_record_decode raft-vector 9
seed_spec raft_peer_decode peer-vector 13
# § 12.6's membership vector has one config and one node; from seeds alone the fuzzers did not
# build a joint membership of two nodes in 5 minutes. These seeds carry one (voters {1, 2} and {2, 3}, node 4 a learner),
# coded here from spec/raft.proto, as an entry, a stored membership, a state pointer's snapshot
# meta, an AppendEntries entry and a snapshot head.
python3 - <<'PY'
def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
def field(tag, value):  # value: int (varint) or bytes (length-delimited)
    if isinstance(value, int):
        return varint(tag << 3) + varint(value)
    return varint(tag << 3 | 2) + varint(len(value)) + value
def msg(*fields):
    return b"".join(field(t, v) for t, v in fields)
log_id = msg((1, 2), (2, 1), (3, 7))
voters = lambda *ids: msg((1, b"".join(varint(i) for i in ids)))  # packed
nodes = [msg((1, i), (2, f"127.0.0.1:{2379 + i}".encode())) for i in (1, 2, 3, 4)]
membership = msg((1, voters(1, 2)), (1, voters(2, 3)), *((2, n) for n in nodes))
entry = msg((1, log_id), (4, membership))
stored = msg((1, log_id), (2, membership))
meta = msg((1, log_id), (2, stored), (3, b"2-7-1"))
pointer = msg((1, 3), (2, meta))
vote = msg((1, 2), (2, 1), (3, 1))
append = msg((1, vote), (2, msg((1, 2), (2, 1), (3, 6))), (3, entry), (4, log_id))
head = msg((1, vote), (2, meta), (3, 4096))
seeds = {
    "raft_record_decode": {0: entry, 3: stored, 6: pointer},
    "raft_peer_decode": {0: append, 4: msg((1, head))},
}
for target, by_selector in seeds.items():
    for selector, data in by_selector.items():
        with open(f"fuzz/corpus/{target}/joint-membership-{selector}", "wb") as out:
            out.write(bytes([selector]) + data)
PY
