#!/usr/bin/env bash
# Runs the cargo-fuzz targets of the rooms parsers for a bounded time each.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# Works on stable Rust: `--sanitizer none` avoids the nightly-only -Zsanitizer flag.
set -euo pipefail
secs=${1:-30}
cd "$(dirname "$0")/../crates/tether-rooms/fuzz"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tether-target}/fuzz
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (one time, ~2 min)"
  cargo install --locked cargo-fuzz@0.13.2
fi
for target in line_parser json_frame; do
  echo "fuzz: $target for ${secs}s"
  mkdir -p "corpus/$target"
  log=$(mktemp)
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" "corpus/$target" "corpus-seed/$target" -- \
      -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (crash input under crates/tether-rooms/fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$log" || true
  rm -f "$log"
done
echo "fuzz: no crash found"
