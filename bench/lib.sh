# bench/lib.sh: shell shared by the bench/*/run.sh scripts (sourced, not run).
#
# Before sourcing, the script sets HERE (its own directory) and LOG_TAG (log lines read
# `[LOG_TAG HH:MM:SS] ...`). Sourcing sets ROOT (the repo) and NPROC, and the knobs both scripts
# share (environment, defaults): CARGO_TARGET_DIR=/root/.cache/tether-target (exported)
# QUIET_BUSY=15 QUIET_WAIT=180 SKIP_BUILD=0 UPDATE_DOCS=1 TETHER_VENV=~/.cache/tether-venv (as
# VENV); RESULTS=$HERE/results (created). Functions, in the order a run uses them:
#
#   log MSG...              a timestamped line on stderr
#   kill_pid PID            SIGTERM to one process this script started, SIGKILL after 3 s; reaped
#   pin_one_cpu WHAT        CPU=${CPU:-<last cpu>}, PIN=(taskset -c CPU), PINNING="taskset -c CPU
#                           (WHAT)"; PIN=() and PINNING=none on a 1-core machine or without taskset
#   wait_quiet              wait (at most QUIET_WAIT s) while the machine is > QUIET_BUSY % of a
#                           core busy; sets waited (s) and BUSY_START (% just before the run)
#   begin_run               refuses a tree with uncommitted changes (ALLOW_DIRTY=1: run, but write
#                           neither docs nor results/runs; bench/record.sh); START, LOAD_START, T0;
#                           empties OUT (results/latest.jsonl) and PHASES
#   run_phase NAME CMD...   CMD's stdout to OUT (and stderr); a {"phase","other_pct","steal_pct"}
#                           line to PHASES: busy % of the cores other than CPU (other work) and
#                           steal % (all cores), in % of one core, from /proc/stat before and after
#   end_run                 ELAPSED, LOAD_END
#   write_meta [--git] COMMAND NAME...
#                           results/latest.meta.json with $PY: the machine, the parameters NAME=$NAME,
#                           the commit, the kept run's file, pinning, load, the quiet wait, the
#                           phases (--git is accepted and changes nothing: the commit is always
#                           there); a clean run's results and meta are also kept in
#                           results/runs/<date>-<commit>.*
#   summarize               summarize.py on the results (--docs docs/benchmarks.md if UPDATE_DOCS=1),
#                           then the run's chart (bench/plot.py): results/latest.svg, and
#                           docs/bench/<bench>.svg if UPDATE_DOCS=1
# shellcheck shell=bash

ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/root/.cache/tether-target}
QUIET_BUSY=${QUIET_BUSY:-15}
QUIET_WAIT=${QUIET_WAIT:-180}
SKIP_BUILD=${SKIP_BUILD:-0}
UPDATE_DOCS=${UPDATE_DOCS:-1}
VENV=${TETHER_VENV:-$HOME/.cache/tether-venv}
RESULTS=$HERE/results
mkdir -p "$RESULTS"
NPROC=$(nproc)
# shellcheck source=record.sh
. "$ROOT/bench/record.sh"

log() { printf '[%s %s] %s\n' "$LOG_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
kill_pid() { # pid: TERM, then KILL after 3 s; only ever a process this script started
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

pin_one_cpu() { # what (for PINNING)
  PIN=()
  PINNING="none"
  if [ "$NPROC" -gt 1 ] && command -v taskset >/dev/null; then
    CPU=${CPU:-$((NPROC - 1))}
    PIN=(taskset -c "$CPU")
    PINNING="taskset -c $CPU ($1)"
  fi
}

# ---- wait (bounded) for a quiet machine: CPU busy % of one core over 1 s, from /proc/stat ----
busy_pct() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  awk -v a="$a" -v b="$b" -v n="$NPROC" 'BEGIN{split(a,x," ");split(b,y," ");
    t=y[2]-x[2]; if (t<=0) {print 0; exit} printf "%d\n", 100*n*(y[1]-x[1])/t}'
}
wait_quiet() {
  local b
  waited=0
  while [ "$waited" -lt "$QUIET_WAIT" ]; do
    b=$(busy_pct)
    [ "$b" -le "$QUIET_BUSY" ] && break
    [ $((waited % 30)) -eq 0 ] && log "machine busy (${b} % of a core); waiting (${waited}/${QUIET_WAIT} s)"
    sleep 4
    waited=$((waited + 5))
  done
  BUSY_START=$(busy_pct)
}

