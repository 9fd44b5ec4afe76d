#!/usr/bin/env bash
# bench/fanout/run.sh: room fan-out, tether against its peers and a raw ceiling, side by side in one
# run (run by hand; not part of the tests).
#
#   server (the `server` field)  what                                         load client
#   baseline     raw axum/tungstenite broadcast (src/baseline.rs): the ceiling  Go loadclient
#   tether-ws    tether, WebSocket JSON on /ws/rooms                            Go loadclient
#   tether-tcp   tether, TCP line protocol                                      Go loadclient
#   centrifugo   Centrifugo v6.9.1, memory engine, a client publishes           Go loadclient
#   socketio     Socket.IO 4.8 (io.to(room).emit), WebSocket transport          node socketio/bench.js
#                                                                               (+ 2 subscriber procs)
#
# 1 publisher -> N subscribers in one room, 64-byte payloads, for each N in SIZES. Every server is
# driven by loadclient/ (Go, gobwas/ws, its own frame parser: light enough to leave the server
# saturated) except Socket.IO, whose protocol needs its own client: its client CPU is reported
# and the summary marks a row "client-bound" when a client used >= 90 % of its core.
#
# One client run per (size, rep, server), each against a freshly started server; the server order
# rotates every rep. A client run has these phases (the same messages for every server):
#   join       connect and join the N subscribers (64 handshakes at a time): join time, idle RSS.
#              tether's members join quiet (TETHER_PRESENCE=off: `"presence": false` / `HELLO … QUIET`),
#              so no member is sent the others' joins, as Centrifugo sends none without join_leave;
#              TETHER_PRESENCE=events measures the default, where every join reaches every member
#   saturated  SAT_DELIVERIES/N messages, closed loop (message k waits until k-W reached every
#              subscriber; W = WINDOW_DELIVERIES/N messages, so every size keeps the same
#              deliveries in flight): deliveries/s, server and client CPU, server CPU per delivery
#   paced      each rate:seconds of PACED, on an absolute schedule: latency p50/p99/p999
# Each finished run is one JSON line in results/latest.jsonl (format in README.md); summarize.py
# prints the tables (medians, min–max, ratios per rep) and rewrites the bench-fanout section of
# docs/benchmarks.md. The shared rules come from bench/lib.sh: a tree with uncommitted changes is
# refused (ALLOW_DIRTY=1 runs anyway, writes no docs and keeps no run); a clean run's raw results
# are kept in results/runs/<date>-<commit>.{jsonl,meta.json}; latest.meta.json has the machine,
# the parameters, the commit and the load average.
#
# Time: a default run (REPS=3, SIZES="1000 10000", all five servers) takes about 20–30 min on 2
# cores, most of it Socket.IO and Centrifugo at 10,000 subscribers (they fall behind the paced
# 50 msgs/s = 500 k deliveries/s and drain their queues), plus about 3 min to build Centrifugo
# the first time (go install into CENTRIFUGO_DIR; skipped when the binary is there). A pipeline
# check: ALLOW_DIRTY=1 UPDATE_DOCS=0 REPS=1 SIZES=200 SAT_DELIVERIES=200000 PACED=20:1,50:1
# QUIET_WAIT=0 (about 40 s).
#
# Knobs (environment, defaults):
#   REPS=3  SIZES="1000 10000"  SERVERS="baseline tether-ws tether-tcp centrifugo socketio"
#   SAT_DELIVERIES=4000000 (saturated messages = SAT_DELIVERIES / N, at least 2 windows)
#   WINDOW_DELIVERIES=128000 (window W = this / N messages, 4..128: 128 at N=1,000, 12 at 10,000;
#   128 messages at 10,000 put 1.28 M deliveries in flight, seconds of queue that made Centrifugo
#   close the publisher for a late pong on a busy machine)  WINDOW=<messages> (overrides)
#   PACED=20:5,50:5 (rate msgs/s : seconds)  PAYLOAD=64  TETHER_PRESENCE=off (or events)
#   SERVER_CPU=0 CLIENT_CPU=1 (taskset; no pinning on a 1-core machine)
#   HTTP_PORT=28700 TCP_PORT=28710 SIO_PORT=28720 BASE_PORT=28730 CF_PORT=28740
#   RUN_TIMEOUT=900 (seconds per client run)  JOIN_TIMEOUT=180 (seconds for the joins)
#   QUIET_BUSY=15 QUIET_WAIT=900 (before each run, wait while the machine is > 15 % of a core busy;
#   at most 900 s of waiting in all)
#   CENTRIFUGO_DIR=~/.cache/tether-bench/centrifugo-v6.9.1  GO=go (or /usr/local/go/bin/go)
#   CARGO_TARGET_DIR=/root/.cache/tether-target SKIP_BUILD=0 UPDATE_DOCS=1 ALLOW_DIRTY=0
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=fanout
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
PY=python3
REPS=${REPS:-3}
SIZES=${SIZES:-1000 10000}
SERVERS=${SERVERS:-baseline tether-ws tether-tcp centrifugo socketio}
SAT_DELIVERIES=${SAT_DELIVERIES:-4000000}
WINDOW_DELIVERIES=${WINDOW_DELIVERIES:-128000}
WINDOW=${WINDOW:-auto}
PACED=${PACED:-20:5,50:5}
PAYLOAD=${PAYLOAD:-64}
TETHER_PRESENCE=${TETHER_PRESENCE:-off}
HTTP_PORT=${HTTP_PORT:-28700}
TCP_PORT=${TCP_PORT:-28710}
SIO_PORT=${SIO_PORT:-28720}
BASE_PORT=${BASE_PORT:-28730}
CF_PORT=${CF_PORT:-28740}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
JOIN_TIMEOUT=${JOIN_TIMEOUT:-180}
QUIET_WAIT=${QUIET_WAIT:-900}
CENTRIFUGO_VERSION=v6.9.1
CENTRIFUGO_DIR=${CENTRIFUGO_DIR:-$HOME/.cache/tether-bench/centrifugo-$CENTRIFUGO_VERSION}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

