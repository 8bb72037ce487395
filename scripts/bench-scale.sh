#!/usr/bin/env bash
# Scale benchmark of `stele serve`: what opening a large log costs, and
# whether it grows with the log.
#
#   scripts/bench-scale.sh
#
# For each size N, `stele-genlog` writes a valid tlog-tiles log of N
# 16-byte entries (a log "written by another implementation": tiles,
# bundles and a signed checkpoint, no Stele state), `stele adopt` makes it
# a Stele log (timed, with its peak memory), and `stele serve` is started on
# it. Reported: time from the start of the process to accepting submissions
# (its "listening on" line), peak resident memory (VmHWM) once accepting and
# again after the first requests, storage reads made while starting (from
# /metrics), the latency of a first new submission and of a duplicate of
# entry 10 (answered with index 10). Then the log is deleted.
#
# On the folder backend for every size; on a local SeaweedFS for the sizes
# in BENCH_SCALE_S3_SIZES, where stele-genlog writes the log straight into
# the bucket through the sequencer's S3 backend (64 PUTs in flight), which
# is faster than writing a folder and uploading it.
#
# The "before" rows: a pre-change `stele` (BENCH_SCALE_BASELINE) opened on
# the same generated log, for the sizes in BENCH_SCALE_BASELINE_SIZES. It
# has no `adopt`: it is given the lock object its commit protocol needs (the
# checkpoint's bytes at .stele/lock), on a hard-linked copy of the folder
# (Stele never changes a file in place, so the copy cannot change the
# original).
#
# Environment:
#   BENCH_SCALE_SIZES           default "1000000 10000000 100000000"
#   BENCH_SCALE_S3_SIZES        default "1000000 10000000" ("" for none)
#   BENCH_SCALE_BASELINE        path of a pre-change stele binary (none: no
#                               "before" rows)
#   BENCH_SCALE_BASELINE_SIZES  default "1000000 10000000"
#   BENCH_OUT                   results, logs and the generated logs
#                               (default target/bench-scale)
#   BENCH_NO_BUILD=1            use the release binaries already built
#   BENCH_SCALE_STELE, BENCH_SCALE_GENLOG
#                               other binaries than target/release's
#
# The page cache is warm (the log was just written): this measures the
# software, not the disk. Figures from a shared machine are noisy; nothing
# here asserts a timing. Needs python3 and curl.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sizes="${BENCH_SCALE_SIZES-1000000 10000000 100000000}"
s3_sizes="${BENCH_SCALE_S3_SIZES-1000000 10000000}"
baseline="${BENCH_SCALE_BASELINE:-}"
baseline_sizes="${BENCH_SCALE_BASELINE_SIZES:-1000000 10000000}"
out="${BENCH_OUT:-$root/target/bench-scale}"
origin="bench.example/scale"
mkdir -p "$out"
results="$out/results.tsv"
: >"$results"

if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
    echo "bench-scale: building release binaries" >&2
    cargo build --release --locked -p stele-sequencer --bin stele -p stele-e2e --bin stele-genlog >&2
fi
# Copies, so that a build in the shared target/ during a long run cannot
# swap the binaries under it.
mkdir -p "$out/bin"
cp "${BENCH_SCALE_STELE:-$root/target/release/stele}" "$out/bin/stele"
cp "${BENCH_SCALE_GENLOG:-$root/target/release/stele-genlog}" "$out/bin/stele-genlog"
stele="$out/bin/stele"
genlog="$out/bin/stele-genlog"
if ! "$stele" adopt --help >/dev/null 2>&1; then
    echo "bench-scale: $stele has no adopt subcommand" >&2
    exit 1
fi
if [[ -n "$baseline" && ! -x "$baseline" ]]; then
    echo "bench-scale: BENCH_SCALE_BASELINE=$baseline is not an executable" >&2
    exit 1
fi