# ---- run ----
begin_run() {
  # Results must name the commit they measure: a tree with uncommitted changes is refused
  # (ALLOW_DIRTY=1 runs anyway, for trying things out: the docs are then left alone and the run
  # is not kept under results/runs/).
  record_begin
  START=$(date -u +%Y-%m-%dT%H:%MZ)
  LOAD_START=$(loadavg)
  T0=$(date +%s)
  OUT=$RESULTS/latest.jsonl
  PHASES=$RESULTS/.phases.jsonl
  : >"$OUT"
  : >"$PHASES"
}
cpu_snap() { grep '^cpu[0-9]' /proc/stat; }
phase_cpu() { # name before-file after-file
  awk -v name="$1" -v pin="${CPU:--1}" '
    FNR==NR { for (i=2;i<=NF;i++) a[$1,i]=$i; next }
    { busy=0; tot=0; for (i=2;i<=9;i++) { d=$i-a[$1,i]; tot+=d; if (i!=5 && i!=6) busy+=d }
      st+=$9-a[$1,9]; T+=tot
      if ("cpu" pin != $1) { ob+=busy; ot+=tot } }
    END { printf "{\"phase\":\"%s\",\"other_pct\":%d,\"steal_pct\":%d}\n", name,
          (ot>0 ? 100*ob/(T/ncpu) : 0), (T>0 ? 100*st/(T/ncpu) : 0) }' ncpu="$NPROC" "$2" "$3" >>"$PHASES"
}
run_phase() { # name cmd...
  local name=$1
  shift
  cpu_snap >"$PHASES.a"
  "$@" | tee -a "$OUT" >&2
  cpu_snap >"$PHASES.b"
  phase_cpu "$name" "$PHASES.a" "$PHASES.b"
}
end_run() {
  rm -f "$PHASES.a" "$PHASES.b"
  ELAPSED=$(($(date +%s) - T0))
  LOAD_END=$(loadavg)
}

# ---- meta, summary ----
write_meta() { # [--git] command name...
  local git=1 command name params=()
  [ "$1" != --git ] || shift
  command=$1
  shift
  for name in "$@"; do params+=("$name=${!name}"); done
  "$PY" - "$RESULTS/latest.meta.json" "$command" "$git" "${params[@]}" <<PY
import json, platform, subprocess, sys
def sh(c):
    try:
        return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return ""
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
meta = {
    "command": sys.argv[2],
    "params": dict(p.split("=", 1) for p in sys.argv[4:]),
    "date": "$START",
    "nproc": $NPROC,
    "cpu": cpu,
    "mem_gib": round(mem / 1048576, 1),
    "kernel": platform.release(),
    "rustc": sh("rustc --version"),
}
if sys.argv[3] == "1":
    meta["git"] = "$GIT_REV$GIT_DIRTY"
if "$RUN_FILE":
    meta["run"] = "$RUN_FILE"
meta.update({
    "pinning": "$PINNING",
    "load_start": "$LOAD_START",
    "load_end": "$LOAD_END",
    "busy_before_pct": $BUSY_START,
    "quiet_waited_s": $waited,
    "elapsed_s": $ELAPSED,
    "phases": [json.loads(l) for l in open("$PHASES") if l.strip()],
})
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PY
  # Every clean run keeps its raw results: results/runs/<date>-<commit>.{jsonl,meta.json}.
  record_keep "$RESULTS"
  rm -f "$PHASES"
}
summarize() {
  local args=("$OUT" --meta "$RESULTS/latest.meta.json")
  [ "$UPDATE_DOCS" = 1 ] && args+=(--docs "$ROOT/docs/benchmarks.md")
  python3 "$HERE/summarize.py" "${args[@]}"
  record_chart "$RESULTS"
}