# ---- cleanup: every process this script starts is tracked by PID ----
PIDS=()
WORK=$(mktemp -d /tmp/tether-fanout.XXXXXX)
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

# ---- limits, pinning, ports ----
max_size=0
for n in $SIZES; do [ "$n" -gt "$max_size" ] && max_size=$n; done
need_fds=$((max_size + 1024)) # per process: one side of every connection, plus slack
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  ulimit -n "$need_fds" 2>/dev/null || true
fi
if [ "$(ulimit -n)" -lt "$need_fds" ]; then
  log "ulimit -n is $(ulimit -n); need >= $need_fds for $max_size subscribers (hard limit $(ulimit -Hn))"
  exit 1
fi
if [ "$NPROC" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=${SERVER_CPU:-0}
  CLIENT_CPU=${CLIENT_CPU:-1}
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
  PINNING="server on CPU $SERVER_CPU, load client(s) on CPU $CLIENT_CPU (taskset)"
else
  PIN_SERVER=()
  PIN_CLIENT=()
  PINNING="none (nproc=$NPROC)"
fi
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
for port in "$HTTP_PORT" "$TCP_PORT" "$SIO_PORT" "$BASE_PORT" "$CF_PORT"; do
  if port_busy "$port"; then
    log "port $port is in use; set HTTP_PORT / TCP_PORT / SIO_PORT / BASE_PORT / CF_PORT"
    exit 1
  fi
done
has_server() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- build ----
TETHER=$CARGO_TARGET_DIR/release/tether
BASELINE=$CARGO_TARGET_DIR/release/fanout-baseline
LOADCLIENT=$CARGO_TARGET_DIR/release/fanout-loadclient
CENTRIFUGO=$CENTRIFUGO_DIR/centrifugo
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release -p tether-server -p tether-bench (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  (cd "$ROOT" && timeout 1800 cargo build --quiet --release -p tether-server -p tether-bench)
  log "go build bench/fanout/loadclient ($("$GO" version))"
  mkdir -p "$(dirname "$LOADCLIENT")"
  (cd "$HERE/loadclient" && timeout 600 "$GO" build -trimpath -o "$LOADCLIENT" .)
  if has_server socketio; then
    log "npm ci (bench/fanout/socketio)"
    (cd "$HERE/socketio" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
fi
if has_server centrifugo && [ ! -x "$CENTRIFUGO" ]; then
  log "go install github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION into $CENTRIFUGO_DIR (a few minutes, once)"
  mkdir -p "$CENTRIFUGO_DIR"
  GOBIN=$CENTRIFUGO_DIR timeout 1800 "$GO" install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION"
fi
need=("$LOADCLIENT")
if has_server tether-ws || has_server tether-tcp; then need+=("$TETHER"); fi
if has_server baseline; then need+=("$BASELINE"); fi
if has_server centrifugo; then need+=("$CENTRIFUGO"); fi
for b in "${need[@]}"; do
  [ -x "$b" ] || { log "missing $b (run without SKIP_BUILD=1)"; exit 1; }
done
if has_server socketio && [ ! -d "$HERE/socketio/node_modules/socket.io" ]; then
  log "run npm ci in $HERE/socketio (or without SKIP_BUILD=1)"
  exit 1
fi

# ---- one server: start pinned, wait until its port listens, find its PID ----
SERVER_PID=
SERVER_TPID=
start_server() { # name log port cmd...
  local name=$1 out=$2 port=$3 i
  shift 3
  timeout -k 5 $((RUN_TIMEOUT + 120)) "${PIN_SERVER[@]}" "$@" >"$out" 2>&1 &
  SERVER_TPID=$!
  PIDS+=("$SERVER_TPID")
  for i in $(seq 300); do
    if port_busy "$port"; then
      # timeout forks the server (taskset execs it): the server is timeout's child
      SERVER_PID=$(pgrep -P "$SERVER_TPID" | head -1)
      [ -n "$SERVER_PID" ] && return 0
    fi
    kill -0 "$SERVER_TPID" 2>/dev/null || break
    sleep 0.1
  done
  log "$name did not start; its output:"
  tail -20 "$out" >&2
  return 1
}
stop_server() { # port
  local i
  kill_pid "$SERVER_TPID"
  untrack "$SERVER_TPID"
  for i in $(seq 50); do port_busy "$1" || return 0; sleep 0.1; done
  log "port $1 still listening after the server stopped"
}
run_client() { # out cmd...   (bounded by RUN_TIMEOUT)
  local out=$1 cpid rc=0
  shift
  timeout -k 5 "$RUN_TIMEOUT" "${PIN_CLIENT[@]}" "$@" >"$out" 2>"$out.err" &
  cpid=$!
  PIDS+=("$cpid")
  wait "$cpid" || rc=$?
  untrack "$cpid"
  return $rc
}

# ---- the per-run quiet wait: lib.sh's wait_quiet, with QUIET_WAIT s of waiting in all ----
QUIET_LEFT=$QUIET_WAIT
WAITED_ALL=0
NOISY_RUNS=0
BUSY_FIRST=
quiet_before_run() {
  QUIET_WAIT=$QUIET_LEFT wait_quiet
  QUIET_LEFT=$((QUIET_LEFT - waited))
  [ "$QUIET_LEFT" -lt 0 ] && QUIET_LEFT=0
  WAITED_ALL=$((WAITED_ALL + waited))
  [ -n "$BUSY_FIRST" ] || BUSY_FIRST=$BUSY_START
  if [ "$BUSY_START" -gt "$QUIET_BUSY" ]; then
    NOISY_RUNS=$((NOISY_RUNS + 1))
    log "machine busy (${BUSY_START} % of a core used by other processes); running anyway"
  fi
}

# ---- one run: a fresh server, one client run, one JSON line to OUT ----
run_one() { # server size rep
  local sc=$1 subs=$2 rep=$3 slog=$WORK/server-$1-$2-$3.log cout=$WORK/client-$1-$2-$3.json
  local sat=$((SAT_DELIVERIES / subs)) window=$WINDOW port client procs=1 rc=0
  if [ "$window" = auto ]; then
    window=$((WINDOW_DELIVERIES / subs))
    [ "$window" -lt 4 ] && window=4
    [ "$window" -gt 128 ] && window=128
  fi
  [ "$sat" -lt $((2 * window)) ] && sat=$((2 * window))
  local go_common=(--subs "$subs" --saturated "$sat" --window "$window" --paced "$PACED"
    --size "$PAYLOAD" --label "rep$rep" --connect-timeout-s "$JOIN_TIMEOUT" --name "$sc")
  local conn_cap=$((subs + 1024))
  client="go loadclient"
  case $sc in
    tether-ws | tether-tcp)
      port=$HTTP_PORT
      start_server "$sc" "$slog" "$port" "$TETHER" serve --http "127.0.0.1:$HTTP_PORT" \
        --tcp "127.0.0.1:$TCP_PORT" --relay off --max-clients $((subs * 2 + 64)) \
        --max-connections "$conn_cap" --max-connections-per-ip "$conn_cap" --shutdown-grace 1 ||
        return 0
      if [ "$sc" = tether-ws ]; then
        run_client "$cout" "$LOADCLIENT" --server tether --addr "127.0.0.1:$HTTP_PORT" \
          --server-pid "$SERVER_PID" --presence "$TETHER_PRESENCE" "${go_common[@]}" || rc=$?
      else
        run_client "$cout" "$LOADCLIENT" --server tcp --addr "127.0.0.1:$TCP_PORT" \
          --server-pid "$SERVER_PID" --presence "$TETHER_PRESENCE" "${go_common[@]}" || rc=$?
      fi
      ;;
    baseline)
      port=$BASE_PORT
      start_server "$sc" "$slog" "$port" "$BASELINE" --http "127.0.0.1:$BASE_PORT" \
        --max-connections "$conn_cap" || return 0
      run_client "$cout" "$LOADCLIENT" --server tether --addr "127.0.0.1:$BASE_PORT" \
        --server-pid "$SERVER_PID" "${go_common[@]}" || rc=$?
      ;;
    centrifugo)
      port=$CF_PORT
      start_server "$sc" "$slog" "$port" "$CENTRIFUGO" -c "$HERE/centrifugo/config.json" \
        --http_server.port "$CF_PORT" || return 0
      run_client "$cout" "$LOADCLIENT" --server centrifugo --pub ws --addr "127.0.0.1:$CF_PORT" \
        --server-pid "$SERVER_PID" "${go_common[@]}" || rc=$?
      ;;
    socketio)
      port=$SIO_PORT
      procs=3
      client="node socketio/bench.js (publisher) + 2 node subscriber processes"
      start_server "$sc" "$slog" "$port" node "$HERE/socketio/server.js" "127.0.0.1:$SIO_PORT" ||
        return 0
      run_client "$cout" node "$HERE/socketio/bench.js" --url "http://127.0.0.1:$SIO_PORT" \
        --subs "$subs" --procs 2 --server-pid "$SERVER_PID" --saturated "$sat" \
        --window "$window" --paced "$PACED" --size "$PAYLOAD" --label "rep$rep" || rc=$?
      ;;
    *)
      log "unknown server $sc (SERVERS: baseline tether-ws tether-tcp centrifugo socketio)"
      exit 1
      ;;
  esac
  [ "$rc" = 0 ] || log "$sc N=$subs rep $rep: client exit $rc"
  stop_server "$port"
  "$PY" - "$cout" "$sc" "$subs" "$rep" "$client" "$procs" "$rc" >>"$OUT" <<'PY'
