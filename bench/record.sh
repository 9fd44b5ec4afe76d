# bench/record.sh: what every bench run records, so a figure in docs/benchmarks.md names the commit
# it measured and its raw results stay (sourced, not run, by bench/lib.sh, which every bench's
# run.sh sources). Needs ROOT (the repo) and HERE (the bench's
# directory, bench/<name>); the results directory is $RESULTS, else $RESULTS_DIR, else $HERE/results.
#
#   record_begin       refuses a tree with uncommitted changes: the results would match no commit
#                      (ALLOW_DIRTY=1 runs anyway, for trying things out: UPDATE_DOCS=0 then, and
#                      nothing is kept). Sets and exports GIT_REV, GIT_DIRTY (" (dirty)" or ""),
#                      RUN_ID (<UTC start>-<commit>), RUN_FILE (the kept raw results,
#                      bench/<name>/results/runs/RUN_ID.jsonl; "" when dirty), and the same as
#                      BENCH_GIT / BENCH_RUN (bench/fanout writes every BENCH_* into its meta).
#   record_keep DIR    a clean run's DIR/latest.jsonl and DIR/latest.meta.json, copied to
#                      DIR/runs/RUN_ID.{jsonl,meta.json}: every run's raw results are kept.
#   record_chart DIR   the run's chart (bench/plot.py): DIR/latest.svg, and with UPDATE_DOCS=1 also
#                      docs/bench/<name>.svg, the copy docs/benchmarks.md embeds.
# shellcheck shell=bash

record_log() { printf '[record %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

record_begin() {
  local results
  GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD)
  GIT_DIRTY=""
  RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$GIT_REV
  if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
    if [ "${ALLOW_DIRTY:-0}" != 1 ]; then
      record_log "the tree has uncommitted changes, so the results would match no commit: commit" \
        "first (or ALLOW_DIRTY=1 to try things out; then nothing is written to docs or results/runs)"
      exit 1
    fi
    GIT_DIRTY=" (dirty)"
    UPDATE_DOCS=0
    record_log "ALLOW_DIRTY=1: uncommitted changes; docs/benchmarks.md and results/runs are left alone"
  fi
  results=${RESULTS:-${RESULTS_DIR:-$HERE/results}}
  RUN_FILE=""
  [ -n "$GIT_DIRTY" ] || RUN_FILE=${results#"$ROOT"/}/runs/$RUN_ID.jsonl
  export GIT_REV GIT_DIRTY RUN_ID RUN_FILE
  export BENCH_GIT="$GIT_REV$GIT_DIRTY" BENCH_RUN="$RUN_FILE"
}

record_keep() { # dir
  [ -z "$GIT_DIRTY" ] || return 0
  mkdir -p "$1/runs"
  cp "$1/latest.jsonl" "$1/runs/$RUN_ID.jsonl"
  cp "$1/latest.meta.json" "$1/runs/$RUN_ID.meta.json"
  record_log "raw results kept in ${1#"$ROOT"/}/runs/$RUN_ID.{jsonl,meta.json}"
}

record_chart() { # dir
  local name
  name=$(basename "$HERE")
  python3 "$ROOT/bench/plot.py" "$1/latest.jsonl" --bench "$name" --out "$1/latest.svg"
  if [ "${UPDATE_DOCS:-1}" = 1 ]; then
    mkdir -p "$ROOT/docs/bench"
    cp "$1/latest.svg" "$ROOT/docs/bench/$name.svg"
    record_log "chart: docs/bench/$name.svg (and ${1#"$ROOT"/}/latest.svg)"
  else
    record_log "chart: ${1#"$ROOT"/}/latest.svg"
  fi
}
