#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ and runs each for a few seconds: a smoke
# test that the parsers do not panic on what libFuzzer finds quickly, for CI
# and for a quick check before a commit. Long campaigns run the targets
# directly: `RUSTC_BOOTSTRAP=1 cargo fuzz run <target>` in the repository root.
#
# Usage: scripts/fuzz-smoke.sh [seconds per target, default 15] [target...]
#
# cargo-fuzz needs nightly-only flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets
# the stable toolchain accept them, so CI needs no nightly. A crash fails the
# script and leaves the input under fuzz/artifacts/<target>/; commit a
# minimised copy under fuzz/regressions/ with the fix.
set -euo pipefail

seconds="${1:-15}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [seconds per target] [target...]" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1

# Every file under fuzz/fuzz_targets must be a target that runs: a file
# without its [[bin]] entry in fuzz/Cargo.toml would never be fuzzed, and an
# empty list would make this script pass having run nothing.
listed="$(cargo fuzz list)"
mapfile -t all_targets < <(printf '%s\n' "$listed" | sed '/^$/d' | sort)
mapfile -t files < <(find fuzz/fuzz_targets -maxdepth 1 -name '*.rs' -printf '%f\n' |
    sed 's/\.rs$//' | sort)
if [ "${#all_targets[@]}" -eq 0 ]; then
    echo "cargo fuzz list found no fuzz targets" >&2
    exit 1
fi
if [ "${all_targets[*]}" != "${files[*]}" ]; then
    echo "the targets in fuzz/Cargo.toml and the files in fuzz/fuzz_targets differ:" >&2
    diff <(printf '%s\n' "${all_targets[@]}") <(printf '%s\n' "${files[@]}") \
        --label 'cargo fuzz list' --label fuzz/fuzz_targets >&2 || true
    exit 1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
    for target in "${targets[@]}"; do
        if ! printf '%s\n' "${all_targets[@]}" | grep -qxF -- "$target"; then
            echo "no fuzz target named $target (cargo fuzz list: ${all_targets[*]})" >&2
            exit 2
        fi
    done
else
    targets=("${all_targets[@]}")
fi

# Build all first, so that a compile error fails fast and run times are
# pure fuzzing.
if [ "$#" -gt 0 ]; then
    for target in "${targets[@]}"; do
        cargo fuzz build "$target"
    done
else
    cargo fuzz build
fi

failed=()
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    # Committed crash reproducers run first, as regression tests; committed
    # seeds give a target inputs that pass its checks (a signed request).
    for dir in "fuzz/regressions/$target" "fuzz/seeds/$target"; do
        if [ -d "$dir" ]; then
            seeds+=("$dir")
        fi
    done
    echo "== $target: ${seconds}s" >&2
    if ! cargo fuzz run "$target" "$corpus" "${seeds[@]}" -- \
        -max_total_time="$seconds" -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]}" >&2
    exit 1
fi
echo "all ${#targets[@]} fuzz targets ran ${seconds}s each without a crash" >&2