seaweed_dir=""
cleanup() {
    if [[ -n "$seaweed_dir" ]]; then
        scripts/stop-seaweedfs.sh "$seaweed_dir" >&2 || true
        rm -rf "$seaweed_dir"
    fi
    rm -rf "${out:?}/logs" "${out:?}/bin"
}
trap cleanup EXIT

keys="$out/keys"
rm -rf "$keys"
"$stele" keygen --origin "$origin" --out "$keys" >/dev/null 2>&1
"$genlog" entry --index 10 >"$out/duplicate.bin"

contains() { # contains WORD LIST
    [[ " $2 " == *" $1 "* ]]
}

# measure LABEL BACKEND N SETUP_SECONDS SETUP_PEAK_KIB BINARY ARGS...: runs
# BINARY serve ARGS, measures it, stops it, and appends a row to $results.
measure() {
    local label="$1" backend="$2" n="$3" setup_s="$4" setup_kib="$5" binary="$6"
    shift 6
    python3 - "$label" "$backend" "$n" "$setup_s" "$setup_kib" "$out/duplicate.bin" \
        "$out/serve-$label-$backend-$n" "$binary" "$@" >>"$results" <<'PY'
import json, os, signal, subprocess, sys, time, urllib.request

label, backend, n, setup_s, setup_kib, dup_path, logs = sys.argv[1:8]
command = sys.argv[8:]
n = int(n)

def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

def post(url, body):
    request = urllib.request.Request(url + "/add", data=body, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        text = answer.read().decode()
    elapsed = time.perf_counter() - started
    index = int(text.splitlines()[1].split()[1])  # c2sp.org/tlog-proof: "index N"
    return elapsed, index

def storage_gets(url):
    with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
        text = answer.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("stele_storage_operations_total{") and 'operation="get"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)

stdout = open(logs + ".out", "w+")
stderr = open(logs + ".err", "w")
started = time.perf_counter()
process = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
url = None
try:
    while url is None:
        if process.poll() is not None:
            sys.stderr.write(f"bench-scale: stele exited with {process.returncode}; see {logs}.err\n")
            sys.exit(1)
        if time.perf_counter() - started > 3600:
            sys.exit("bench-scale: stele did not listen within an hour")
        with open(logs + ".out") as f:
            for line in f:
                if line.startswith("listening on "):
                    url = line.split()[2]
                    break
        if url is None:
            time.sleep(0.002)
    ready_s = time.perf_counter() - started
    hwm_start = status_kib(process.pid, "VmHWM")
    gets = storage_gets(url)
    new_s, new_index = post(url, f"bench-scale new entry {n} {time.time_ns()}".encode())
    if new_index != n:
        sys.exit(f"bench-scale: the new entry got index {new_index}, expected {n}")
    with open(dup_path, "rb") as f:
        duplicate = f.read()
    dup_s, dup_index = post(url, duplicate)
    if dup_index != 10:
        sys.exit(f"bench-scale: the duplicate of entry 10 got index {dup_index}")
    hwm_after = status_kib(process.pid, "VmHWM")
    rss_after = status_kib(process.pid, "VmRSS")
finally:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
row = dict(label=label, backend=backend, n=n, setup_s=float(setup_s), setup_mib=int(setup_kib) / 1024,
           ready_s=ready_s, hwm_start_mib=hwm_start / 1024, hwm_after_mib=hwm_after / 1024,
           rss_after_mib=rss_after / 1024, gets=gets, new_ms=new_s * 1000, dup_ms=dup_s * 1000)
print(json.dumps(row))
sys.stderr.write(f"bench-scale: {json.dumps(row)}\n")
PY
}

# timed FILE COMMAND...: runs COMMAND, writing "seconds peak_kib" to FILE.
timed() {
    local file="$1"
    shift
    /usr/bin/time -f "%e %M" -o "$file" "$@"
}

run_fs() {
    local n="$1" logs="$out/logs"
    local data="$logs/fs-$n"
    rm -rf "$logs"
    mkdir -p "$logs"
    echo "bench-scale: folder, $n entries: generating ($(df -h --output=avail "$out" | tail -1 | tr -d ' ') free)" >&2
    "$genlog" write --out "$data" --entries "$n" --key "$keys/log.key" >"$out/genlog-fs-$n.txt"
    local gen_s
    gen_s="$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$out/genlog-fs-$n.txt")"
    echo "bench-scale: generated in $gen_s s; $(du -sh "$data" | cut -f1) on disk" >&2

    if [[ -n "$baseline" ]] && contains "$n" "$baseline_sizes"; then
        local copy="$logs/fs-$n-before"
        cp -al "$data" "$copy"
        mkdir -m 700 "$copy/.stele"
        cp "$copy/checkpoint" "$copy/.stele/lock"
        chmod 600 "$copy/.stele/lock"
        echo "bench-scale: before (pre-change binary), folder, $n entries" >&2
        measure before fs "$n" 0 0 "$baseline" serve --data "$copy" --key "$keys/log.key" \
            --listen 127.0.0.1:0 --log-level info
        rm -rf "$copy"
    fi

    echo "bench-scale: adopting" >&2
    timed "$out/adopt-fs-$n.time" "$stele" adopt --data "$data" --key "$keys/log.key" \
        --origin "$origin" >"$out/adopt-fs-$n.out" 2>"$out/adopt-fs-$n.err"
    local adopt_s adopt_kib
    read -r adopt_s adopt_kib <"$out/adopt-fs-$n.time"
    echo "bench-scale: after (this tree), folder, $n entries" >&2
    measure after fs "$n" "$adopt_s" "$adopt_kib" "$stele" serve --data "$data" \
        --key "$keys/log.key" --listen 127.0.0.1:0 --log-level info
    rm -rf "$logs"
}

