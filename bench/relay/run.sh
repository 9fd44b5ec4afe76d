#!/usr/bin/env bash
# bench/relay/run.sh: hero → UI throughput and relay RSS, tether's UI relay vs a Node relay with
# the same forwarding semantics on npm `ws` (node-relay.mjs), side by side in one run (run by
# hand; not part of the tests).
#
# Each run starts a fresh relay process pinned to one core, then `relay-client` (Rust, pinned to
# another core) connects a UI peer and a hero peer to one session, both announce, and the hero
# sends N grid `setColor` updates as stock sidekick-py writes them (~156 bytes, Python
# separators) with at most WINDOW in flight; the UI counts them. The client speaks WebSocket
# framing itself on plain TCP (frames encoded before the clock starts, the UI counting frame
# headers), so it stays far from its core's limit; it reports its own CPU beside the relay's.
# Reported: updates/s delivered to the UI, relay CPU per update and in % of a core, the time the
# relay was runnable but waiting for its core (a busy machine), the client's CPU, relay RSS idle /
# connected / peak (VmRSS sampled every 20 ms). Sides: tether (`tether serve --relay`, release,
# defaults: the replay log is on and folds the updates), tether-nolog (the same server and frames,
# sent to a grid that was never spawned, so the log drops each update at once: the difference is
# the log's cost), node (node-relay.mjs, no replay log).
# Raw results: bench/relay/results/latest.jsonl (+ latest.meta.json); summarize.py prints the
# table and rewrites the bench-relay section of docs/benchmarks.md (UPDATE_DOCS=0 to skip).
#
# Knobs (environment): REPS=5 N=300000 WINDOW=1000 SERVER_CPU=0 CLIENT_CPU=1
#   QUIET_BUSY=15 QUIET_WAIT=180 CARGO_TARGET_DIR=/root/.cache/tether-target SKIP_BUILD=0
#   UPDATE_DOCS=1. Shared parts (quiet-machine wait, latest.meta.json, docs) are in bench/lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=relay-bench
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
REPS=${REPS:-5}
N=${N:-300000}
WINDOW=${WINDOW:-1000}
PY=python3

# ---- prerequisites ----
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release -p tether-server -p tether-relay-bench"
  (cd "$ROOT" && cargo build --quiet --release -p tether-server -p tether-relay-bench)
fi
TETHER=$CARGO_TARGET_DIR/release/tether
CLIENT=$CARGO_TARGET_DIR/release/relay-client
if [ ! -d "$HERE/node_modules/ws" ]; then
  log "npm ci (bench/relay)"
  (cd "$HERE" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2)
fi

SPIN=() CPIN=()
PINNING=none
if [ "$NPROC" -gt 1 ] && command -v taskset >/dev/null; then
  SERVER_CPU=${SERVER_CPU:-0}
  CLIENT_CPU=${CLIENT_CPU:-1}
  SPIN=(taskset -c "$SERVER_CPU")
  CPIN=(taskset -c "$CLIENT_CPU")
  PINNING="relay on CPU $SERVER_CPU, load client on CPU $CLIENT_CPU (taskset)"
fi
CPU=${SERVER_CPU:-0}

SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

# start_server LOG CMD...: starts CMD, waits for its `listening relay ADDR` line; sets SERVER_PID, ADDR
start_server() {
  local slog=$1
  shift
  "${SPIN[@]}" "$@" >"$slog" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    ADDR=$(awk '/^listening relay /{print $3; exit}' "$slog")
    [ -n "$ADDR" ] && return 0
    sleep 0.1
  done
  echo "the relay did not start: $(cat "$slog")" >&2
  return 1
}

run_one() { # side
  local side=$1 slog mode=log
  slog=$(mktemp)
  case $side in
    tether | tether-nolog) start_server "$slog" "$TETHER" serve --http 127.0.0.1:0 --tcp 127.0.0.1:0 --relay 127.0.0.1:0 --shutdown-grace 1 ;;
    node) start_server "$slog" node "$HERE/node-relay.mjs" 127.0.0.1:0 ;;
  esac
  [ "$side" != tether-nolog ] || mode=nolog
  sleep 0.3
  # The client measures the relay's CPU (and its own) over the timed part only.
  timeout 300 "${CPIN[@]}" "$CLIENT" "ws://$ADDR/?session=bench" "$SERVER_PID" "$side" "$N" "$WINDOW" "$mode" |
    tee -a "$OUT" >&2
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  rm -f "$slog"
}

wait_quiet
begin_run
for rep in $(seq "$REPS"); do
  if [ $((rep % 2)) -eq 1 ]; then order="tether node tether-nolog"; else order="tether-nolog node tether"; fi
  for side in $order; do
    log "rep $rep/$REPS: $side"
    cpu_snap >"$PHASES.a"
    run_one "$side"
    cpu_snap >"$PHASES.b"
    phase_cpu "$side rep $rep" "$PHASES.a" "$PHASES.b"
  done
done
end_run
export BENCH_NODE BENCH_WS_VERSION
BENCH_NODE=$(node --version)
BENCH_WS_VERSION=$(node -p 'require(process.argv[1]).version' "$HERE/node_modules/ws/package.json")
write_meta --git bench/relay/run.sh REPS N WINDOW
summarize
log "done in ${ELAPSED} s; raw results in $OUT"
