#!/usr/bin/env bash
# bench/soak/run.sh: the soak and scale benchmark (issue 15 §3; run by hand, not part of the tests).
#
# CLIENTS WebSocket clients (/ws/rooms) in ROOMS rooms publish and receive for DURATION seconds at
# a steady total RATE, once per MODE:
#   one    one tether node
#   three  three tether nodes joined through one redis-server (--bus redis://…, the Debian 7.x
#          server on a free port, its own temp dir, --save '' --appendonly no); the clients are
#          spread round-robin over the nodes, so every room has members on every node
# Client i is in room i % ROOMS on node i % NODES; the first PUBS_PER_ROOM members of each room
# publish (RATE / (ROOMS × PUBS_PER_ROOM) msgs/s each, on an absolute schedule). Every message is
# expected at every other member of its room on every node (docs/protocol/rooms.md §11), in its
# publisher's order. The load client (loadclient/, Go) measures per second: deliveries, p50/p99
# of publish → receipt latency, and the RSS and CPU of every tether node (and redis-server) from
# /proc; at the end: lost (expected − received per subscriber and publisher), duplicates, out of
# order, steady-state delivered/s and p50/p99/p99.9 (after WARMUP s). Each mode is one JSON line in
# results/latest.jsonl (format in README.md); summarize.py checks the targets (lost = 0, the RSS
# bound, delivered/s = offered) and rewrites the bench-soak section of docs/benchmarks.md;
# bench/plot.py draws the time series (docs/bench/soak.svg).
#
# The shared rules come from bench/lib.sh: a tree with uncommitted changes is refused (ALLOW_DIRTY=1
# runs anyway, writes no docs and keeps no run); a clean run's raw results are kept in
# results/runs/<date>-<commit>.{jsonl,meta.json}; latest.meta.json has the machine, the
# parameters, the commit and the load average.
#
# Time: the default (DURATION=600, both modes) takes about 25 min: 2 × (joins + 10 min + drain).
# QUICK=1: DURATION=30 WARMUP=5 CLIENTS=1000 (about 2 min in all), for a pipeline check:
#   QUICK=1 ALLOW_DIRTY=1 UPDATE_DOCS=0 QUIET_WAIT=0 bench/soak/run.sh
#
# Knobs (environment, defaults):
#   MODES="one three"  CLIENTS=5000  ROOMS=50  PUBS_PER_ROOM=2  RATE=500 (msgs/s in all)
#   DURATION=600  WARMUP=60 (s left out of the steady-state figures and the RSS baseline)
#   PAYLOAD=64 (bytes of message text)  QUICK=0
#   RSS_MAX_MIB=512 RSS_GROWTH_PCT=10 (the RSS bound summarize.py checks per node: README.md)
#   SERVER_CPU=0 CLIENT_CPU=1 (taskset: the nodes and redis-server share one core, the load
#   client has the other; no pinning on a 1-core machine)
#   PROFILE=release (cargo profile of the tether binary)  SKIP_BUILD=0  GO=go
#   CARGO_TARGET_DIR=/root/.cache/tether-target QUIET_BUSY=15 QUIET_WAIT=180 UPDATE_DOCS=1
#   ALLOW_DIRTY=0
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=soak
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
PY=python3
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  DURATION=${DURATION:-30}
  WARMUP=${WARMUP:-5}
  CLIENTS=${CLIENTS:-1000}
else
  DURATION=${DURATION:-600}
  WARMUP=${WARMUP:-60}
  CLIENTS=${CLIENTS:-5000}
fi
MODES=${MODES:-one three}
ROOMS=${ROOMS:-50}
PUBS_PER_ROOM=${PUBS_PER_ROOM:-2}
RATE=${RATE:-500}
PAYLOAD=${PAYLOAD:-64}
PROFILE=${PROFILE:-release}
RSS_MAX_MIB=${RSS_MAX_MIB:-512}
RSS_GROWTH_PCT=${RSS_GROWTH_PCT:-10}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

# ---- cleanup: every process this script starts is tracked by PID, and only those are killed ----
PIDS=()
WORK=$(mktemp -d /tmp/tether-soak.XXXXXX)
stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill_pid "$p"; done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- limits, pinning ----
need_fds=$((CLIENTS + 1024)) # per process: one side of every connection, plus slack
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  log "ulimit -n is $(ulimit -n); need >= $need_fds for $CLIENTS clients (hard limit $(ulimit -Hn))"
  exit 1
fi
if [ "$NPROC" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=${SERVER_CPU:-0}
  CLIENT_CPU=${CLIENT_CPU:-1}
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
  PINNING="tether node(s) and redis-server on CPU $SERVER_CPU, load client on CPU $CLIENT_CPU (taskset)"
else
  PIN_SERVER=()
  PIN_CLIENT=()
  PINNING="none (nproc=$NPROC)"
fi
for m in $MODES; do
  case $m in one | three) ;; *) log "unknown mode $m (MODES: one three)"; exit 1 ;; esac
done

