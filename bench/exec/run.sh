#!/usr/bin/env bash
# bench/exec/run.sh: a process per WebSocket connection, tether exec (`/ws/exec/<name>`) vs
# websocketd 0.4.1 (Debian) running the same commands, side by side in one run (run by hand; not
# part of the tests).
#
# Two figures, each from `exec-client` (Rust, blocking, one thread, its own frame parser: a few
# ns per frame, so that neither figure is the client's; pinned to its own core):
# - connect → first line: LAT_N connections to each server, one after another, alternating
#   between the two (so load from elsewhere weighs on both alike), to `echo hello`; the time from
#   the start of the TCP connect to the first line of output (tether: the request frame goes right
#   after the handshake; websocketd has no request, it starts the process on connect), p50/p99;
# - lines/s: one connection to `seq $LINES`, from connect to the end of the stream, every line
#   counted and checked.
# tether: `tether serve --config` with two [[exec]] entries (release build, TETHER_LOG=warn);
# websocketd: one instance per command (`--loglevel=error`, `--passenv=PATH,HOME,LANG`: the
# variables tether passes on by default, so both children start in the same environment; with
# LANG set, `echo` loads the locale files, ~0.5 ms). The server and the processes it starts share
# one core (SERVER_CPU), the client has another (CLIENT_CPU).
# Raw results: bench/exec/results/latest.jsonl (+ latest.meta.json); summarize.py prints the
# table and rewrites the bench-exec section of docs/benchmarks.md (UPDATE_DOCS=0 to skip).
#
# Where tether's first-line time goes (its own log lines at debug level): bench/exec/README.md.
#
# Knobs (environment): REPS=5 LAT_N=400 LINES=5000000 SERVER_CPU=0 CLIENT_CPU=1
#   QUIET_BUSY=15 QUIET_WAIT=180 CARGO_TARGET_DIR=/root/.cache/tether-target SKIP_BUILD=0
#   UPDATE_DOCS=1. Shared parts (quiet-machine wait, latest.meta.json, docs) are in bench/lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=exec-bench
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
REPS=${REPS:-5}
LAT_N=${LAT_N:-400}
LINES=${LINES:-5000000}
PY=python3
# What websocketd passes to its processes: what tether passes by default (tether-exec BASE_ENV).
PASSENV=PATH,HOME,LANG

# ---- prerequisites ----
if ! command -v websocketd >/dev/null; then
  log "apt-get install -y websocketd"
  apt-get install -y websocketd >&2
fi
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release -p tether-server -p tether-exec-bench"
  (cd "$ROOT" && cargo build --quiet --release -p tether-server -p tether-exec-bench)
fi
TETHER=$CARGO_TARGET_DIR/release/tether
CLIENT=$CARGO_TARGET_DIR/release/exec-client

SPIN=() CPIN=()
PINNING=none
if [ "$NPROC" -gt 1 ] && command -v taskset >/dev/null; then
  SERVER_CPU=${SERVER_CPU:-0}
  CLIENT_CPU=${CLIENT_CPU:-1}
  SPIN=(taskset -c "$SERVER_CPU")
  CPIN=(taskset -c "$CLIENT_CPU")
  PINNING="server and its processes on CPU $SERVER_CPU, client on CPU $CLIENT_CPU (taskset)"
fi
CPU=${SERVER_CPU:-0}

WORK=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
  local p
  for p in "${SERVER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/tether.toml" <<'TOML'
[[exec]]
name = "one"
argv = ["echo", "hello"]

[[exec]]
name = "seq"
argv = ["seq", "{n}"]
[exec.params.n]
type = "integer"
required = true
TOML

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_tether: sets TPID, TADDR
start_tether() {
  local slog=$WORK/tether.log
  TETHER_LOG=warn "${SPIN[@]}" "$TETHER" serve --http 127.0.0.1:0 --tcp 127.0.0.1:0 --relay off \
    --shutdown-grace 1 --config "$WORK/tether.toml" >"$slog" 2>&1 &
  TPID=$!
  SERVER_PIDS+=("$TPID")
  for _ in $(seq 100); do
    TADDR=$(awk '/^listening http /{print $3; exit}' "$slog")
    [ -n "$TADDR" ] && return 0
    sleep 0.1
  done
  echo "tether did not start: $(cat "$slog")" >&2
  return 1
}

