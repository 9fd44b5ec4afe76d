#!/usr/bin/env bash
# bench/sync/run.sh: ws-sync 0.6.9's `Sync.sync()` vs tether-sync for the same state, side by
# side in one run (run by hand; not part of the tests).
#
#   ws-sync: ws_sync_side.py (the real package from the tether venv, a real Starlette WebSocket
#            over a recording ASGI send): snapshot deepcopy + jsonpatch.make_patch + json encode
#   tether:  examples/sync_bench.rs (release): `sync` = serde_json::to_value of a typed value +
#            Session::sync + frame encode; `typed` = Synced<T> (revision counter, sync_if_changed)
#
# State {"items": [N × {"id","text","done","tags":["a","b"],"score"}]}, N in SIZES; scenarios:
# one changed field, one front insert, no change. Each N runs tether then ws-sync, on one pinned
# core. Raw results: bench/sync/results/latest.jsonl (+ latest.meta.json); summarize.py prints
# the table and rewrites the bench-sync section of docs/benchmarks.md (UPDATE_DOCS=0 to skip).
#
# Knobs (environment): SIZES=1000,10000,100000  TETHER_REPS=301,101,21  WS_REPS=31,11,3
#   CPU=<last cpu> (taskset; skipped on a 1-core machine or without taskset)
#   QUIET_BUSY=15 QUIET_WAIT=180 (first wait, at most QUIET_WAIT s, while the machine is > 15 %
#   of a core busy with other work)  TETHER_VENV=~/.cache/tether-venv
#   CARGO_TARGET_DIR=/root/.cache/tether-target SKIP_BUILD=0 UPDATE_DOCS=1
# The shared parts (the common knobs' defaults, the quiet-machine wait, pinning, per-phase CPU,
# latest.meta.json, summarize.py) are in bench/lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=sync-bench
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
SIZES=${SIZES:-1000,10000,100000}
TETHER_REPS=${TETHER_REPS:-301,101,21}
WS_REPS=${WS_REPS:-31,11,3}

# ---- prerequisites ----
log "python venv ($VENV)"
TETHER_VENV=$VENV bash "$ROOT/tests/sync_compat/setup.sh"
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release -p tether-sync-bench --examples"
  (cd "$ROOT" && cargo build --quiet --release -p tether-sync-bench --examples)
fi
BIN=$CARGO_TARGET_DIR/release/examples/sync_bench
PY=$VENV/bin/python

pin_one_cpu "both sides, one process at a time"
wait_quiet

# ---- run ----
begin_run
IFS=, read -r -a NS <<<"$SIZES"
IFS=, read -r -a TR <<<"$TETHER_REPS"
IFS=, read -r -a WR <<<"$WS_REPS"
for i in "${!NS[@]}"; do
  n=${NS[$i]}
  log "N=$n tether (reps ${TR[$i]})"
  run_phase "tether N=$n" "${PIN[@]}" "$BIN" "$n" "${TR[$i]}"
  log "N=$n ws-sync (reps ${WR[$i]})"
  run_phase "ws-sync N=$n" "${PIN[@]}" "$PY" "$HERE/ws_sync_side.py" "$n" "${WR[$i]}"
done
end_run
write_meta bench/sync/run.sh SIZES TETHER_REPS WS_REPS
summarize
log "done in ${ELAPSED} s; raw results in $OUT"
