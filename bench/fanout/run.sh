#!/usr/bin/env bash
# bench/fanout/run.sh: side-by-side room fan-out benchmark, run by hand (not part of the tests).
#
#   (a) tether, WebSocket JSON on /ws/rooms      load client: fanout-client --proto ws
#   (b) Socket.IO 4.8 (io.to(room).emit)         load client: socketio/bench.js (2 node processes)
#   (c) tether, TCP line protocol                load client: fanout-client --proto tcp
#
# 1 publisher -> SUBS subscribers in one room, 64-byte payloads. Each scenario runs REPS times,
# interleaved (the order rotates each rep), each on a fresh server process. Prints a summary of
# medians and writes the "Room fan-out" section of docs/benchmarks.md (UPDATE_DOCS=0 to skip).
# Raw results (one JSON line per run): bench/fanout/results/latest.jsonl, the machine and
# parameters beside it in latest.meta.json (`node summarize.js results/latest.jsonl --docs FILE`
# rebuilds the section from those two files).
#
# Knobs (environment): REPS=3 SUBS=1000 WINDOW=128 SAT_TETHER=2000 SAT_SIO=1000
#   PACED=20:5,50:5 (rate msgs/s : seconds, all servers) PACED_TETHER=500:4 (tether only)
#   SERVER_CPU=0 CLIENT_CPU=1 (taskset; pinning is skipped on a 1-core machine)
#   HTTP_PORT=28700 TCP_PORT=28710 SIO_PORT=28720 RUN_TIMEOUT=240 (seconds per client run)
#   QUIET_BUSY=15 QUIET_WAIT=900 (before each run, wait while other processes use > 15 % of a
#   core, at most 900 s of waiting in all)
#   CARGO_TARGET_DIR=/root/.cache/tether-target SKIP_BUILD=0 UPDATE_DOCS=1
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/../record.sh" && record_begin # refuse a dirty tree (ALLOW_DIRTY=1); the commit and the kept run's name go into the meta
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/tether-target}
REPS=${REPS:-3}
SUBS=${SUBS:-1000}
WINDOW=${WINDOW:-128}
SAT_TETHER=${SAT_TETHER:-2000}
SAT_SIO=${SAT_SIO:-1000}
PACED=${PACED:-20:5,50:5}
PACED_TETHER=${PACED_TETHER:-500:4}
HTTP_PORT=${HTTP_PORT:-28700}
TCP_PORT=${TCP_PORT:-28710}
SIO_PORT=${SIO_PORT:-28720}
RUN_TIMEOUT=${RUN_TIMEOUT:-240}
SKIP_BUILD=${SKIP_BUILD:-0}
UPDATE_DOCS=${UPDATE_DOCS:-1}
RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
# Every subscriber connects from 127.0.0.1: lift the per-listener and per-address connection
# caps (defaults 10000 and 1024) above what one run opens.
CONN_CAP=$((SUBS * 2 + 1024))

