"""Fixtures for the tether.js suite: most tests run on both backends, proving compatibility.

* ``js``: the module under test, ``jsrun`` (the real jsrun 0.3.0 from PyPI, the ground truth
  for the compatible behaviour) and ``tether.js``. A backend that is not installed is skipped,
  or fails when ``CI`` is set (``require_peer``).
* ``rt``: a ``js.Runtime()`` closed at teardown (jsrun's idle runtimes busy-poll a core, so
  every test closes what it opens).
* ``@pytest.mark.tether_only("jsrun 0.3.0: <the bug>")``: skipped on jsrun with that reason (a
  jsrun bug tether fixes, or a behaviour that is tether's own). ``JS_TESTS_RUN_SKIPPED=1`` runs
  them on jsrun too, to see them fail there (the deadlock test is guarded by a thread timeout).
* ``is_tether(js)`` tells the backends apart where QuickJS legitimately differs from V8.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from conftest import require_peer

BACKENDS = ["jsrun", "tether"]
MODULES = {"jsrun": "jsrun", "tether": "tether.js"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tether_only(reason): skip on jsrun 0.3.0 (a bug tether fixes, or tether's own)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("JS_TESTS_RUN_SKIPPED"):
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("js") != "jsrun":
            continue
        only = item.get_closest_marker("tether_only")
        if only is not None:
            reason = only.args[0] if only.args else "tether only"
            item.add_marker(pytest.mark.skip(reason=reason))


def load_backend(name: str) -> ModuleType:
    return require_peer(MODULES[name])


@pytest.fixture(params=BACKENDS)
def js(request: pytest.FixtureRequest) -> ModuleType:
    """The module under test: jsrun 0.3.0 or tether.js."""
    return load_backend(request.param)


@pytest.fixture
def tjs() -> ModuleType:
    """tether.js alone (tests of tether-only behaviour that jsrun cannot even express)."""
    return load_backend("tether")


def is_tether(js: ModuleType) -> bool:
    return js.__name__.startswith("tether")


@pytest.fixture
def rt(js: ModuleType) -> Iterator[Any]:
    runtime = js.Runtime()
    try:
        yield runtime
    finally:
        runtime.close()
        gc.collect()


@pytest.fixture
def make_rt(js: ModuleType) -> Iterator[Callable[..., Any]]:
    """``make_rt(**config)``: a Runtime with a RuntimeConfig, closed at teardown."""
    made: list[Any] = []

    def make(**config: Any) -> Any:
        runtime = js.Runtime(js.RuntimeConfig(**config)) if config else js.Runtime()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        with contextlib.suppress(Exception):  # a test may have closed or broken it
            runtime.close()


def run_guarded(fn: Callable[[], Any], seconds: float) -> tuple[bool, Any]:
    """Runs ``fn`` in a daemon thread; returns (finished, result or exception).

    For calls that deadlock on jsrun 0.3.0: the suite goes on and the thread is abandoned.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # reported to the caller
            box["value"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return (not thread.is_alive()), box.get("value")


def run_script(module: str, body: str, seconds: float) -> tuple[bool, str]:
    """Runs ``body`` (with ``js`` imported as ``module``) in a fresh interpreter.

    Returns (finished in time, stdout + stderr). For scenarios that deadlock on jsrun 0.3.0 while
    holding the GIL, where a guard thread could not even time out.
    """
    import subprocess
    import sys
    import textwrap

    code = f"import {module} as js\n" + textwrap.dedent(body)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            check=False,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        return False, out
    return True, done.stdout + done.stderr
