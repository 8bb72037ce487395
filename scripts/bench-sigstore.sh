#!/usr/bin/env bash
# What the submit function takes off the sequencer: the same signed
# hashedrekord requests (ECDSA P-256, signed before the clock starts) sent
# to one `stele serve` on the same 2 cores, either to the public Rekor v2
# API, where the sequencer verifies each signature, or as the canonical
# entries the function forwards after verifying them, to the private
# ingress. Reports entries/s, latency and the sequencer's CPU time per
# entry (from /proc), as a Markdown table, with random 256-byte opaque
# entries (POST /add) for comparison.
#
#   scripts/bench-sigstore.sh
#
# Environment: BENCH_COUNT (requests per run, default 300000),
# BENCH_DURATION (15s), BENCH_WARMUP (2s), BENCH_WORKERS (512),
# BENCH_MAX_BATCH (1024), BENCH_INTERVAL (50ms), BENCH_KINDS (default
# "opaque sigstore ingress"), BENCH_OUT
# (target/bench-sigstore), BENCH_NO_BUILD=1.
#
# Figures from a shared 2-core machine are noisy; nothing here asserts a
# timing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
count="${BENCH_COUNT:-300000}"
duration="${BENCH_DURATION:-15s}"
warmup="${BENCH_WARMUP:-2s}"
workers="${BENCH_WORKERS:-512}"
max_batch="${BENCH_MAX_BATCH:-1024}"
interval="${BENCH_INTERVAL:-50ms}"
out="${BENCH_OUT:-$root/target/bench-sigstore}"
mkdir -p "$out"

if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    cargo build --release --locked -p stele-sequencer --bin stele -p stele-e2e --bin stele-load >&2
fi
stele="${BENCH_STELE:-$root/target/release/stele}"
load="$root/target/release/stele-load"
STELE_INGRESS_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export STELE_INGRESS_SECRET

stele_pid=""
cleanup() {
    if [[ -n "$stele_pid" ]] && kill -0 "$stele_pid" 2>/dev/null; then
        kill "$stele_pid" 2>/dev/null || true
        wait "$stele_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# CPU seconds (user + system) a process has used so far.
cpu_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

echo "| path | verified by | entries/s | p50 ms | p99 ms | sequencer CPU µs/entry |"
echo "|---|---|---|---|---|---|"
for kind in ${BENCH_KINDS:-opaque sigstore ingress}; do
    data="$out/$kind"
    rm -rf "$data"
    "$stele" serve --data "$data" --listen 127.0.0.1:0 --ingress-listen 127.0.0.1:0 \
        --max-batch "$max_batch" --batch-interval "$interval" --pool-size 65536 \
        --max-connections $((workers + 64)) \
        --log-level warn >"$out/$kind.stdout" 2>"$out/$kind.stderr" &
    stele_pid=$!
    for _ in $(seq 100); do
        grep -q '^listening on' "$out/$kind.stdout" 2>/dev/null && break
        sleep 0.1
    done
    public="$(sed -n 's/^listening on //p' "$out/$kind.stdout")"
    ingress="$(sed -n 's/^ingress listening on //p' "$out/$kind.stdout")"
    url="$public"
    [[ "$kind" == ingress ]] && url="$ingress"
    # Signing happens before the load starts; the CPU is read around the
    # load alone by sampling when stele-load says it has signed.
    "$load" --kind "$kind" --url "$url" --count "$count" --workers "$workers" \
        --duration "$duration" --warmup "$warmup" --threads 1 --json \
        --verify 100 --vkey "$data/log.vkey" >"$out/$kind.json" 2>"$out/$kind.load" &
    load_pid=$!
    until [[ "$kind" == opaque ]] || grep -q 'signed' "$out/$kind.load" 2>/dev/null; do
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 0.05
    done
    cpu_before="$(cpu_seconds "$stele_pid")"
    wait "$load_pid" || { cat "$out/$kind.load" >&2; exit 1; }
    cpu_after="$(cpu_seconds "$stele_pid")"
    kill "$stele_pid"
    wait "$stele_pid" || true
    stele_pid=""
    python3 - "$out/$kind.json" "$kind" "$cpu_before" "$cpu_after" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
kind, before, after = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
total = report["accepted_total"]
assert report["receipts_verified"] == report["receipts_checked"] > 0, report
path, verified = {
    "opaque": ("POST /add (256-byte opaque entries, for comparison)", "nobody"),
    "sigstore": ("POST /api/v2/log/entries", "the sequencer"),
    "ingress": ("private ingress", "the function (before the run)"),
}[kind]
print(f"| {path} | {verified} | {report['entries_per_second']:.0f} | "
      f"{report['latency_ms']['p50']:.0f} | {report['latency_ms']['p99']:.0f} | "
      f"{(after - before) * 1e6 / max(total, 1):.1f} |")
PY
done
