"""Smoke tests of tether.js behaviour that jsrun 0.3.0 gets wrong (so the side-by-side suite
under tests/python/js cannot run them on both): the GIL is released while JS runs, a sync
JsFunction call may reach back into Python, a host callback may call back into JS, and
terminate() works from another thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import require_peer

js = require_peer("tether.js")


def test_gil_is_released_while_js_runs() -> None:
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    with js.Runtime() as rt:
        t.start()
        rt.eval("const end = Date.now() + 200; while (Date.now() < end) {}")
        busy_ticks = ticks
        stop.set()
        t.join()
    # The other thread kept running during the 200 ms of JS.
    assert busy_ticks > 20


def test_sync_function_call_reaching_back_into_python() -> None:
    with js.Runtime() as rt:
        rt.bind_function("pyinc", lambda x: x + 1)
        f = rt.eval("(x) => pyinc(x) * 2")
        assert f(1) == 4


def test_host_callback_may_call_back_into_js() -> None:
    with js.Runtime() as rt:

        def each(items: list[int], callback: js.JsFunction) -> list[int]:
            return [callback(x) for x in items]

        rt.bind_function("each", each)
        assert rt.eval("each([1, 2, 3], (x) => x * 10)") == [10, 20, 30]
        rt.bind_function("peek", lambda: rt.eval("globalThis.depth = (globalThis.depth || 0) + 1"))
        assert rt.eval("peek() + peek()") == 3
        # A pending promise cannot be waited for inside a callback; the error says so.
        rt.bind_function("wait", lambda f: f())
        with pytest.raises(js.JavaScriptError, match="pending promise"):
            rt.eval("wait(() => new Promise(() => {}))")
        assert rt.eval("2") == 2


def test_terminate_from_another_thread() -> None:
    rt = js.Runtime()
    threading.Timer(0.1, rt.terminate).start()
    started = time.monotonic()
    with pytest.raises(js.RuntimeTerminated, match="host request"):
        rt.eval("while (true) {}")
    assert time.monotonic() - started < 2
    with pytest.raises(js.RuntimeTerminated):
        rt.eval("1")


async def test_usable_after_pending_promise_timeout() -> None:
    with js.Runtime() as rt:
        with pytest.raises(RuntimeError, match="promise still pending"):
            await rt.eval_async("new Promise(() => {})", timeout=0.05)
        assert await rt.eval_async("Promise.resolve(3)") == 3


def test_big_ints_become_bigint() -> None:
    with js.Runtime() as rt:
        kind = rt.eval("(x) => typeof x")
        assert kind(2**53) == "number"
        assert kind(2**53 + 1) == "bigint"
        assert rt.eval("(x) => x")(2**60 + 1) == 2**60 + 1


def test_internals_are_hidden() -> None:
    with js.Runtime() as rt:
        names = rt.eval("Object.getOwnPropertyNames(globalThis).filter(n => n.startsWith('__'))")
        assert sorted(names) == ["__host_op_async__", "__host_op_sync__"]
        assert rt.eval("typeof __bootstrap") == "undefined"


def test_async_host_function_without_a_loop_rejects() -> None:
    async def later() -> int:
        return 1

    with js.Runtime() as rt:
        rt.bind_function("later", later)
        # No asyncio loop was ever seen: the promise rejects with a clear message.
        rt.eval("later().catch((e) => { globalThis.m = e.message })")
        assert "No asyncio event loop" in rt.eval("m")
        # Under asyncio the same function works.
        assert asyncio.run(rt.eval_async("later()")) == 1
