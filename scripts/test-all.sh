#!/usr/bin/env bash
# The one command that installs what the tests need and runs them all:
# formatting, lints, every test of the workspace (unit, property,
# exhaustive, interop with Go, fault injection, the S3 backend against a
# real SeaweedFS, end-to-end runs of the real binaries), and a short fuzz
# run of every parser.
#
# Usage: scripts/test-all.sh
# Environment: STELE_FUZZ_SECONDS (per fuzz target, default 10).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

scripts/install-test-deps.sh

# What pip and cargo install lands here; make sure the tests find it.
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$HOME/.cargo/bin:/usr/sbin:$PATH"
export PATH
# Everything the tests need was just installed: a test that would skip for
# want of a tool fails instead.
export CI="${CI:-true}"
# Incremental caches only pay off on the next edit-and-rebuild; for a run of
# the whole suite they are disk and time spent for nothing.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# disk_report STAGE: the time and the disk the run has taken so far, so a
# run that is slow or fills the disk says where.
disk_report() {
    local used fuzz_used
    used="$(du -sh "${CARGO_TARGET_DIR:-$root/target}" 2>/dev/null | cut -f1 || true)"
    fuzz_used="$(du -sh "$root/fuzz/target" 2>/dev/null | cut -f1 || true)"
    echo "-- after $1: ${SECONDS}s, target ${used:-0}, fuzz/target ${fuzz_used:-0}," \
        "$(df -h --output=avail "$root" | tail -n 1 | tr -d ' ') free"
}
disk_report "installing the test tools"

echo "== cargo fmt --check"
cargo fmt --all -- --check
# fuzz/ is a workspace of its own, which `--all` does not reach.
(cd fuzz && cargo fmt -- --check)
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
disk_report clippy
# One build of the tests and the binaries they run: `cargo test` builds each
# package's binaries for its integration tests, with the same features as
# the tests, so a separate `cargo build` would only build everything twice.
echo "== cargo test --no-run (the tests, and the binaries the end-to-end tests run)"
cargo test --workspace --locked --no-run
# Tests that drive the real sequencer find it here, and never skip.
export STELE_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/stele"
test -x "$STELE_BIN"
disk_report "the build"
echo "== cargo test"
cargo test --workspace --locked
disk_report "the tests"
# The fuzz build (its own target folder, sanitizer flags) takes about
# 2.3 GB more. The test build is not needed again by this run, so on a
# short disk it goes first rather than the run failing for want of space.
free_kib="$(df -k --output=avail "$root" | tail -n 1 | tr -d ' ')"
if [[ "$free_kib" -lt $((4 * 1024 * 1024)) ]]; then
    echo "-- under 4 GiB free: removing the test build before the fuzz build"
    rm -rf "${CARGO_TARGET_DIR:-$root/target}/debug"
    disk_report "removing the test build"
fi
# fuzz/ is a workspace of its own, outside the clippy run above. Its lints
# run here, in its own target folder, after the test build may have been
# removed for space. Plain stable suffices: the nightly-only flags are the
# fuzz build's. It takes about 4 minutes and 0.6 GB in fuzz/target/debug on
# the 2-core machine.
echo "== cargo clippy (fuzz/)"
(cd fuzz && cargo clippy --all-targets --locked -- -D warnings)
disk_report "clippy of fuzz/"
echo "== fuzz smoke run"
scripts/fuzz-smoke.sh "${STELE_FUZZ_SECONDS:-10}"
disk_report "the fuzz run"
echo "== all checks passed"
