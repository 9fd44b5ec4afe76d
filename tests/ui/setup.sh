#!/usr/bin/env bash
# Install the Python side of the /ui acceptance test (every_component.py: the stock sidekick-py
# 0.0.7 from PyPI) into its own venv, ${TETHER_UI_VENV:-$HOME/.cache/tether-ui-venv} (not the
# shared ${TETHER_VENV}: sidekick-py pins websockets==13.1, tests/sync_compat pins 17.4).
# Idempotent and quiet, like tests/sync_compat/setup.sh: creates the venv if missing,
# pip-installs only when requirements.txt changed since the last successful install (or a package
# is missing), then checks the version. Prints the venv's python on stdout, nothing else.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TETHER_UI_VENV:-$HOME/.cache/tether-ui-venv}
py=$venv/bin/python

if [ ! -x "$py" ]; then
  python3 -m venv "$venv" >&2
fi

stamp=$venv/.tether-ui-requirements
if ! cmp -s "$here/requirements.txt" "$stamp" 2>/dev/null \
  || ! "$py" -c 'import sidekick, websockets' >/dev/null 2>&1; then
  "$py" -m pip install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$stamp"
fi

# Fail early (and clearly) if the installed set is not the one the test is about.
"$py" - >&2 <<'PY'
import importlib.metadata as md, sys
got = md.version("sidekick-py")
if got != "0.0.7":
    sys.exit(f"tests/ui: expected sidekick-py 0.0.7 in the venv, found {got}")
import sidekick  # noqa: F401
if not hasattr(sidekick, "set_url"):
    sys.exit("tests/ui: this sidekick has no set_url()")
PY
echo "$py"
