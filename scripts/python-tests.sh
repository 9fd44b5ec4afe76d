#!/usr/bin/env bash
# Builds the Python package `tether` (maturin, via `pip install .`) into the shared venv at
# $TETHER_VENV (default ~/.cache/tether-venv) and runs its tests: pytest tests/python.
# Extra arguments go to pytest, e.g. scripts/python-tests.sh -k lifecycle -x; when the first one is a
# test path (scripts/python-tests.sh tests/python/test_serve.py -x), only that path runs.
# The wheel is built by cargo in $CARGO_TARGET_DIR (default ~/.cache/tether-target).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tether-target}
venv=${TETHER_VENV:-$HOME/.cache/tether-venv}

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"

# Uninstall first: pip would otherwise keep an installed tether of the same version.
"$py" -m pip uninstall --quiet --yes tether >/dev/null 2>&1 || true
start=$(date +%s%N)
"$py" -m pip install --quiet --disable-pip-version-check ".[test]"
ms=$((($(date +%s%N) - start) / 1000000))
printf 'python-tests: built the wheel (maturin, release) and installed it with the test extras in %d.%03ds\n' \
  $((ms / 1000)) $((ms % 1000))

if [ $# -gt 0 ] && [ -e "${1%%::*}" ]; then
  "$py" -m pytest -q "$@"
else
  "$py" -m pytest tests/python -q "$@"
fi
