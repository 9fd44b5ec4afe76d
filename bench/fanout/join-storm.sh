#!/usr/bin/env bash
# bench/fanout/join-storm.sh: N subscribers join one room; how long until every hello is answered
# (join_s) and until every subscriber has seen every join (settled_s). Run by hand, not a test.
#
#   bench/fanout/join-storm.sh                       # the release build of this checkout
#   TETHER=/path/to/other/tether bench/fanout/join-storm.sh   # e.g. a build of an older commit
#
# Knobs: SUBS=10000 PROTOS="ws ws-batch tcp" (ws-batch: /ws/rooms?presence=batch) REPS=1 CONCURRENCY=64 TIMEOUT_S=120
#   SERVER_CPU=0 CLIENT_CPU=1 (taskset; skipped on 1 core)  CARGO_TARGET_DIR SKIP_BUILD=0
# One JSON line per run on stdout (`join-storm --help` explains the fields).
# It writes no results file and no docs (stdout only), so it neither refuses a dirty tree nor
# keeps runs like bench/record.sh does: figures copied from it into docs/benchmarks.md name their
# commit by hand.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tether-target}
SUBS=${SUBS:-10000}
PROTOS=${PROTOS:-ws ws-batch tcp}
REPS=${REPS:-1}
CONCURRENCY=${CONCURRENCY:-64}
TIMEOUT_S=${TIMEOUT_S:-120}
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && cargo build --release --locked -p tether-server --bin tether \
    -p tether-bench --bin join-storm >&2)
fi
TETHER=${TETHER:-$CARGO_TARGET_DIR/release/tether}
CLIENT=$CARGO_TARGET_DIR/release/join-storm

need_fds=$((SUBS + 512)) # per process: the server and the client each hold SUBS sockets
[ "$(ulimit -n)" -ge "$need_fds" ] || ulimit -n "$need_fds" 2>/dev/null || {
  echo "ulimit -n is $(ulimit -n); need >= $need_fds" >&2
  exit 1
}
PIN_SERVER=() PIN_CLIENT=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  PIN_SERVER=(taskset -c "${SERVER_CPU:-0}") PIN_CLIENT=(taskset -c "${CLIENT_CPU:-1}")
fi

WORK=$(mktemp -d /tmp/tether-join-storm.XXXXXX)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Every subscriber comes from 127.0.0.1: lift the per-address cap (builds older than it lack the flag).
CAPS=()
if "$TETHER" serve --help | grep -q -- --max-connections-per-ip; then
  CAPS=(--max-connections $((SUBS + 1024)) --max-connections-per-ip $((SUBS + 1024)))
fi

for rep in $(seq "$REPS"); do
  for proto in $PROTOS; do
    "${PIN_SERVER[@]}" "$TETHER" serve --http 127.0.0.1:0 --tcp 127.0.0.1:0 --relay off \
      --max-clients $((SUBS + 10)) --shutdown-grace 1 "${CAPS[@]}" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do
      grep -q '^listening http' "$WORK/server.log" && grep -q '^listening tcp' "$WORK/server.log" && break
      sleep 0.1
    done
    http=$(sed -n 's/^listening http //p' "$WORK/server.log")
    tcp=$(sed -n 's/^listening tcp //p' "$WORK/server.log")
    [ -n "$http" ] && [ -n "$tcp" ] || { cat "$WORK/server.log" >&2; exit 1; }
    addr=$http flags=(--proto ws)
    [ "$proto" = tcp ] && addr=$tcp flags=(--proto tcp)
    [ "$proto" = ws-batch ] && flags=(--proto ws --batch)
    "${PIN_CLIENT[@]}" "$CLIENT" "${flags[@]}" --addr "$addr" --http "$http" --subs "$SUBS" \
      --concurrency "$CONCURRENCY" --server-pid "$SERVER" --timeout-s "$TIMEOUT_S" \
      --label "rep$rep" || echo "{\"proto\":\"$proto\",\"label\":\"rep$rep\",\"failed\":true}"
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
  done
done
