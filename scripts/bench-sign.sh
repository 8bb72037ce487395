#!/usr/bin/env bash
# Measures `stele sign` end to end (hash the file, sign, POST /add, wait for
# the receipt, check it with --vkey, write FILE.stele) against a local
# `stele serve` on a temporary folder, for a 1 KB and a 100 MB file. Prints
# the median and the extremes of RUNS runs each. A measurement, not a test.
#
# Usage: scripts/bench-sign.sh [RUNS, default 5]
# The binary is $STELE_BIN, else target/release/stele, else target/debug/stele.
set -euo pipefail

runs="${1:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stele="${STELE_BIN:-}"
if [[ -z "$stele" ]]; then
    for candidate in "$root/target/release/stele" "$root/target/debug/stele"; do
        if [[ -x "$candidate" ]] && "$candidate" sign --help >/dev/null 2>&1; then
            stele="$candidate"
            break
        fi
    done
fi
if [[ -z "$stele" ]]; then
    echo "no stele binary with a sign subcommand: cargo build --release -p stele-sequencer --bin stele" >&2
    exit 2
fi

work="$(mktemp -d)"
server=""
cleanup() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$stele" serve --data "$work/data" --listen 127.0.0.1:0 --origin bench.example/log \
    --log-level warn >"$work/serve.out" 2>"$work/serve.err" &
server=$!
url=""
for _ in $(seq 1 200); do
    url="$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$work/serve.out" | head -n 1)"
    [[ -n "$url" ]] && break
    sleep 0.05
done
if [[ -z "$url" ]]; then
    echo "stele serve did not start:" >&2
    cat "$work/serve.err" >&2
    exit 1
fi
"$stele" keygen --maintainer --out "$work/key" >/dev/null 2>&1

head -c 1024 /dev/urandom >"$work/small-1.0.tar.gz"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$work/large-1.0.tar.gz"

echo "stele sign end to end: $stele, $runs runs each, log at $url"
for file in small-1.0.tar.gz large-1.0.tar.gz; do
    times=()
    for run in $(seq 1 "$runs"); do
        start=$(date +%s%N)
        "$stele" sign "$work/$file" --key "$work/key/maintainer.key" --namespace bench/pkg \
            --version "1.0.$run" --log "$url" --vkey "$work/data/log.vkey" >/dev/null 2>&1
        end=$(date +%s%N)
        times+=($(((end - start) / 1000000)))
    done
    sorted=($(printf '%s\n' "${times[@]}" | sort -n))
    size=$(stat -c %s "$work/$file")
    echo "$file ($size bytes): median ${sorted[$((runs / 2))]} ms, min ${sorted[0]} ms, max ${sorted[$((runs - 1))]} ms"
done
