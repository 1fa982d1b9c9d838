#!/usr/bin/env bash
# A bounded fuzzing run: builds the targets of tests/fuzz once, then fuzzes each for a fixed
# time and prints what it did (executions, coverage, corpus size) and any crash it found.
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     default: 60 seconds, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The targets use libFuzzer's
# instrumentation, which takes unstable compiler flags: RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them. Environment:
#   CARGO_TARGET_DIR   where to build (default: target/fuzz of the repository)
#   FUZZ_SANITIZER     address (default), or none should AddressSanitizer give trouble
#   FUZZ_MAX_LEN       largest input libFuzzer makes, in bytes (default 4096)
#
# Each target's corpus grows in tests/fuzz/corpus/<target>/ (not committed), started from the
# committed seeds in tests/fuzz/seeds/<target>/. A failing input is saved as
# tests/fuzz/artifacts/<target>/crash-* (or timeout-*, oom-*) and the run exits 1;
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz <target> <file>` replays it.
set -euo pipefail

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$fuzz_dir/../.." && pwd)
seconds=${1:-60}
if [ $# -gt 0 ]; then shift; fi
case $seconds in
  '' | *[!0-9]*)
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
    ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 2
fi
if [ -f "$repo/../shared/v8/install.sh" ]; then
  bash "$repo/../shared/v8/install.sh" >/dev/null
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target/fuzz}
sanitizer=${FUZZ_SANITIZER:-address}
max_len=${FUZZ_MAX_LEN:-4096}
flags=(--fuzz-dir "$fuzz_dir" --target-dir "$CARGO_TARGET_DIR" --sanitizer "$sanitizer")

# tests/fuzz/Cargo.lock is committed with the versions eddy itself is tested with
# (tests/fuzz/tests/lock.rs checks); cargo-fuzz builds with it as it is.

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi

echo "building ${#targets[@]} fuzz targets (sanitizer: $sanitizer, target dir: $CARGO_TARGET_DIR)"
cargo fuzz build "${flags[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
summary=()
row='%-16s %12s %10s %8s %8s %12s'
for target in "${targets[@]}"; do
  corpus="$fuzz_dir/corpus/$target"
  mkdir -p "$corpus"
  echo "fuzzing $target for $seconds s (corpus: $corpus, seeds: $fuzz_dir/seeds/$target)"
  # New inputs go to the first folder, so the seeds stay as committed.
  if ! cargo fuzz run "${flags[@]}" "$target" "$corpus" "$fuzz_dir/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -max_len="$max_len" -print_final_stats=1 \
    >"$logs/$target" 2>&1; then
    failed+=("$target")
    grep -E -A12 '^(thread .* panicked|==[0-9]+==ERROR)' "$logs/$target" | head -40 || true
    grep -E 'Test unit written to' "$logs/$target" || tail -20 "$logs/$target"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$target")
  # libFuzzer's last status line: "#N DONE cov: C ft: F corp: U/S ...".
  status=$(grep -E '^#[0-9]+' "$logs/$target" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$status")
  summary+=("$(printf "$row" "$target" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")")
done

echo
printf "$row\n" target executions exec/s cov ft corpus
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (inputs in $fuzz_dir/artifacts/)"
  exit 1
fi
echo "no failures in $seconds s per target"