log() { printf '[fanout %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- cleanup: every process this script starts is tracked by PID ----
PIDS=()
WORK=$(mktemp -d /tmp/tether-fanout.XXXXXX)
kill_pid() { # pid: TERM, then KILL after 3 s
  local p=$1 i
  kill -0 "$p" 2>/dev/null || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 30); do
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
untrack() { # pid
  local out=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || out+=("$p"); done
  PIDS=("${out[@]}")
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill_pid "$p"; done
  PIDS=()
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- limits, pinning ----
need_fds=$((2 * SUBS + 512))
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  ulimit -n "$need_fds" 2>/dev/null || true
fi
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  echo "ulimit -n is $(ulimit -n); need >= $need_fds (hard limit $(ulimit -Hn))" >&2
  exit 1
fi
NPROC=$(nproc)
if [ "$NPROC" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=${SERVER_CPU:-0}
  CLIENT_CPU=${CLIENT_CPU:-1}
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
  PINNING="server on CPU $SERVER_CPU, load clients on CPU $CLIENT_CPU (taskset)"
else
  PIN_SERVER=()
  PIN_CLIENT=()
  PINNING="not pinned (nproc=$NPROC)"
fi

for port in "$HTTP_PORT" "$TCP_PORT" "$SIO_PORT"; do
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    echo "port $port is in use; set HTTP_PORT / TCP_PORT / SIO_PORT" >&2
    exit 1
  fi
done

# ---- build ----
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release -p tether-server -p tether-bench (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$ROOT" && timeout 1800 cargo build --release -p tether-server -p tether-bench)
  log "npm ci (bench/fanout/socketio)"
  (cd "$HERE/socketio" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2)
fi
TETHER=$CARGO_TARGET_DIR/release/tether
CLIENT=$CARGO_TARGET_DIR/release/fanout-client
for b in "$TETHER" "$CLIENT"; do
  [ -x "$b" ] || { echo "missing $b" >&2; exit 1; }
done
[ -d "$HERE/socketio/node_modules/socket.io" ] || { echo "run npm ci in $HERE/socketio" >&2; exit 1; }

# ---- one server: start, wait for its "listening http" line, echo its PID ----
SERVER_PID=
SERVER_TPID=
start_server() { # name log cmd...
  local name=$1 out=$2 i
  shift 2
  timeout -k 5 $((RUN_TIMEOUT + 120)) "${PIN_SERVER[@]}" "$@" >"$out" 2>&1 &
  SERVER_TPID=$!
  PIDS+=("$SERVER_TPID")
  for i in $(seq 150); do
    if grep -q '^listening http' "$out" 2>/dev/null; then
      # timeout forks the server (taskset execs it): the server is timeout's child
      SERVER_PID=$(pgrep -P "$SERVER_TPID" | head -1)
      [ -n "$SERVER_PID" ] && return 0
    fi
    kill -0 "$SERVER_TPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start; its output:" >&2
  cat "$out" >&2
  return 1
}
stop_server() {
  kill_pid "$SERVER_TPID"
  untrack "$SERVER_TPID"
}

run_client() { # out cmd...   (bounded by RUN_TIMEOUT; timeout kills the client's process group)
  local out=$1 cpid rc=0
  shift
  timeout -k 5 "$RUN_TIMEOUT" "${PIN_CLIENT[@]}" "$@" >"$out" 2>"$out.err" &
  cpid=$!
  PIDS+=("$cpid")
  wait "$cpid" || rc=$?
  untrack "$cpid"
  return $rc
}

mkdir -p "$RESULTS_DIR"
RAW=$WORK/results.jsonl
: >"$RAW"

run_one() { # scenario rep
  local sc=$1 rep=$2 slog=$WORK/server-$1-$2.log cout=$WORK/client-$1-$2.json
  case $sc in
    tether-ws | tether-tcp)
      start_server "$sc" "$slog" "$TETHER" serve --http "127.0.0.1:$HTTP_PORT" \
        --tcp "127.0.0.1:$TCP_PORT" --max-clients $((SUBS * 5)) --shutdown-grace 1 \
        --max-connections "$CONN_CAP" --max-connections-per-ip "$CONN_CAP"
      local proto=ws addr=127.0.0.1:$HTTP_PORT
      if [ "$sc" = tether-tcp ]; then proto=tcp addr=127.0.0.1:$TCP_PORT; fi
      run_client "$cout" "$CLIENT" --proto "$proto" --addr "$addr" --subs "$SUBS" \
        --server-pid "$SERVER_PID" --saturated "$SAT_TETHER" --window "$WINDOW" \
        --paced "$PACED,$PACED_TETHER" --label "rep$rep" || log "$sc rep $rep: client exit $?"
      ;;
    tether-ws-ownroom)
      # diagnostic, RSS only: every subscriber creates its own room, so no member lists grow
      start_server "$sc" "$slog" "$TETHER" serve --http "127.0.0.1:$HTTP_PORT" \
        --tcp "127.0.0.1:$TCP_PORT" --max-clients $((SUBS * 5)) --max-rooms $((SUBS * 2)) \
        --max-connections "$CONN_CAP" --max-connections-per-ip "$CONN_CAP" \
        --shutdown-grace 1
      run_client "$cout" "$CLIENT" --proto ws --addr "127.0.0.1:$HTTP_PORT" --subs "$SUBS" \
        --server-pid "$SERVER_PID" --own-rooms --saturated 0 --paced '' --label "rep$rep" ||
        log "$sc rep $rep: client exit $?"
      ;;
    socketio)
      start_server "$sc" "$slog" node "$HERE/socketio/server.js" "127.0.0.1:$SIO_PORT"
      run_client "$cout" node "$HERE/socketio/bench.js" --url "http://127.0.0.1:$SIO_PORT" \
        --subs "$SUBS" --procs 2 --server-pid "$SERVER_PID" --saturated "$SAT_SIO" \
        --window "$WINDOW" --paced "$PACED" --label "rep$rep" || log "$sc rep $rep: client exit $?"
      ;;
  esac
  stop_server
  if [ -s "$cout" ] && tail -1 "$cout" | grep -q '^{'; then
    tail -1 "$cout" >>"$RAW"
    node -e '
      const d = JSON.parse(process.argv[1]);
      const s = d.phases.find((p) => p.phase === "saturated");
      console.error(`  ${d.server} ${d.label}: joined ${d.joined}/${d.subs}, ` +
        (s ? `saturated ${s.deliveries_per_s} deliveries/s (lost ${s.lost}, server CPU ${s.server_cpu_pct}%, ` +
          `client CPU ${s.client_cpu_pct}%, steal ${s.steal_pct}%), ` : "") +
        `RSS/idle conn ${d.rss_per_conn_kib} KiB` + (d.first_error ? `, first error: ${d.first_error}` : ""));
    ' "$(tail -1 "$cout")"
  else
    log "$sc rep $rep: no result; client stderr:"
    grep -v -E '^ +(at |[0-9]+: )' "$cout.err" | head -20 >&2 || true
    echo "{\"server\":\"$sc\",\"label\":\"rep$rep\",\"failed\":true}" >>"$RAW"
  fi
}

# ---- wait for a quiet machine (other jobs distort every figure) ----
# Before each run, sample the machine's busy CPU (/proc/stat) for 2 s while nothing of ours runs;
# wait while it is above QUIET_BUSY % of one core. QUIET_WAIT seconds of waiting in all, then go on.
QUIET_BUSY=${QUIET_BUSY:-15}
QUIET_WAIT=${QUIET_WAIT:-900}
QUIET_LEFT=$QUIET_WAIT
NOISY_RUNS=0
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
busy_pct() { # % of one core used by the whole machine over 2 s
  local a b
  a=$(busy_ticks)
  sleep 2
  b=$(busy_ticks)
  echo $(((b - a) * 100 / (2 * $(getconf CLK_TCK))))
}
wait_quiet() {
  local b
  b=$(busy_pct)
  while [ "$b" -gt "$QUIET_BUSY" ]; do
    if [ "$QUIET_LEFT" -le 0 ]; then
      log "machine busy (${b} % of a core used by other processes); running anyway"
      NOISY_RUNS=$((NOISY_RUNS + 1))
      return 0
    fi
    log "machine busy (${b} % of a core used by other processes): waiting (${QUIET_LEFT} s of waiting left)"
    sleep 8
    QUIET_LEFT=$((QUIET_LEFT - 10))
    b=$(busy_pct)
  done
}
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average at start: $LOAD_START"

SCEN=(tether-ws socketio tether-tcp)
START=$(date +%s)
for rep in $(seq "$REPS"); do
  for k in 0 1 2; do
    sc=${SCEN[$(((rep - 1 + k) % 3))]}
    wait_quiet
    log "rep $rep/$REPS: $sc"
    run_one "$sc" "$rep"
  done
  wait_quiet
  log "rep $rep/$REPS: tether-ws-ownroom (RSS diagnostic)"
  run_one tether-ws-ownroom "$rep"
done
ELAPSED=$(($(date +%s) - START))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
log "done in $ELAPSED s; load average at end: $LOAD_END"
cp "$RAW" "$RESULTS_DIR/latest.jsonl"

# ---- summary and docs ----
export BENCH_COMMAND="bench/fanout/run.sh"
export BENCH_PARAMS="REPS=$REPS SUBS=$SUBS WINDOW=$WINDOW SAT_TETHER=$SAT_TETHER SAT_SIO=$SAT_SIO PACED=$PACED PACED_TETHER=$PACED_TETHER"
export BENCH_PINNING=$PINNING
export BENCH_NPROC=$NPROC
export BENCH_CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
export BENCH_MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
export BENCH_KERNEL=$(uname -r)
export BENCH_NODE=$(node --version)
export BENCH_RUSTC=$(rustc --version 2>/dev/null || echo unknown)
export BENCH_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
export BENCH_LOAD="1/5/15-min load average $LOAD_START at start, $LOAD_END at end; $ELAPSED s in all; before each run the script waited for other processes to use < $QUIET_BUSY % of a core ($((QUIET_WAIT - QUIET_LEFT)) s waited, $NOISY_RUNS runs started on a busy machine)"
export BENCH_SIO_VERSION=$(node -p 'require(process.argv[1]).version' "$HERE/socketio/node_modules/socket.io/package.json")
node -e '
  const keys = Object.keys(process.env).filter((k) => k.startsWith("BENCH_")).sort();
  const meta = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  require("node:fs").writeFileSync(process.argv[1], JSON.stringify(meta, null, 2) + "\n");
' "$RESULTS_DIR/latest.meta.json"
DOCS_ARGS=()
if [ "$UPDATE_DOCS" = 1 ]; then DOCS_ARGS=(--docs "$ROOT/docs/benchmarks.md"); fi
node "$HERE/summarize.js" "$RESULTS_DIR/latest.jsonl" "${DOCS_ARGS[@]}"
record_keep "$RESULTS_DIR" && record_chart "$RESULTS_DIR" # bench/record.sh: results/runs/<run>.*, the chart (docs/bench/fanout.svg)
