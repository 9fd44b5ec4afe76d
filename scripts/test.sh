#!/usr/bin/env bash
# Every test, from a fresh machine: installs what is missing (Debian packages, npm packages,
# cargo-fuzz, a Python venv for the patch peers), then checks the architecture rules and the bench
# chart script, runs lint,
# Rust unit + integration tests, the JS type check, the browser tests against the real binary, the cross-language JSON Patch
# checks, the Python package's tests, the Autobahn WebSocket compliance run, and a bounded fuzz
# run. Exits non-zero on any failure.
#   FUZZ_SECONDS=N  seconds per fuzz target (default 20; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/tether-target}
export CARGO_TERM_COLOR=never
step() { printf '\n== %s\n' "$*"; }

step "system packages"
# What the steps below run and a bare Debian machine may lack: a C toolchain (cc builds QuickJS for
# tether-js and ring for rustls), pkg-config, a Python that can make venvs (the Python package,
# the patch peers, stock sidekick-py), Node.js with npm (browser tests, fast-json-patch), Debian's
# chromium (headless browser tests), procps (`kill` in the Rust server tests) and redis-server
# (the three-node cluster test, crates/tether-server/tests/cluster.rs).
missing=()
{ command -v cc && command -v make && dpkg -s build-essential; } >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v python3 >/dev/null || missing+=(python3)
# `python3` may be a pyenv build (venv and ensurepip built in) or Debian's (python3-venv).
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
command -v kill >/dev/null || missing+=(procps)
command -v redis-server >/dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# `node --test --test-concurrency` (tests/browser) needs Node.js 20.10 or later; Debian 12's own
# nodejs is 18, so a machine without a newer one cannot run the browser tests.
node_version=$(node -p 'process.versions.node')
if ! node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit(major > 20 || (major === 20 && minor >= 10) ? 0 : 1);'; then
  echo "test.sh: Node.js $node_version is too old: the browser tests need Node.js >= 20.10" \
    "(node --test --test-concurrency); install a newer nodejs (e.g. NodeSource's 20.x) and rerun" >&2
  exit 1
fi
echo "node $node_version, npm $(npm --version), $(python3 --version), $(cargo --version)"
# The toolchain and its components come from rust-toolchain.toml (already on this kind of machine).
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "architecture rules (docs/architecture.md): crate graph, sans-IO engines, no import circles"
python3 scripts/check-architecture.py --self-test
python3 scripts/check-architecture.py

step "bench charts: bench/plot.py draws SVGs from raw results (python3 bench/test_plot.py)"
python3 bench/test_plot.py

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "rust tests (unit + integration against the real binary)"
cargo test --workspace --locked

step "browser test dependencies"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

step "type-check web/ (tsc --checkJs)"
"$root/tests/browser/node_modules/.bin/tsc" -p web/tsconfig.json

step "JS client and browser tests (headless chromium)"
cargo build -p tether-server --locked
TETHER_BIN="$CARGO_TARGET_DIR/debug/tether" npm test --prefix tests/browser

step "JSON Patch fixtures applied by Python jsonpatch and npm fast-json-patch"
bash tests/patch/run.sh

step "Python package: pip install . (maturin) into the venv, pytest tests/python"
# Stock sidekick-py 0.0.7 in its own venv (it pins websockets 13.1): tests/python/ui compares
# tether.ui's API and frames with it, and the /ui browser test below drives the page with it.
bash tests/ui/setup.sh >/dev/null
bash scripts/python-tests.sh

step "WebSocket compliance: Autobahn fuzzing client (py2.7) on the Python and Rust echo doors, cases 1-10"
TETHER_BIN="$CARGO_TARGET_DIR/debug/tether" bash tests/autobahn/run.sh

step "FastAPI app on tether.sync in headless chromium (web/tether-client.js)"
TETHER_PYTHON="${TETHER_VENV:-$HOME/.cache/tether-venv}/bin/python" npm run --silent test:fastapi --prefix tests/browser

step "UI page (/ui) driven by stock sidekick-py 0.0.7 from PyPI, then by tether.ui (headless chromium)"
TETHER_BIN="$CARGO_TARGET_DIR/debug/tether" npm run --silent test:ui --prefix tests/browser
UI_CLIENT=tether.ui TETHER_UI_PYTHON="${TETHER_VENV:-$HOME/.cache/tether-venv}/bin/python" \
  TETHER_BIN="$CARGO_TARGET_DIR/debug/tether" npm run --silent test:ui --prefix tests/browser

if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  step "fuzz the parsers: rooms lines and JSON, relay frames, exec requests and lines (${FUZZ_SECONDS:-20}s per target)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi

step "all tests passed"