import json, sys
path, server, size, rep, client, procs, rc = sys.argv[1:]
try:
    lines = [l for l in open(path).read().splitlines() if l.startswith("{")]
    d = json.loads(lines[-1])
except (OSError, IndexError, ValueError):
    err = ""
    try:
        err = " | ".join(open(path + ".err").read().splitlines()[-5:])[:500]
    except OSError:
        pass
    d = {"failed": True, "error": f"client exit {rc}, no result: {err}"}
d["client_server_field"] = d.get("server")
d.update(server=server, size=int(size), rep=int(rep), client=client, client_procs=int(procs))
print(json.dumps(d, separators=(",", ":")))
PY
  "$PY" - "$OUT" <<'PY' >&2
import json, sys
d = json.loads(open(sys.argv[1]).read().splitlines()[-1])
head = f"  {d['server']} N={d['size']} rep{d['rep']}"
if d.get("failed"):
    print(f"{head}: FAILED: {d['error']}")
    sys.exit()
s = next((p for p in d.get("phases") or [] if p["phase"] == "saturated"), {})
print(
    f"{head}: joined {d['joined']}/{d['subs']} in {d['connect_s']} s, "
    f"saturated {s.get('deliveries_per_s')}/s (lost {s.get('lost')}, "
    f"server CPU {s.get('server_cpu_pct')} %, client CPU {s.get('client_cpu_pct')} %), "
    f"RSS/idle conn {d.get('rss_per_conn_kib')} KiB"
    + (f", first error: {d['first_error']}" if d.get("first_error") else "")
)
PY
}


