#!/usr/bin/env bash
# Cross-language check of tether-patch's golden patches (tests/fixtures/patch/cases.json): applies
# every case's patch with Python `jsonpatch` (ws-sync's server) and npm `fast-json-patch`
# (ws-sync's React client) and checks the result is the case's `after`. Then checks the
# lenient-path fixtures (client.json, the client patches of tests/fixtures/sync/) against peers
# instead of our implementation: ws-sync 0.6.9's own server wherever it applies them, and the
# client's own edit made with real Immer (check_lenient.mjs). Installs what is missing: a venv at
# $TETHER_VENV (default ~/.cache/tether-venv) with requirements.txt, and `npm ci` here.
# Exits non-zero on any mismatch. Regenerate the patch fixtures with
#   TETHER_BLESS=1 cargo test -p tether-patch --test fixtures
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TETHER_VENV:-$HOME/.cache/tether-venv}

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

# npm ci when an installed package is missing or not the locked version.
if ! node -e '
  const lock = require(process.argv[1] + "/package-lock.json").packages;
  for (const [where, { version }] of Object.entries(lock)) {
    if (!where) continue;
    let have = "";
    try { have = require(process.argv[1] + "/" + where + "/package.json").version } catch {}
    if (have !== version) process.exit(1);
  }' "$here"; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

status=0
"$venv/bin/python" "$here/check_jsonpatch.py" "$@" || status=1
node "$here/check_fast_json_patch.mjs" "$@" || status=1
if [ $# -eq 0 ]; then
  "$venv/bin/python" "$here/check_jsonpatch.py" --client || status=1
  node "$here/check_lenient.mjs" || status=1
fi
exit $status
