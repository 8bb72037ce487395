#!/usr/bin/env bash
# Load benchmark of `stele serve`: sustained entries/s and submit-to-receipt
# latency for 256-byte entries, with the load generator on the same machine,
# on the filesystem backend and on a local SeaweedFS, for several
# max_batch / batch_interval settings, each at a light load (below
# saturation) and at a saturating one. Prints a Markdown table.
#
#   scripts/bench-load.sh [fs] [s3] [s3-20ms]   (default: fs s3)
#   scripts/bench-load.sh --duplicates [fs] [s3]
#
# s3-20ms is the local SeaweedFS behind a proxy that adds 20 ms to every
# storage request (10 ms each way, as a link would: each chunk is passed on
# 10 ms after it arrived, in order), the latency of a real S3 region.
#
# BENCH_BASELINE=/path/to/stele also runs every case with that binary (an
# earlier build, e.g. of the commit before a change), case by case beside
# the current one, in the same run; the `build` column tells them apart.
# BENCH_STELE and BENCH_LOAD override the current `stele` and the load
# generator (default: this tree's release builds).
#
# --duplicates measures the duplicates' path instead: it logs
# BENCH_DUP_ENTRIES (100000) entries, restarts `stele serve` on that log
# with the tile cache off and on, and resubmits those entries with
# BENCH_DUP_WORKERS (256) workers, reporting answers/s, latency and the
# storage GETs each answer cost (from /metrics).
#
# Environment: BENCH_DURATION (per run, default 12s), BENCH_WARMUP (2s),
# BENCH_LIGHT_WORKERS (64), BENCH_CONFIGS (default
# "256:10ms:512 1024:50ms:2048 4096:100ms:4096", each
# max_batch:batch_interval:saturating_workers), BENCH_OUT (folder for the
# JSON of every run and the servers' logs, default target/bench-load),
# BENCH_NO_BUILD=1 (use the release binaries already built).
#
# Figures from a shared 2-core machine are noisy: compare runs made in the
# same conditions. Nothing here asserts a timing.
set -euo pipefail

mode=new
if [[ "${1:-}" == --duplicates ]]; then
    mode=duplicates
    shift
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

