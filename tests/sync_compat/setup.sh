#!/usr/bin/env bash
# Install the Python side of the todo-sync compatibility test (ws_sync_app.py: the real ws-sync
# 0.6.9 from PyPI on starlette + uvicorn) into the venv shared with tests/patch/run.sh:
# ${TETHER_VENV:-$HOME/.cache/tether-venv}. Idempotent and quiet: creates the venv if missing,
# pip-installs only when requirements.txt changed since the last successful install (or a package
# is missing), then checks that the app imports. Prints nothing on success.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TETHER_VENV:-$HOME/.cache/tether-venv}
py=$venv/bin/python

if [ ! -x "$py" ]; then
  python3 -m venv "$venv"
fi

stamp=$venv/.tether-sync-compat-requirements
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null \
  || ! "$py" -c 'import ws_sync, starlette, uvicorn, websockets' >/dev/null 2>&1; then
  "$py" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

# Fail early (and clearly) if the installed set cannot run the app.
"$py" - "$here" <<'PY'
import importlib.metadata as md, sys
sys.path.insert(0, sys.argv[1])
want = md.version("ws-sync")
if want != "0.6.9":
    sys.exit(f"sync_compat: expected ws-sync 0.6.9 in the venv, found {want}")
import ws_sync_app  # noqa: F401  (imports ws_sync, starlette)
import uvicorn  # noqa: F401
PY
