#!/usr/bin/env bash
# The storage bill: storage requests by kind and object class per 1,000,000
# entries, and their price at S3 Standard list prices (us-east-1, 2026-12),
# for the real sequencer and Sigstore digest indexer run in one process
# under a paused clock (tests/src/bin/stele-bill.rs). Prints Markdown
# tables; deterministic, so a rerun gives the same figures.
#
#   scripts/bench-bill.sh                 (1,000,000 entries at 10, 1,000 and
#                                          15,000 entries/s, batch interval
#                                          50ms (the default) and 1s)
#   scripts/bench-bill.sh --entries 100000 --rates 1000 --delete-partials
#
# Arguments are passed to stele-bill (--help lists them). BENCH_NO_BUILD=1
# uses the release binary already built. A full run takes about 20 minutes
# on 2 cores, most of it the 10 entries/s cases (a million batches).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [[ "${BENCH_NO_BUILD:-}" != 1 ]]; then
    cargo build --release -p stele-e2e --bin stele-bill
fi
exec "${CARGO_TARGET_DIR:-$root/target}/release/stele-bill" "$@"