s3_flags=()
set_s3_flags() { # set_s3_flags PREFIX: the flags of stele for that prefix
    s3_flags=(--s3-bucket "$STELE_S3_BUCKET" --s3-endpoint "$STELE_S3_ENDPOINT"
        --s3-region "${AWS_REGION:-us-east-1}" --s3-path-style=true --s3-prefix "$1")
}

run_s3() {
    local n="$1"
    local prefix="scale-$n-$RANDOM"
    local data="$out/logs/s3-$n"
    rm -rf "$data"
    mkdir -p "$data"
    echo "bench-scale: SeaweedFS, $n entries: generating into the bucket" >&2
    "$genlog" write --s3-bucket "$STELE_S3_BUCKET" --s3-endpoint "$STELE_S3_ENDPOINT" \
        --s3-prefix "$prefix" --entries "$n" --key "$keys/log.key" >"$out/genlog-s3-$n.txt"
    echo "bench-scale: generated: $(cat "$out/genlog-s3-$n.txt")" >&2
    echo "bench-scale: adopting" >&2
    set_s3_flags "$prefix"
    timed "$out/adopt-s3-$n.time" env -u STELE_S3_BUCKET -u STELE_S3_ENDPOINT "$stele" adopt \
        --data "$data" --key "$keys/log.key" --origin "$origin" "${s3_flags[@]}" \
        >"$out/adopt-s3-$n.out" 2>"$out/adopt-s3-$n.err"
    local adopt_s adopt_kib
    read -r adopt_s adopt_kib <"$out/adopt-s3-$n.time"
    echo "bench-scale: after (this tree), SeaweedFS, $n entries" >&2
    measure after s3 "$n" "$adopt_s" "$adopt_kib" env -u STELE_S3_BUCKET -u STELE_S3_ENDPOINT \
        "$stele" serve --data "$data" --key "$keys/log.key" --listen 127.0.0.1:0 \
        --log-level info "${s3_flags[@]}"
    if [[ -n "$baseline" ]] && contains "$n" "$baseline_sizes"; then
        # The pre-change binary opens a second copy of the same log (the
        # first one is adopted and one entry longer now), with the lock
        # object its commit protocol needs: the checkpoint's bytes.
        local before="$prefix-before"
        "$genlog" write --s3-bucket "$STELE_S3_BUCKET" --s3-endpoint "$STELE_S3_ENDPOINT" \
            --s3-prefix "$before" --entries "$n" --key "$keys/log.key" >/dev/null
        aws --endpoint-url "$STELE_S3_ENDPOINT" s3 cp --quiet \
            "s3://$STELE_S3_BUCKET/$before/checkpoint" "$data/lock"
        aws --endpoint-url "$STELE_S3_ENDPOINT" s3 cp --quiet "$data/lock" \
            "s3://$STELE_S3_BUCKET/$before/.stele/lock"
        echo "bench-scale: before (pre-change binary), SeaweedFS, $n entries" >&2
        set_s3_flags "$before"
        measure before s3 "$n" 0 0 env -u STELE_S3_BUCKET -u STELE_S3_ENDPOINT "$baseline" serve \
            --data "$data" --key "$keys/log.key" --listen 127.0.0.1:0 --log-level info "${s3_flags[@]}"
    fi
    rm -rf "$data"
}

