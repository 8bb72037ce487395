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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries: the end-to-end tests run the real stele)"
cargo build --workspace --bins --locked
# Tests that drive the real sequencer find it here, and never skip.
export STELE_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/stele"
test -x "$STELE_BIN"
echo "== cargo test"
cargo test --workspace --locked
echo "== fuzz smoke run"
scripts/fuzz-smoke.sh "${STELE_FUZZ_SECONDS:-10}"
echo "== all checks passed"