# start_websocketd NAME CMD...: sets WPID, WADDR
start_websocketd() {
  local name=$1 port
  shift
  port=$(free_port)
  "${SPIN[@]}" websocketd --port="$port" --address=127.0.0.1 --loglevel=error --passenv="$PASSENV" "$@" >"$WORK/wsd-$name.log" 2>&1 &
  WPID=$!
  SERVER_PIDS+=("$WPID")
  WADDR=127.0.0.1:$port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "websocketd did not start: $(cat "$WORK/wsd-$name.log")" >&2
  return 1
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# with_cpu LINE SERVER_PID T0: LINE (JSON) with the server's CPU seconds since T0 (ticks) added
with_cpu() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["server_cpu_s"]=(int(sys.argv[3])-int(sys.argv[2]))/int(sys.argv[4]); print(json.dumps(d))' \
    "$1" "$3" "$(cpu_ticks "$2")" "$(getconf CLK_TCK)" | tee -a "$OUT" >&2
}

# latency: both servers up, connections alternate between them (exec-client latency-pair)
run_latency() {
  local lines ta tw
  start_tether
  start_websocketd one echo hello
  sleep 0.3
  ta=$(cpu_ticks "$TPID")
  tw=$(cpu_ticks "$WPID")
  lines=$(timeout 300 "${CPIN[@]}" "$CLIENT" latency-pair \
    tether "ws://$TADDR/ws/exec/one" '{}' websocketd "ws://$WADDR/" - "$LAT_N")
  with_cpu "$(sed -n 1p <<<"$lines")" "$TPID" "$ta"
  with_cpu "$(sed -n 2p <<<"$lines")" "$WPID" "$tw"
  stop_pid "$WPID"
  stop_pid "$TPID"
  SERVER_PIDS=()
}

# throughput SIDE: one connection to `seq $LINES`
run_throughput() {
  local t0 line
  case $1 in
    tether)
      start_tether
      sleep 0.3
      t0=$(cpu_ticks "$TPID")
      line=$(timeout 300 "${CPIN[@]}" "$CLIENT" throughput "ws://$TADDR/ws/exec/seq" tether "$LINES" "{\"n\": $LINES}")
      with_cpu "$line" "$TPID" "$t0"
      stop_pid "$TPID"
      ;;
    websocketd)
      start_websocketd seq seq "$LINES"
      sleep 0.3
      t0=$(cpu_ticks "$WPID")
      line=$(timeout 300 "${CPIN[@]}" "$CLIENT" throughput "ws://$WADDR/" websocketd "$LINES" -)
      with_cpu "$line" "$WPID" "$t0"
      stop_pid "$WPID"
      ;;
  esac
  SERVER_PIDS=()
}

wait_quiet
begin_run
for rep in $(seq "$REPS"); do
  log "rep $rep/$REPS: latency (both)"
  cpu_snap >"$PHASES.a"
  run_latency
  cpu_snap >"$PHASES.b"
  phase_cpu "latency rep $rep" "$PHASES.a" "$PHASES.b"
  if [ $((rep % 2)) -eq 1 ]; then order="tether websocketd"; else order="websocketd tether"; fi
  for side in $order; do
    log "rep $rep/$REPS: throughput $side"
    cpu_snap >"$PHASES.a"
    run_throughput "$side"
    cpu_snap >"$PHASES.b"
    phase_cpu "$side lines rep $rep" "$PHASES.a" "$PHASES.b"
  done
done
end_run
export BENCH_WEBSOCKETD_VERSION
BENCH_WEBSOCKETD_VERSION=$(dpkg-query -W -f='${Version}' websocketd 2>/dev/null || echo '?')
write_meta --git bench/exec/run.sh REPS LAT_N LINES
summarize
log "done in ${ELAPSED} s; raw results in $OUT"
