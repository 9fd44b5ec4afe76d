#!/usr/bin/env bash
# The Autobahn test suite's fuzzing client (autobahntestsuite 0.8.2 from PyPI; it runs on Python
# 2.7 only) against two echo doors, cases 1.* to 10.* (none excluded):
#   python-endpoint  server.websocket("/echo", ...) on the embedded server (echo_server.py)
#   rust-doors       /__tether/echo of `tether serve` with TETHER_TEST_ECHO=1: the shared socket
#                    code (crates/tether-server/src/socket.rs) every WebSocket door runs on
# Fails on any FAILED case and any close behaviour that is not OK (report.py says which).
#
# Installs into its own directory, ${AUTOBAHN_DIR:-$HOME/.cache/tether-autobahn}: a Python 3 venv
# holding virtualenv 20.21.1 (the last release that creates Python 2.7 environments), and with it
# a Python 2.7 virtualenv with requirements-py27.txt. Python 2.7 is $AUTOBAHN_PYTHON27, else
# python2.7 on PATH, else pyenv's; without one the run is skipped, or fails when CI is set.
#
#   tests/autobahn/run.sh          run and check (the test command runs this)
#   tests/autobahn/run.sh --docs   also write docs/compliance.md from the report
# Uses $TETHER_BIN (default $CARGO_TARGET_DIR/debug/tether, built if missing) and the tether
# package in ${TETHER_VENV:-$HOME/.cache/tether-venv} (installed there if missing).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${AUTOBAHN_DIR:-$HOME/.cache/tether-autobahn}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tether-target}
docs=0
[ "${1:-}" = "--docs" ] && docs=1

# -- Python 2.7 ---------------------------------------------------------------------------------
is_py27() { [ -n "$1" ] && "$1" -c 'import sys; assert sys.version_info[:2] == (2, 7)' >/dev/null 2>&1; }
find_py27() {
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv} p
  command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root)
  # (pyenv's shim for python2.7 on PATH only runs when 2.7 is the selected version.)
  for p in "${AUTOBAHN_PYTHON27:-}" "$(command -v python2.7 || true)" "$pyenv_root"/versions/2.7*/bin/python2.7; do
    if is_py27 "$p"; then echo "$p"; return; fi
  done
}
py27=$(find_py27)
if [ -z "$py27" ]; then
  msg="autobahn: no Python 2.7 found (set AUTOBAHN_PYTHON27, or install 2.7 with pyenv: pyenv install 2.7.18); the Autobahn fuzzing client needs it"
  if [ -n "${CI:-}" ]; then
    echo "$msg" >&2
    exit 1
  fi
  echo "$msg: skipped (CI is not set)"
  exit 0
fi

# -- the fuzzing client in its own directory ------------------------------------------------------
mkdir -p "$dir"
if [ ! -x "$dir/host/bin/virtualenv" ]; then
  python3 -m venv "$dir/host"
  "$dir/host/bin/pip" install --quiet --disable-pip-version-check virtualenv==20.21.1
fi
stamp=$dir/py27/.tether-requirements
if ! cmp -s "$here/requirements-py27.txt" "$stamp" 2>/dev/null || [ ! -x "$dir/py27/bin/wstest" ]; then
  rm -rf "$dir/py27"
  "$dir/host/bin/virtualenv" --quiet -p "$py27" "$dir/py27"
  "$dir/py27/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning \
    -r "$here/requirements-py27.txt" 2>&1 | grep -v DEPRECATION >&2 || true
  "$dir/py27/bin/python" -c 'import autobahntestsuite' 2>/dev/null \
    || { echo "autobahn: installing autobahntestsuite into $dir/py27 failed" >&2; exit 1; }
  cp "$here/requirements-py27.txt" "$stamp"
fi

# -- the servers under test -------------------------------------------------------------------
bin=${TETHER_BIN:-$CARGO_TARGET_DIR/debug/tether}
if [ -z "${TETHER_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet -p tether-server --locked)
fi
venv=${TETHER_VENV:-$HOME/.cache/tether-venv}
if ! "$venv/bin/python" -c 'import tether' >/dev/null 2>&1; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  (cd "$root" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check .)
fi

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Prints the address from a server's `listening http ADDR` line (waits up to 30 s for it).
http_addr() {
  local out=$1 pid=$2 deadline=$((SECONDS + 30)) addr
  while [ $SECONDS -lt $deadline ]; do
    addr=$(sed -n 's/^listening http //p' "$out" | head -n1)
    if [ -n "$addr" ]; then echo "$addr"; return; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "autobahn: a server did not start; its output:" >&2
  cat "$out" "$out.err" >&2
  return 1
}

TETHER_TEST_ECHO=1 "$bin" serve --http 127.0.0.1:0 --tcp 127.0.0.1:0 --relay off \
  >"$work/rust.out" 2>"$work/rust.out.err" &
pids+=($!)
rust=$(http_addr "$work/rust.out" "${pids[-1]}")
"$venv/bin/python" "$here/echo_server.py" >"$work/py.out" 2>"$work/py.out.err" &
pids+=($!)
python=$(http_addr "$work/py.out" "${pids[-1]}")

cat >"$work/spec.json" <<EOF
{
  "outdir": "$work/reports",
  "servers": [
    {"agent": "python-endpoint", "url": "ws://$python/echo"},
    {"agent": "rust-doors", "url": "ws://$rust/__tether/echo"}
  ],
  "cases": ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "8.*", "9.*", "10.*"],
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
EOF

echo "autobahn: fuzzing client against python-endpoint ws://$python/echo and rust-doors ws://$rust/__tether/echo"
start=$SECONDS
if ! (cd "$work" && timeout 1800 "$dir/py27/bin/wstest" -m fuzzingclient -s spec.json >"$work/wstest.log" 2>&1); then
  echo "autobahn: wstest failed; its log:" >&2
  tail -n 40 "$work/wstest.log" >&2
  exit 1
fi
seconds=$((SECONDS - start))
echo "autobahn: wstest ran in ${seconds}s"

report_args=("$work/reports/index.json" --agents python-endpoint,rust-doors)
if [ "$docs" = 1 ]; then
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$root" diff --quiet HEAD -- crates python 2>/dev/null || commit="$commit (with uncommitted changes)"
  report_args+=(--markdown "$root/docs/compliance.md"
    --meta "date=$(date -u +%Y-%m-%d)" --meta "commit=$commit"
    --meta "command=tests/autobahn/run.sh --docs" --meta "seconds=$seconds"
    --meta "cores=$(nproc)" --meta "autobahn=0.8.2")
fi
python3 "$here/report.py" "${report_args[@]}"