backends=("$@")
if [[ ${#backends[@]} -eq 0 ]]; then
    backends=(fs s3)
fi
duration="${BENCH_DURATION:-12s}"
warmup="${BENCH_WARMUP:-2s}"
light_workers="${BENCH_LIGHT_WORKERS:-64}"
configs="${BENCH_CONFIGS:-256:10ms:512 1024:50ms:2048 4096:100ms:4096}"
out="${BENCH_OUT:-$root/target/bench-load}"
mkdir -p "$out"

if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    echo "bench-load: building release binaries" >&2
    cargo build --release --locked -p stele-sequencer --bin stele -p stele-e2e --bin stele-load >&2
fi
stele="${BENCH_STELE:-$root/target/release/stele}"
load="${BENCH_LOAD:-$root/target/release/stele-load}"
# The builds to compare: name=binary.
builds=("current=$stele")
if [[ -n "${BENCH_BASELINE:-}" ]]; then
    builds=("baseline=$BENCH_BASELINE" "current=$stele")
fi

seaweed_dir=""
stele_pid=""
proxy_pid=""
cleanup() {
    if [[ -n "$stele_pid" ]] && kill -0 "$stele_pid" 2>/dev/null; then
        kill "$stele_pid" 2>/dev/null || true
        wait "$stele_pid" 2>/dev/null || true
    fi
    if [[ -n "$proxy_pid" ]]; then
        kill "$proxy_pid" 2>/dev/null || true
        wait "$proxy_pid" 2>/dev/null || true
    fi
    if [[ -n "$seaweed_dir" ]]; then
        scripts/stop-seaweedfs.sh "$seaweed_dir" >&2 || true
    fi
}
trap cleanup EXIT

# start_stele BACKEND MAX_BATCH INTERVAL NAME [keep [FLAGS...]]: starts
# `stele serve` on a fresh log (or, with `keep`, on the log NAME from an
# earlier start, with extra FLAGS) and sets stele_pid and stele_url.
run_id="$RANDOM"
start_stele() {
    local backend="$1" max_batch="$2" interval="$3" name="$4"
    shift 4
    local data="$out/$name"
    if [[ "${1:-}" == keep ]]; then
        shift
    else
        rm -rf "$data"
    fi
    mkdir -p "$data"
    local args=(serve --data "$data" --listen 127.0.0.1:0 --max-batch "$max_batch"
        --batch-interval "$interval" --max-connections 16384 --pool-size 262144
        --log-level warn "$@")
    if [[ "$backend" == s3* ]]; then
        args+=(--s3-bucket "$STELE_S3_BUCKET" --s3-endpoint "$STELE_S3_ENDPOINT"
            --s3-region "${AWS_REGION:-us-east-1}" --s3-path-style=true
            --s3-prefix "bench-$name-$run_id")
    fi
    # Only the flags configure it: s3.env's STELE_S3_* must not leak into
    # the filesystem runs.
    env -u STELE_S3_BUCKET -u STELE_S3_ENDPOINT "${stele_bin:-$stele}" "${args[@]}" \
        >"$data/stele.out" 2>"$data/stele.err" &
    stele_pid=$!
    stele_url=""
    for _ in $(seq 1 600); do
        stele_url="$(grep -o 'listening on http://[0-9.:]*' "$data/stele.out" | cut -d' ' -f3 || true)"
        if [[ -n "$stele_url" ]]; then
            return
        fi
        if ! kill -0 "$stele_pid" 2>/dev/null; then
            echo "bench-load: stele exited; its stderr:" >&2
            tail -20 "$data/stele.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "bench-load: stele did not listen within 60 s" >&2
    exit 1
}

stop_stele() {
    kill -TERM "$stele_pid"
    wait "$stele_pid" || true
    stele_pid=""
}

# field JSON NAME: a number from stele-load's JSON.
field() {
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d
for k in sys.argv[2].split("."): v=v[k]
print(f"{v:.0f}" if sys.argv[2]=="entries_per_second" else f"{v:.1f}" if isinstance(v,float) else v)' "$1" "$2"
}

# storage_gets: the storage reads `stele serve` has made so far.
storage_gets() {
    curl -fsS "$stele_url/metrics" |
        awk '/^stele_storage_operations_total\{.*operation="get"/ { sum += $2 } END { print sum + 0 }'
}

# start_latency_proxy UPSTREAM DELAY_MS: a TCP proxy on loopback that
# passes every chunk on DELAY_MS / 2 after it arrived, in each direction, in
# order; sets proxy_url.
start_latency_proxy() {
    local upstream="$1" delay_ms="$2" port_file="$out/latency-proxy.port"
    rm -f "$port_file"
    python3 - "$upstream" "$delay_ms" "$port_file" >"$out/latency-proxy.log" 2>&1 <<'PY' &
import asyncio, sys, time
from urllib.parse import urlsplit

upstream = urlsplit(sys.argv[1])
one_way = float(sys.argv[2]) / 2000.0
port_file = sys.argv[3]

async def pipe(reader, writer):
    # Chunks go through a queue stamped with their arrival time; the sender
    # waits until each is one_way old: latency without a bandwidth limit.
    queue = asyncio.Queue()

    async def receive():
        while True:
            data = await reader.read(1 << 16)
            await queue.put((time.monotonic(), data))
            if not data:
                return

    async def send():
        while True:
            arrived, data = await queue.get()
            wait = arrived + one_way - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(receive(), send())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def connection(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection(
            upstream.hostname, upstream.port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer),
                         pipe(server_reader, client_writer))

async def main():
    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    with open(port_file, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    await server.serve_forever()

asyncio.run(main())
PY
    proxy_pid=$!
    for _ in $(seq 1 100); do
        if [[ -s "$port_file" ]]; then
            proxy_url="http://127.0.0.1:$(cat "$port_file")"
            return
        fi
        sleep 0.1
    done
    echo "bench-load: the latency proxy did not start; see $out/latency-proxy.log" >&2
    exit 1
}

# start_backend BACKEND: starts SeaweedFS for s3 (and the latency proxy in
# front of it for s3-20ms).
start_backend() {
    if [[ "$1" == s3* ]]; then
        seaweed_dir="$out/seaweedfs"
        rm -rf "$seaweed_dir"
        scripts/start-seaweedfs.sh "$seaweed_dir" >&2
        # shellcheck disable=SC1091
        source "$seaweed_dir/s3.env"
        export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
    fi
    if [[ "$1" == s3-20ms ]]; then
        start_latency_proxy "$STELE_S3_ENDPOINT" 20
        STELE_S3_ENDPOINT="$proxy_url"
    fi
}

stop_backend() {
    if [[ -n "$proxy_pid" ]]; then
        kill "$proxy_pid" 2>/dev/null || true
        wait "$proxy_pid" 2>/dev/null || true
        proxy_pid=""
    fi
    if [[ "$1" == s3* ]]; then
        scripts/stop-seaweedfs.sh "$seaweed_dir" >&2
        seaweed_dir=""
    fi
}

if [[ "$mode" == duplicates ]]; then
    entries="${BENCH_DUP_ENTRIES:-100000}"
    workers="${BENCH_DUP_WORKERS:-256}"
    echo "| backend | tile cache | workers | duplicates/s | p50 ms | p99 ms | storage GETs per duplicate |"
    echo "|---|---|---|---|---|---|---|"
    for backend in "${backends[@]}"; do
        start_backend "$backend"
        name="$backend-duplicates"
        start_stele "$backend" 4096 50ms "$name"
        "$load" --url "$stele_url" --workers 2048 --count "$entries" --distinct "$entries" \
            --seed 5 --duration 10m --warmup 0s --json >"$out/$name-seed.json"
        stop_stele
        for cache in 0 33554432; do
            start_stele "$backend" 4096 50ms "$name" keep --tile-cache-bytes "$cache"
            before="$(storage_gets)"
            json="$("$load" --url "$stele_url" --workers "$workers" --distinct "$entries" \
                --seed 5 --duration "$duration" --warmup "$warmup" --json)"
            after="$(storage_gets)"
            stop_stele
            echo "$json" >"$out/$name-cache-$cache.json"
            answers="$(field "$json" accepted_total)"
            per="$(python3 -c 'import sys; print(f"{(int(sys.argv[2]) - int(sys.argv[1])) / max(int(sys.argv[3]), 1):.2f}")' "$before" "$after" "$answers")"
            echo "| $backend | $cache | $workers | $(field "$json" entries_per_second) \
| $(field "$json" latency_ms.p50) | $(field "$json" latency_ms.p99) | $per |"
        done
        stop_backend "$backend"
    done
    exit 0
fi

echo "| backend | build | max_batch | batch_interval | workers | entries/s | p50 ms | p90 ms | p99 ms | max ms | 503s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for backend in "${backends[@]}"; do
    start_backend "$backend"
    for config in $configs; do
        IFS=: read -r max_batch interval saturating <<<"$config"
        for workers in "$light_workers" "$saturating"; do
            for build in "${builds[@]}"; do
                build_name="${build%%=*}"
                stele_bin="${build#*=}"
                name="$backend-$build_name-$max_batch-$interval-$workers"
                start_stele "$backend" "$max_batch" "$interval" "$name"
                json="$("$load" --url "$stele_url" --workers "$workers" --duration "$duration" \
                    --warmup "$warmup" --verify 100 --vkey "$out/$name/log.vkey" --json)"
                stop_stele
                echo "$json" >"$out/$name.json"
                echo "| $backend | $build_name | $max_batch | $interval | $workers \
| $(field "$json" entries_per_second) | $(field "$json" latency_ms.p50) \
| $(field "$json" latency_ms.p90) | $(field "$json" latency_ms.p99) \
| $(field "$json" latency_ms.max) | $(field "$json" busy_503) |"
            done
        done
    done
    stop_backend "$backend"
done
