#!/usr/bin/env bash
# Stops the SeaweedFS that scripts/start-seaweedfs.sh started from DIR
# (default .stele-test/seaweedfs). Keeps the data; idempotent.
set -euo pipefail

dir="${1:-.stele-test/seaweedfs}"
pid_file="$dir/weed.pid"
if [[ ! -f "$pid_file" ]]; then
    exit 0
fi
pid="$(cat "$pid_file")"
if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
fi
rm -f "$pid_file"
