#!/usr/bin/env bash
# bench/py-sync/run.sh: `await obj.sync()` of ws-sync 0.6.9 vs tether.sync (Python API, Rust core)
# for one 10,000-item state, side by side in one run (run by hand; not part of the tests).
#
#   ws-sync 0.6.9    items = list of plain dicts (0.6.9 cannot send pydantic models: it deep-copies
#                    and json-encodes the raw values, and a BaseModel is not JSON serializable)
#   tether-typed     tether.sync, `items: list[Item]` (class-level annotation, Item a pydantic
#                    BaseModel: id, text, done, tags, score), dumped with a TypeAdapter
#   tether-untyped   tether.sync, items = list of plain dicts (like for like with ws-sync)
#
# Scenarios: changed (one field of one item changed before each sync), unchanged (nothing
# changed). Each variant runs in its own process, one after the other, pinned to one core. Raw
# results: bench/py-sync/results/latest.jsonl (+ latest.meta.json); summarize.py prints the table
# and rewrites the bench-py-sync section of docs/benchmarks.md (UPDATE_DOCS=0 to skip).
#
# Before/after in one run: BASELINE=<git rev> builds that rev's wheel (a `git worktree` of it
# under $BASELINE_DIR) into a second venv ($BASELINE_VENV, default $TETHER_VENV-baseline) and runs
# its tether variants interleaved with the current ones (reported as VARIANT@<rev>; summarize.py
# adds a table with the after/before ratio), built in its own target dir ($BASELINE_TARGET_DIR,
# default $CARGO_TARGET_DIR-baseline). SKIP_BUILD=1 also skips the baseline build.
#
# Knobs (environment): N=10000  WS_REPS=21  TETHER_REPS=101  BASELINE=  BASELINE_DIR=/tmp/...
#   CPU=<last cpu> (taskset; skipped on a 1-core machine or without taskset)
#   QUIET_BUSY=15 QUIET_WAIT=180 (first wait, at most QUIET_WAIT s, while the machine is > 15 %
#   of a core busy with other work)  TETHER_VENV=~/.cache/tether-venv
#   CARGO_TARGET_DIR=/root/.cache/tether-target SKIP_BUILD=0 (1: use the tether already installed
#   in the venv) UPDATE_DOCS=1
# The shared parts (the common knobs' defaults, the quiet-machine wait, pinning, per-phase CPU,
# latest.meta.json, summarize.py) are in bench/lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=py-sync-bench
# shellcheck source=../lib.sh
. "$HERE/../lib.sh"
N=${N:-10000}
WS_REPS=${WS_REPS:-21}
TETHER_REPS=${TETHER_REPS:-101}

# ---- prerequisites ----
log "python venv ($VENV)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY=$VENV/bin/python
if ! "$PY" - <<'PY' >/dev/null 2>&1; then
import importlib.metadata as md
assert md.version("ws-sync") == "0.6.9"
import pydantic, starlette, jsonpatch  # noqa: F401
PY
  log "pip install ws-sync==0.6.9 pydantic"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input "ws-sync==0.6.9" "pydantic>=2,<3"
fi
if [ "$SKIP_BUILD" != 1 ]; then
  log "pip install --force-reinstall --no-deps $ROOT (maturin, release; several minutes)"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-input --force-reinstall --no-deps "$ROOT"
fi
"$PY" -c 'import tether.sync, pydantic' || {
  log "tether.sync or pydantic cannot be imported from $PY"
  exit 1
}

BASELINE=${BASELINE:-}
if [ -n "$BASELINE" ]; then
  BASE_REV=$(git -C "$ROOT" rev-parse --short "$BASELINE^{commit}")
  BASELINE_DIR=${BASELINE_DIR:-${TMPDIR:-/tmp}/tether-py-sync-baseline-$BASE_REV}
  BASELINE_VENV=${BASELINE_VENV:-$VENV-baseline}
  BPY=$BASELINE_VENV/bin/python
  if [ ! -d "$BASELINE_DIR" ]; then
    log "git worktree of $BASELINE ($BASE_REV) at $BASELINE_DIR"
    git -C "$ROOT" worktree add --detach "$BASELINE_DIR" "$BASE_REV" >/dev/null
  fi
  [ -x "$BPY" ] || python3 -m venv "$BASELINE_VENV"
  if ! "$BPY" -c 'import pydantic, starlette' >/dev/null 2>&1; then
    "$BPY" -m pip install --quiet --disable-pip-version-check --no-input "pydantic>=2,<3" starlette
  fi
  if [ "$SKIP_BUILD" != 1 ]; then
    # Its own target dir: cargo hashes workspace crates by their path relative to the workspace,
    # so two checkouts sharing one target dir would reuse each other's builds.
    BASELINE_TARGET_DIR=${BASELINE_TARGET_DIR:-$CARGO_TARGET_DIR-baseline}
    log "baseline: pip install --force-reinstall --no-deps $BASELINE_DIR (maturin, release, target $BASELINE_TARGET_DIR)"
    CARGO_TARGET_DIR=$BASELINE_TARGET_DIR "$BPY" -m pip install --quiet --disable-pip-version-check --no-input --force-reinstall --no-deps "$BASELINE_DIR"
  fi
  "$BPY" -c 'import tether.sync, pydantic' || {
    log "tether.sync or pydantic cannot be imported from $BPY"
    exit 1
  }
fi

pin_one_cpu "each variant, one process at a time"
wait_quiet

# ---- run ----
begin_run
log "ws-sync 0.6.9, N=$N (reps $WS_REPS)"
run_phase "ws-sync" "${PIN[@]}" "$PY" "$HERE/bench.py" ws-sync "$N" "$WS_REPS"
for variant in tether-typed tether-untyped; do
  if [ -n "$BASELINE" ]; then
    log "tether.sync $variant at $BASE_REV (baseline), N=$N (reps $TETHER_REPS)"
    run_phase "$variant@$BASE_REV" "${PIN[@]}" env BENCH_LABEL="$BASE_REV" "$BPY" "$HERE/bench.py" "$variant" "$N" "$TETHER_REPS"
  fi
  log "tether.sync $variant, N=$N (reps $TETHER_REPS)"
  run_phase "$variant" "${PIN[@]}" "$PY" "$HERE/bench.py" "$variant" "$N" "$TETHER_REPS"
done
end_run
write_meta --git bench/py-sync/run.sh N WS_REPS TETHER_REPS BASELINE
summarize
log "done in ${ELAPSED} s; raw results in $OUT"
