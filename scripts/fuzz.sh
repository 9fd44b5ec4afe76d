#!/usr/bin/env bash
# Runs the cargo-fuzz targets of the parsers (rooms: TCP lines and WebSocket JSON; relay: sidekick
# frames driving the relay engine; exec: request validation and the line framer) for a bounded
# time each.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# Runs on the pinned stable toolchain (rust-toolchain.toml), no nightly and no RUSTC_BOOTSTRAP:
# with `--sanitizer none` cargo-fuzz passes only stable flags (-Cpasses=sancov-module,
# -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing); the sanitizers (-Zsanitizer) and --build-std
# are what would need nightly, and Rust's own checks (bounds, overflow with -Cdebug-assertions)
# already catch what AddressSanitizer adds for safe code.
set -euo pipefail
secs=${1:-30}
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tether-target}/fuzz
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (one time, ~2 min)"
  cargo install --locked cargo-fuzz@0.13.2
fi
for spec in tether-rooms:line_parser:4096 tether-rooms:json_frame:4096 tether-relay:relay:16384 tether-exec:exec:4096; do
  IFS=: read -r crate target max_len <<<"$spec"
  cd "$root/crates/$crate/fuzz"
  echo "fuzz: $crate/$target for ${secs}s"
  mkdir -p "corpus/$target"
  log=$(mktemp)
  # The fuzz crates are outside the workspace: a changed engine API shows up here first.
  if ! cargo fuzz build --sanitizer none "$target" >"$log" 2>&1; then
    grep -E "^(error|warning)" -A12 "$log" | head -60
    echo "fuzz: $crate/$target does not build (crates/$crate/fuzz/fuzz_targets/$target.rs)"
    exit 1
  fi
  if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" "corpus-seed/$target" -- \
      -max_total_time="$secs" -max_len="$max_len" -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (crash input under crates/$crate/fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log" || true
  rm -f "$log"
done
echo "fuzz: no crash found"