for n in $sizes; do
    run_fs "$n"
done
if [[ -n "$s3_sizes" ]]; then
    seaweed_dir="$out/seaweedfs"
    rm -rf "$seaweed_dir"
    # A port picked free can be taken before weed binds it: one more try.
    scripts/start-seaweedfs.sh "$seaweed_dir" >&2 || {
        scripts/stop-seaweedfs.sh "$seaweed_dir" >&2 || true
        rm -rf "$seaweed_dir"
        scripts/start-seaweedfs.sh "$seaweed_dir" >&2
    }
    # shellcheck disable=SC1091
    source "$seaweed_dir/s3.env"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION
    for n in $s3_sizes; do
        run_s3 "$n"
    done
fi

cores="$(nproc)"
python3 - "$results" "$cores" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print(f"Machine: {sys.argv[2]} cores. Entries of 16 bytes; warm page cache.\n")
print("| binary | backend | entries | adopt s | adopt peak MiB | start to accepting s | VmHWM at start MiB "
      "| VmHWM after requests MiB | storage GETs at start | first new submission ms | duplicate of #10 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    adopt = f"{r['setup_s']:.1f}" if r["label"] == "after" else "(lock given)"
    adopt_mib = f"{r['setup_mib']:.0f}" if r["label"] == "after" else "-"
    print(f"| {r['label']} | {r['backend']} | {r['n']:,} | {adopt} | {adopt_mib} | {r['ready_s']:.2f} "
          f"| {r['hwm_start_mib']:.0f} | {r['hwm_after_mib']:.0f} | {r['gets']} "
          f"| {r['new_ms']:.0f} | {r['dup_ms']:.1f} |")
print()
# The slope: each measure at the largest size over the smallest, per binary
# and backend, next to the growth of the log itself.
keys = [("adopt s", "setup_s"), ("start s", "ready_s"), ("VmHWM after requests", "hwm_after_mib"),
        ("storage GETs at start", "gets"), ("new submission", "new_ms"), ("duplicate", "dup_ms")]
groups = {}
for r in rows:
    groups.setdefault((r["label"], r["backend"]), []).append(r)
for (label, backend), group in groups.items():
    group.sort(key=lambda r: r["n"])
    if len(group) < 2:
        continue
    small, large = group[0], group[-1]
    growth = large["n"] / small["n"]
    parts = []
    for name, key in keys:
        if label == "before" and key == "setup_s":
            continue
        a, b = small[key], large[key]
        parts.append(f"{name} x{b / a:.1f}" if a > 0 else f"{name} {a:g} -> {b:g}")
    print(f"- slope, {label}, {backend}: entries x{growth:.0f} ({small['n']:,} -> {large['n']:,}): "
          + ", ".join(parts))
PY
