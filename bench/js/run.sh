#!/usr/bin/env bash
# bench/js/run.sh: tether.js (QuickJS-NG via rquickjs) vs jsrun 0.3.0 (V8 via deno_core) vs
# mini-racer (V8) from Python, side by side in one run (run by hand; not part of the tests).
#
# Metrics (bench.py): create+close a runtime; eval("1+1"); Python calls a JS function;
# Python -> JS -> Python round trip (a JsFunction calling a bound Python function; jsrun via
# call_async because its sync call deadlocks; mini-racer through an async callback); a JS loop
# calling Python; 1 MB object both ways (native conversion and JSON); fib(25) and fib(30); RSS
# per runtime and creation time for N_RT runtimes kept open (each ran one eval); idle CPU with 1
# and N_RT runtimes; and for tether only, BIG_N runtimes at once (time, RSS growth, idle CPU).
# eval("1+1") three ways: the same source again (tether.js: a code cache hit), a new source each
# call (a miss), and tether.js with its code cache off.
# Each variant runs in its own process, one after the other, pinned to one core; tether-unpinned
# and jsrun-unpinned repeat the per-call metrics without pinning (a tether.js runtime is a thread
# of its own, so one core makes every call a context switch; jsrun's runtime thread busy-polls a
# core, so pinning it to the caller's core inflates its costs most). Raw results:
# bench/js/results/latest.jsonl (+ latest.meta.json); summarize.py prints the table and rewrites
# the bench-js section of docs/benchmarks.md (UPDATE_DOCS=0 to skip).
#
# Knobs (environment): REPS=7 N_RT=100 BIG_N=1000
#   VARIANTS="tether tether-unpinned jsrun jsrun-unpinned mini-racer"
#   JS_VENV=~/.cache/venv-jstests (needs jsrun==0.3.0 and mini-racer; installed if missing)
#   CPU=<last cpu>  QUIET_BUSY=15 QUIET_WAIT=180  SKIP_BUILD=0 (1: use the tether already
#   installed in JS_VENV)  CARGO_TARGET_DIR=/root/.cache/tether-target  UPDATE_DOCS=1
# Note: jsrun's idle runtimes each busy-poll a core, so its N_RT phase takes about a minute.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=js-bench
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
REPS=${REPS:-7}
N_RT=${N_RT:-100}
BIG_N=${BIG_N:-1000}
VARIANTS=${VARIANTS:-"tether tether-unpinned jsrun jsrun-unpinned mini-racer"}
export REPS N_RT BIG_N
VENV=${JS_VENV:-$HOME/.cache/venv-jstests}

# ---- prerequisites ----
log "python venv ($VENV)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY=$VENV/bin/python
if ! "$PY" - <<'PY' >/dev/null 2>&1; then
import importlib.metadata as md
assert md.version("jsrun") == "0.3.0"
import py_mini_racer  # noqa: F401
PY
  log "pip install jsrun==0.3.0 mini-racer"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input "jsrun==0.3.0" mini-racer
fi
if [ "$SKIP_BUILD" != 1 ]; then
  log "pip install --force-reinstall --no-deps $ROOT (maturin, release; several minutes)"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input --force-reinstall --no-deps "$ROOT"
fi
"$PY" -c 'import tether.js' || {
  log "tether.js cannot be imported from $PY"
  exit 1
}

pin_one_cpu "each variant, one process at a time"
wait_quiet

# ---- run ----
begin_run
for v in $VARIANTS; do
  log "$v (REPS=$REPS N_RT=$N_RT)"
  if [ "${v%-unpinned}" != "$v" ]; then
    run_phase "$v" "$PY" "$HERE/bench.py" "$v"
  else
    run_phase "$v" "${PIN[@]}" "$PY" "$HERE/bench.py" "$v"
  fi
done
end_run
write_meta --git bench/js/run.sh REPS N_RT BIG_N
summarize
log "done in ${ELAPSED} s; raw results in $OUT"
