#!/usr/bin/env bash
# Cross-language check of tether-patch's golden patches (tests/fixtures/patch/cases.json): applies
# every case's patch with Python `jsonpatch` (ws-sync's server) and npm `fast-json-patch`
# (ws-sync's React client) and checks the result is the case's `after`. Installs what is missing:
# a venv at $TETHER_VENV (default ~/.cache/tether-venv) with requirements.txt, and `npm ci` here.
# Exits non-zero on any mismatch. Regenerate the fixtures with
#   TETHER_BLESS=1 cargo test -p tether-patch --test fixtures
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TETHER_VENV:-$HOME/.cache/tether-venv}

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

want=$(node -p "require('$here/package-lock.json').packages['node_modules/fast-json-patch'].version")
have=$(node -p "try { require('$here/node_modules/fast-json-patch/package.json').version } catch { '' }")
if [ "$want" != "$have" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

status=0
"$venv/bin/python" "$here/check_jsonpatch.py" "$@" || status=1
node "$here/check_fast_json_patch.mjs" "$@" || status=1
exit $status
