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
