"""Timers, queueMicrotask and console (on and off)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import ModuleType
from typing import Any

import pytest
from conftest import require_peer

from .conftest import MODULES


def test_timer_globals(rt: Any) -> None:
    kinds = rt.eval(
        "[setTimeout, setInterval, clearTimeout, clearInterval, queueMicrotask].map(f => typeof f)"
    )
    assert kinds == ["function"] * 5
    assert rt.eval("typeof Deno") == "undefined"


def test_timer_ids_are_numbers(rt: Any) -> None:
    ids = rt.eval(
        "const a = setTimeout(() => {}, 1000); const b = setTimeout(() => {}, 1000); [a, b]"
    )
    assert all(isinstance(i, int) for i in ids)
    assert ids[0] != ids[1]
    rt.eval("clearTimeout(a); clearTimeout(b)")


async def test_set_timeout_with_args(rt: Any) -> None:
    code = "new Promise(r => setTimeout((a, b) => r(a + b), 10, 2, 3))"
    assert await rt.eval_async(code) == 5


async def test_zero_delay_runs_after_sync_code(rt: Any) -> None:
    code = """
    const order = [];
    setTimeout(() => order.push('timeout'), 0);
    queueMicrotask(() => order.push('micro'));
    order.push('sync');
    new Promise(r => setTimeout(() => r(order), 5))
    """
    assert await rt.eval_async(code) == ["sync", "micro", "timeout"]


async def test_timers_fire_in_delay_order(rt: Any) -> None:
    code = """
    const got = [];
    setTimeout(() => got.push(30), 30);
    setTimeout(() => got.push(10), 10);
    setTimeout(() => got.push(20), 20);
    new Promise(r => setTimeout(() => r(got), 60))
    """
    assert await rt.eval_async(code) == [10, 20, 30]


async def test_clear_timeout(rt: Any) -> None:
    # The 40 ms timer is the marker: timers fire in delay order, so the cleared one would be first.
    code = """
    let fired = false;
    const id = setTimeout(() => { fired = true }, 10);
    clearTimeout(id);
    new Promise(r => setTimeout(() => r(fired), 40))
    """
    assert await rt.eval_async(code) is False


async def test_clear_unknown_timer_is_harmless(rt: Any) -> None:
    assert await rt.eval_async("clearTimeout(123456); clearInterval(undefined); 'ok'") == "ok"


def test_timer_fires_between_evals(rt: Any) -> None:
    rt.eval("globalThis.fired = false; setTimeout(() => { fired = true }, 10)")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and not rt.eval("fired"):
        time.sleep(0.02)
    assert rt.eval("fired") is True


async def test_timer_fires_between_async_evals(rt: Any) -> None:
    import asyncio

    fired = threading.Event()
    await rt.eval_async("1")
    rt.bind_function("fired", fired.set)
    await rt.eval_async("globalThis.hits = 0; setTimeout(() => { hits++; fired() }, 10); 1")
    # No eval runs while we wait: the timer fires on its own and tells Python.
    assert await asyncio.to_thread(fired.wait, 10)
    assert await rt.eval_async("hits") == 1


@pytest.mark.parametrize("callback", ["'not a function'", "42", "undefined"])
def test_non_function_callback_is_type_error(js: ModuleType, rt: Any, callback: str) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval(f"setTimeout({callback}, 10)")
    assert info.value.name == "TypeError"


async def test_set_interval_and_clear(rt: Any) -> None:
    code = """
    new Promise(r => {
      let n = 0;
      const id = setInterval(() => { n++; if (n === 3) { clearInterval(id); r(n) } }, 5);
    })
    """
    assert await rt.eval_async(code) == 3
    await rt.eval_async("new Promise(r => setTimeout(r, 40))")


async def test_nested_timers(rt: Any) -> None:
    code = """
    new Promise(r => setTimeout(() => setTimeout(() => setTimeout(() => r('deep'), 1), 1), 1))
    """
    assert await rt.eval_async(code) == "deep"


async def test_queue_microtask(rt: Any) -> None:
    code = "new Promise(r => queueMicrotask(() => r('micro')))"
    assert await rt.eval_async(code) == "micro"


async def test_timer_callback_error_does_not_kill_runtime(rt: Any) -> None:
    code = """
    setTimeout(() => { throw new Error('in timer') }, 1);
    new Promise(r => setTimeout(() => r('alive'), 30))
    """
    try:
        result = await rt.eval_async(code)
    except Exception as exc:  # jsrun reports the uncaught timer error
        assert "in timer" in str(exc)
    else:
        assert result == "alive"
    assert await rt.eval_async("'still'") == "still"


async def test_stats_count_timers(rt: Any) -> None:
    rt.eval(
        "globalThis.t = setTimeout(() => {}, 10000); globalThis.i = setInterval(() => {}, 10000)"
    )
    stats = rt.get_stats()
    assert stats.active_timers >= 1
    assert stats.active_intervals >= 1
    rt.eval("clearTimeout(t); clearInterval(i)")
    await rt.eval_async("new Promise(r => setTimeout(r, 5))")
    stats = rt.get_stats()
    assert stats.active_timers == 0
    assert stats.active_intervals == 0


# --- console -----------------------------------------------------------------------------------

CONSOLE_METHODS = ["log", "info", "warn", "error", "debug", "trace", "table", "group", "time"]


def test_console_is_always_an_object(js: ModuleType, make_rt: Any) -> None:
    for enabled in (False, True):
        rt = make_rt(enable_console=enabled)
        kinds = rt.eval(f"{CONSOLE_METHODS!r}.map(m => typeof console[m])")
        assert kinds == ["function"] * len(CONSOLE_METHODS)
        assert rt.eval("console.log('x'); 1") == 1


def _run_console_script(module: str, enabled: bool) -> subprocess.CompletedProcess[str]:
    code = f"""
import {module} as js
rt = js.Runtime(js.RuntimeConfig(enable_console={enabled}))
rt.eval("console.log('to-stdout', 1, {{a: 2}}); console.error('to-stderr')")
rt.close()
"""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )


@pytest.mark.parametrize("backend", sorted(MODULES))
def test_console_output_on_and_off(backend: str) -> None:
    module = MODULES[backend]
    require_peer(module)
    off = _run_console_script(module, False)
    assert "to-stdout" not in off.stdout + off.stderr
    assert "to-stderr" not in off.stdout + off.stderr
    on = _run_console_script(module, True)
    assert "to-stdout" in on.stdout
    assert "to-stderr" in on.stderr or "to-stderr" in on.stdout


def test_enable_console_is_read_only(js: ModuleType) -> None:
    config = js.RuntimeConfig(enable_console=True)
    assert config.enable_console is True
    with pytest.raises(AttributeError):
        config.enable_console = False
