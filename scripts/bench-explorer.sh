#!/usr/bin/env bash
# What the explorer costs a reader on a large log: bytes downloaded and
# time to the verified view, for the home page and an entry page, measured
# in headless Chromium (explorer/test/bench.mjs: DevTools protocol network
# events and the page's own `stele-ready` performance mark).
#
#   scripts/bench-explorer.sh
#
# `stele-genlog` writes a valid log of N 16-byte entries, `stele adopt`
# makes it a Stele log, `stele serve` serves it (and publishes the
# explorer), the indexer is given time to catch up (its statistics are read
# by the home page), then each page is loaded BENCH_RUNS times in a new
# browser context (cold cache) and once more in the same context (warm
# cache). Results: $BENCH_OUT/results.jsonl and a table on stdout. Nothing
# here asserts a timing.
#
# Environment:
#   BENCH_ENTRIES   default 1000000
#   BENCH_RUNS      default 5
#   BENCH_OUT       default target/bench-explorer (the log is deleted after)
#   BENCH_STELE, BENCH_GENLOG   binaries (default target/debug's, built
#                   here unless BENCH_NO_BUILD=1)
#   STELE_CHROMIUM  default /usr/bin/chromium
# Needs node, explorer/node_modules (npm ci in explorer/), chromium, curl.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
entries="${BENCH_ENTRIES:-1000000}"
runs="${BENCH_RUNS:-5}"
out="${BENCH_OUT:-$root/target/bench-explorer}"
chromium="${STELE_CHROMIUM:-/usr/bin/chromium}"
if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    cargo build --locked -p stele-sequencer --bin stele -p stele-e2e --bin stele-genlog >&2
fi
stele="${BENCH_STELE:-$root/target/debug/stele}"
genlog="${BENCH_GENLOG:-$root/target/debug/stele-genlog}"
origin="bench.example/explorer"

rm -rf "$out/log" "$out/keys"
mkdir -p "$out/keys"
"$stele" keygen --origin "$origin" --out "$out/keys" >/dev/null
echo "bench-explorer: writing a log of $entries entries" >&2
"$genlog" write --out "$out/log" --entries "$entries" --key "$out/keys/log.key" >"$out/genlog.txt"
"$stele" adopt --data "$out/log" --key "$out/keys/log.key" --origin "$origin" >"$out/adopt.txt" 2>&1
cp "$out/keys/log.vkey" "$out/log/log.vkey"

"$stele" serve --data "$out/log" --key "$out/keys/log.key" --listen 127.0.0.1:0 \
    --log-level warn >"$out/serve.out" 2>"$out/serve.err" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$out/log"' EXIT
url=""
for _ in $(seq 1 600); do
    url="$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$out/serve.out" | head -n 1)"
    [[ -n "$url" ]] && break
    sleep 0.1
done
[[ -n "$url" ]] || { echo "bench-explorer: stele serve did not start" >&2; cat "$out/serve.err" >&2; exit 1; }
echo "bench-explorer: serving at $url; waiting for the indexer (at most 10 minutes)" >&2
for _ in $(seq 1 600); do
    if [[ "$(cat "$out/log/.stele/index-size" 2>/dev/null)" == "$entries" ]]; then
        break
    fi
    sleep 1
done
echo "bench-explorer: index covers $(cat "$out/log/.stele/index-size" 2>/dev/null || echo 0) entries" >&2

(cd explorer && node test/bench.mjs "$chromium" "$url/" "$runs" "#/" "#/entry/$((entries / 2))" "#/entry/$((entries - 1))") \
    | tee "$out/results.jsonl" >&2
python3 - "$out/results.jsonl" "$entries" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print(f"explorer on a log of {int(sys.argv[2]):,} entries (median of {rows[0]['runs']} runs)")
print("| page | cache | bytes downloaded | requests (log objects) | time to verified view ms |")
print("|---|---|---|---|---|")
for r in rows:
    print(f"| `{r['page']}` | {r['cache']} | {r['bytes']:,} | {r['requests']} ({r['log_requests']}) | {r['median_ms']} |")
PY