# ---- run ----
begin_run
read -r -a SRV <<<"$SERVERS"
log "load average at start: $LOAD_START; sizes: $SIZES; servers: $SERVERS; $REPS reps"
for subs in $SIZES; do
  for rep in $(seq "$REPS"); do
    for k in "${!SRV[@]}"; do
      sc=${SRV[$(((rep - 1 + k) % ${#SRV[@]}))]}
      quiet_before_run
      log "N=$subs rep $rep/$REPS: $sc"
      run_one "$sc" "$subs" "$rep"
    done
  done
done
end_run
waited=$WAITED_ALL
BUSY_START=${BUSY_FIRST:-0}
GO_VERSION=$("$GO" version | cut -d' ' -f3)
NODE_VERSION=$(node --version 2>/dev/null || echo none)
SIO_VERSION=$(node -p 'require(process.argv[1]).version' "$HERE/socketio/node_modules/socket.io/package.json" 2>/dev/null || echo none)
write_meta --git bench/fanout/run.sh REPS SIZES SERVERS SAT_DELIVERIES WINDOW_DELIVERIES WINDOW PACED PAYLOAD TETHER_PRESENCE \
  CENTRIFUGO_VERSION SIO_VERSION GO_VERSION NODE_VERSION NOISY_RUNS
summarize
log "done in ${ELAPSED} s; load average $LOAD_START at start, $LOAD_END at end; raw results in $OUT"
