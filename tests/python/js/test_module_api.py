"""Module-level API: the per-Task / per-thread default runtime (as jsrun 0.3.0 has it) and the CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import require_peer

from .conftest import MODULES

PUBLIC = {
    "InspectorConfig",
    "InspectorEndpoints",
    "JavaScriptError",
    "JsFunction",
    "JsStream",
    "JsUndefined",
    "Runtime",
    "RuntimeConfig",
    "RuntimeStats",
    "RuntimeTerminated",
    "SnapshotBuilder",
    "bind_function",
    "bind_object",
    "close_default_runtime",
    "eval",
    "eval_async",
    "get_default_runtime",
    "undefined",
}


def test_all_names(js: ModuleType) -> None:
    assert set(js.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(js, name), name
    assert issubclass(js.RuntimeTerminated, RuntimeError)
    assert issubclass(js.JavaScriptError, Exception)


def _in_thread(fn: Any) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join(30)
    return box[0]


def test_module_eval_and_bind(js: ModuleType) -> None:
    def run() -> Any:
        try:
            js.bind_function("add", lambda a, b: a + b)
            js.bind_object("cfg", {"v": "1.0"})
            return [js.eval("add(2, 3)"), js.eval("cfg.v"), js.eval("Math.sqrt(16)")]
        finally:
            js.close_default_runtime()

    assert _in_thread(run) == [5, "1.0", 4]


def test_default_runtime_per_thread(js: ModuleType) -> None:
    def run() -> Any:
        try:
            first = js.get_default_runtime()
            assert js.get_default_runtime() is first
            js.eval("globalThis.mine = 1")
            other = _in_thread(lambda: _thread_sees_mine(js))
            return other, js.eval("typeof mine")
        finally:
            js.close_default_runtime()

    assert _in_thread(run) == ("undefined", "number")


def _thread_sees_mine(js: ModuleType) -> str:
    try:
        return js.eval("typeof mine")
    finally:
        js.close_default_runtime()


def test_close_and_recreate(js: ModuleType) -> None:
    def run() -> Any:
        first = js.get_default_runtime()
        js.eval("globalThis.gone = 1")
        js.close_default_runtime()
        assert first.is_closed()
        second = js.get_default_runtime()
        try:
            return second is not first, js.eval("typeof gone")
        finally:
            js.close_default_runtime()

    assert _in_thread(run) == (True, "undefined")


def test_closed_default_runtime_is_replaced(js: ModuleType) -> None:
    def run() -> bool:
        first = js.get_default_runtime()
        first.close()
        try:
            return js.get_default_runtime() is not first and js.eval("1") == 1
        finally:
            js.close_default_runtime()

    assert _in_thread(run) is True


def test_close_without_runtime_is_noop(js: ModuleType) -> None:
    _in_thread(js.close_default_runtime)


async def test_default_runtime_per_task(js: ModuleType) -> None:
    wrote = [asyncio.Event(), asyncio.Event()]

    async def task_body(value: int) -> tuple[Any, int]:
        rt = js.get_default_runtime()
        await js.eval_async(f"globalThis.v = {value}")
        wrote[value - 1].set()
        for ev in wrote:  # both tasks wrote `v` before either reads it back
            await asyncio.wait_for(ev.wait(), 10)
        return rt, await js.eval_async("v")

    (rt1, v1), (rt2, v2) = await asyncio.gather(
        asyncio.create_task(task_body(1)), asyncio.create_task(task_body(2))
    )
    assert (v1, v2) == (1, 2)
    assert rt1 is not rt2
    await asyncio.sleep(0)  # done-callbacks run
    assert rt1.is_closed() and rt2.is_closed()


async def test_eval_async_module_level_timeout(js: ModuleType) -> None:
    async def body() -> None:
        with pytest.raises(RuntimeError, match="timed out"):
            await js.eval_async("new Promise(() => {})", timeout=0.2)

    await asyncio.create_task(body())


async def test_close_from_other_owner_raises(js: ModuleType) -> None:
    async def owner() -> None:
        js.get_default_runtime()

        async def intruder() -> None:
            with pytest.raises(RuntimeError, match="owner"):
                js.close_default_runtime()

        # a child task inherits the context (and so the slot) but is another owner
        await asyncio.create_task(intruder())
        js.close_default_runtime()

    await asyncio.create_task(owner())


async def test_child_task_gets_own_runtime(js: ModuleType) -> None:
    async def parent() -> bool:
        mine = js.get_default_runtime()

        async def child() -> Any:
            return js.get_default_runtime()

        theirs = await asyncio.create_task(child())
        try:
            return theirs is not mine
        finally:
            js.close_default_runtime()

    assert await asyncio.create_task(parent()) is True


def test_explicit_runtime_is_independent(js: ModuleType) -> None:
    def run() -> Any:
        try:
            js.eval("globalThis.fromDefault = 1")
            with js.Runtime() as rt:
                return rt.eval("typeof fromDefault"), js.eval("typeof fromDefault")
        finally:
            js.close_default_runtime()

    assert _in_thread(run) == ("undefined", "number")


def test_module_eval_errors(js: ModuleType) -> None:
    def run() -> str:
        try:
            js.eval("throw new TypeError('module level')")
        except js.JavaScriptError as exc:
            return exc.message
        finally:
            js.close_default_runtime()
        return "no error"

    assert _in_thread(run) == "module level"


# --- python -m <module> ------------------------------------------------------------------------


@pytest.fixture(params=sorted(MODULES))
def cli(request: pytest.FixtureRequest) -> list[str]:
    module = MODULES[request.param]
    require_peer(module)
    return [sys.executable, "-m", module]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)


def test_cli_code(cli: list[str]) -> None:
    done = _run([*cli, "-c", "1 + 41"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_cli_undefined_prints_nothing(cli: list[str]) -> None:
    done = _run([*cli, "-c", "undefined"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_cli_file(cli: list[str], tmp_path: Path) -> None:
    script = tmp_path / "script.js"
    script.write_text("const xs = [1, 2, 3];\nxs.map(x => x * 2).join(',')\n")
    done = _run([*cli, str(script)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2,4,6"


def test_cli_error_exit_code(cli: list[str]) -> None:
    done = _run([*cli, "-c", "throw new Error('cli boom')"])
    assert done.returncode != 0
    assert "cli boom" in done.stderr + done.stdout