# ---- build ----
TETHER=$CARGO_TARGET_DIR/$PROFILE/tether
LOADCLIENT=$CARGO_TARGET_DIR/release/soak-loadclient
if [ "$SKIP_BUILD" != 1 ]; then
  profile_flag=(--release)
  [ "$PROFILE" = release ] || profile_flag=(--profile "$PROFILE")
  [ "$PROFILE" != debug ] || profile_flag=()
  log "cargo build ${profile_flag[*]} -p tether-server (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$ROOT" && timeout 1800 cargo build --quiet "${profile_flag[@]}" -p tether-server --bin tether)
  log "go build bench/soak/loadclient ($("$GO" version))"
  mkdir -p "$(dirname "$LOADCLIENT")"
  (cd "$HERE/loadclient" && timeout 600 "$GO" build -trimpath -o "$LOADCLIENT" .)
fi
REDIS_SERVER=$(command -v redis-server || true)
for b in "$TETHER" "$LOADCLIENT"; do
  [ -x "$b" ] || { log "missing $b (run without SKIP_BUILD=1)"; exit 1; }
done
case " $MODES " in *" three "*)
  [ -n "$REDIS_SERVER" ] || { log "three-node mode needs redis-server (apt-get install redis-server)"; exit 1; } ;;
esac

# ---- processes ----
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
wait_port() { # pid port what log
  local i
  for i in $(seq 300); do
    port_busy "$2" && return 0
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  log "$3 did not start; its output:"
  tail -20 "$4" >&2
  return 1
}
REDIS_PID=
start_redis() { # port
  local dir=$WORK/redis
  mkdir -p "$dir"
  "${PIN_SERVER[@]}" "$REDIS_SERVER" --port "$1" --bind 127.0.0.1 --dir "$dir" --save '' \
    --appendonly no --daemonize no --logfile "$dir/redis.log" --maxclients 1000 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_port "$REDIS_PID" "$1" redis-server "$dir/redis.log"
}
NODE_PIDS=()
NODE_ADDRS=()
start_node() { # name [bus-url]
  local name=$1 http tcp out=$WORK/$1.log pid cap=$((CLIENTS + 1024))
  local extra=()
  [ -z "${2:-}" ] || extra=(--bus "$2")
  http=$(free_port)
  tcp=$(free_port)
  # caps raised for the bench: clients (--max-clients, default 100), connections per listener
  # (--max-connections, default 10,000) and per address (--max-connections-per-ip, default 1,024)
  TETHER_LOG=warn "${PIN_SERVER[@]}" "$TETHER" serve --http "127.0.0.1:$http" --tcp "127.0.0.1:$tcp" \
    --relay off --max-clients "$cap" --max-connections "$cap" --max-connections-per-ip "$cap" \
    --max-rooms $((ROOMS + 16)) --shutdown-grace 1 "${extra[@]}" >"$out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$pid" "$http" "tether $name" "$out"
  NODE_PIDS+=("$pid")
  NODE_ADDRS+=("127.0.0.1:$http")
}

run_mode() { # one|three
  local mode=$1 procs=() i label addrs
  NODE_PIDS=()
  NODE_ADDRS=()
  if [ "$mode" = one ]; then
    label=one-node
    start_node node1
  else
    label=three-nodes
    local rport
    rport=$(free_port)
    start_redis "$rport"
    for i in 1 2 3; do start_node "node$i" "redis://127.0.0.1:$rport/0"; done
  fi
  for i in "${!NODE_PIDS[@]}"; do procs+=("node$((i + 1)):${NODE_PIDS[$i]}"); done
  [ -z "$REDIS_PID" ] || procs+=("redis:$REDIS_PID")
  addrs=$(IFS=,; echo "${NODE_ADDRS[*]}")
  log "$label: nodes ${NODE_ADDRS[*]} (pids ${NODE_PIDS[*]})${REDIS_PID:+, redis-server pid $REDIS_PID}"
  run_phase "$label" "${PIN_CLIENT[@]}" "$LOADCLIENT" --mode "$label" --addrs "$addrs" \
    --procs "$(IFS=,; echo "${procs[*]}")" --clients "$CLIENTS" --rooms "$ROOMS" \
    --pubs-per-room "$PUBS_PER_ROOM" --rate "$RATE" --duration "$DURATION" --warmup "$WARMUP" \
    --size "$PAYLOAD"
  for i in "${!NODE_PIDS[@]}"; do
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || log "$label: node$((i + 1)) exited during the run"
    grep -m3 -iE 'panic|error' "$WORK/node$((i + 1)).log" >&2 || true
  done
  stop_all
  REDIS_PID=
}

# ---- run ----
begin_run
wait_quiet
log "load average at start: $LOAD_START; modes: $MODES; $CLIENTS clients in $ROOMS rooms, $RATE msgs/s for $DURATION s"
for mode in $MODES; do run_mode "$mode"; done
end_run
GO_VERSION=$("$GO" version | cut -d' ' -f3)
REDIS_VERSION=$("${REDIS_SERVER:-true}" --version 2>/dev/null | sed -n 's/.* v=\([^ ]*\).*/\1/p')
write_meta --git bench/soak/run.sh MODES CLIENTS ROOMS PUBS_PER_ROOM RATE DURATION WARMUP PAYLOAD \
  QUICK PROFILE RSS_MAX_MIB RSS_GROWTH_PCT GO_VERSION REDIS_VERSION
summarize
log "done in ${ELAPSED} s; load average $LOAD_START at start, $LOAD_END at end; raw results in $OUT"
