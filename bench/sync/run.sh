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
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/tether-target}
SIZES=${SIZES:-1000,10000,100000}
TETHER_REPS=${TETHER_REPS:-301,101,21}
WS_REPS=${WS_REPS:-31,11,3}
QUIET_BUSY=${QUIET_BUSY:-15}
QUIET_WAIT=${QUIET_WAIT:-180}
SKIP_BUILD=${SKIP_BUILD:-0}
UPDATE_DOCS=${UPDATE_DOCS:-1}
VENV=${TETHER_VENV:-$HOME/.cache/tether-venv}
RESULTS=$HERE/results
mkdir -p "$RESULTS"

log() { printf '[sync-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- prerequisites ----
log "python venv ($VENV)"
TETHER_VENV=$VENV bash "$ROOT/tests/sync_compat/setup.sh"
if [ "$SKIP_BUILD" != 1 ]; then
  log "cargo build --release -p tether-sync-bench --examples"
  (cd "$ROOT" && cargo build --quiet --release -p tether-sync-bench --examples)
fi
BIN=$CARGO_TARGET_DIR/release/examples/sync_bench
PY=$VENV/bin/python

NPROC=$(nproc)
PIN=()
PINNING="none"
if [ "$NPROC" -gt 1 ] && command -v taskset >/dev/null; then
  CPU=${CPU:-$((NPROC - 1))}
  PIN=(taskset -c "$CPU")
  PINNING="taskset -c $CPU (both sides, one process at a time)"
fi

# ---- wait (bounded) for a quiet machine: CPU busy % of one core over 1 s, from /proc/stat ----
busy_pct() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$NPROC" 'BEGIN{split(a,x," ");split(b,y," ");
    t=y[2]-x[2]; if (t<=0) {print 0; exit} printf "%d\n", 100*n*(y[1]-x[1])/t}'
}
waited=0
while [ "$waited" -lt "$QUIET_WAIT" ]; do
  b=$(busy_pct)
  [ "$b" -le "$QUIET_BUSY" ] && break
  [ $((waited % 30)) -eq 0 ] && log "machine busy (${b} % of a core); waiting (${waited}/${QUIET_WAIT} s)"
  sleep 4
  waited=$((waited + 5))
done
BUSY_START=$(busy_pct)

# ---- run ----
START=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD_START=$(loadavg)
T0=$(date +%s)
OUT=$RESULTS/latest.jsonl
WORK_PHASES=$RESULTS/.phases.jsonl
: >"$OUT"
: >"$WORK_PHASES"
IFS=, read -r -a NS <<<"$SIZES"
IFS=, read -r -a TR <<<"$TETHER_REPS"
IFS=, read -r -a WR <<<"$WS_REPS"
# Per phase: busy % of the cores other than the pinned one (other work) and steal % (all cores,
# in % of one core), from /proc/stat before and after.
PHASES=$WORK_PHASES
cpu_snap() { grep '^cpu[0-9]' /proc/stat; }
phase_cpu() { # name before-file after-file
  awk -v name="$1" -v pin="${CPU:--1}" '
    FNR==NR { for (i=2;i<=NF;i++) a[$1,i]=$i; next }
    { busy=0; tot=0; for (i=2;i<=9;i++) { d=$i-a[$1,i]; tot+=d; if (i!=5 && i!=6) busy+=d }
      st+=$9-a[$1,9]; T+=tot
      if ("cpu" pin != $1) { ob+=busy; ot+=tot } }
    END { n=NR-FNR; printf "{\"phase\":\"%s\",\"other_pct\":%d,\"steal_pct\":%d}\n", name,
          (ot>0 ? 100*ob/(T/ncpu) : 0), (T>0 ? 100*st/(T/ncpu) : 0) }' ncpu="$NPROC" "$2" "$3" >>"$PHASES"
}
run_phase() { # name cmd...
  local name=$1; shift
  cpu_snap >"$PHASES.a"
  "$@" | tee -a "$OUT" >&2
  cpu_snap >"$PHASES.b"
  phase_cpu "$name" "$PHASES.a" "$PHASES.b"
}
for i in "${!NS[@]}"; do
  n=${NS[$i]}
  log "N=$n tether (reps ${TR[$i]})"
  run_phase "tether N=$n" "${PIN[@]}" "$BIN" "$n" "${TR[$i]}"
  log "N=$n ws-sync (reps ${WR[$i]})"
  run_phase "ws-sync N=$n" "${PIN[@]}" "$PY" "$HERE/ws_sync_side.py" "$n" "${WR[$i]}"
done
rm -f "$PHASES.a" "$PHASES.b"
ELAPSED=$(($(date +%s) - T0))
LOAD_END=$(loadavg)

CMD="bench/sync/run.sh"
"$PY" - "$RESULTS/latest.meta.json" <<PY
import json, platform, subprocess, sys
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
json.dump({
    "command": "$CMD",
    "params": {"SIZES": "$SIZES", "TETHER_REPS": "$TETHER_REPS", "WS_REPS": "$WS_REPS"},
    "date": "$START",
    "nproc": $NPROC,
    "cpu": cpu,
    "mem_gib": round(mem / 1048576, 1),
    "kernel": platform.release(),
    "rustc": sh("rustc --version"),
    "pinning": "$PINNING",
    "load_start": "$LOAD_START",
    "load_end": "$LOAD_END",
    "busy_before_pct": $BUSY_START,
    "quiet_waited_s": $waited,
    "elapsed_s": $ELAPSED,
    "phases": [json.loads(l) for l in open("$WORK_PHASES") if l.strip()],
}, open(sys.argv[1], "w"), indent=1)
PY

rm -f "$WORK_PHASES"
ARGS=("$OUT" --meta "$RESULTS/latest.meta.json")
[ "$UPDATE_DOCS" = 1 ] && ARGS+=(--docs "$ROOT/docs/benchmarks.md")
python3 "$HERE/summarize.py" "${ARGS[@]}"
log "done in ${ELAPSED} s; raw results in $OUT"
