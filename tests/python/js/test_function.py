"""JsFunction: calls, awaitables, call_async, close, `this`, round trips, GC release."""

from __future__ import annotations

import gc
import inspect
import re
from types import ModuleType
from typing import Any

import pytest


def test_call_returns_value(js: ModuleType, rt: Any) -> None:
    add = rt.eval("(a, b) => a + b")
    assert isinstance(add, js.JsFunction)
    assert add(2, 3) == 5
    assert add("a", "b") == "ab"
    assert re.fullmatch(r"<JsFunction id=\d+>", repr(add))


def test_closure_state(rt: Any) -> None:
    counter = rt.eval("(() => { let n = 0; return () => ++n })()")
    assert [counter(), counter(), counter()] == [1, 2, 3]


def test_settled_promise_returns_value(rt: Any) -> None:
    fn = rt.eval("async (x) => x * 2")
    assert fn(21) == 42


async def test_pending_promise_returns_awaitable(rt: Any) -> None:
    fn = rt.eval("(x) => new Promise(r => setTimeout(() => r(x + 1), 10))")
    result = fn(1)
    assert inspect.isawaitable(result)
    assert await result == 2


async def test_call_async_always_awaitable(rt: Any) -> None:
    fn = rt.eval("(x) => x * 3")
    result = fn.call_async(2)
    assert inspect.isawaitable(result)
    assert await result == 6
    slow = rt.eval("() => new Promise(r => setTimeout(() => r('slow'), 5))")
    assert await slow.call_async() == "slow"


async def test_call_async_timeout(rt: Any) -> None:
    hang = rt.eval("() => new Promise(() => {})")
    with pytest.raises(RuntimeError, match="timed out"):
        await hang.call_async(timeout=0.2)


@pytest.mark.tether_only("jsrun 0.3.0: a timed-out sync JsFunction call raises 'Uncaught null'")
def test_sync_call_cpu_timeout(make_rt: Any) -> None:
    rt = make_rt(timeout=0.2)
    spin = rt.eval("() => { while (true) {} }")
    with pytest.raises(RuntimeError, match="timed out"):
        spin()
    assert rt.eval("1") == 1


def test_js_error_from_call(js: ModuleType, rt: Any) -> None:
    fn = rt.eval("() => { throw new RangeError('bad range') }")
    with pytest.raises(js.JavaScriptError) as info:
        fn()
    assert info.value.name == "RangeError"
    assert info.value.message == "bad range"
    assert str(info.value) == "Function call failed: RangeError: bad range"


async def test_rejected_promise_from_call(js: ModuleType, rt: Any) -> None:
    fn = rt.eval("async () => { await null; throw new Error('async bad') }")
    with pytest.raises(js.JavaScriptError, match="async bad"):
        await fn.call_async()


def test_method_keeps_this(rt: Any) -> None:
    obj = rt.eval("({ value: 41, getValue() { return this.value + 1 } })")
    assert obj["getValue"]() == 42


def test_round_trip_back_into_js(rt: Any) -> None:
    fn = rt.eval("globalThis.original = (x) => x + 1; original")
    same = rt.eval("(f) => f === original")
    assert same(fn) is True
    apply = rt.eval("(f, v) => f(v)")
    assert apply(fn, 1) == 2
    assert rt.eval("(f) => [f]")(fn)[0](5) == 6


async def test_close(rt: Any) -> None:
    fn = rt.eval("() => 1")
    awaitable = fn.close()
    assert inspect.isawaitable(awaitable)
    await awaitable
    with pytest.raises(RuntimeError, match="Function has been closed"):
        fn()
    with pytest.raises(RuntimeError, match="Function has been closed"):
        await fn.call_async()


async def test_closed_function_cannot_be_passed(rt: Any) -> None:
    fn = rt.eval("() => 1")
    await fn.close()
    take = rt.eval("(f) => typeof f")
    with pytest.raises(RuntimeError, match="closed"):
        take(fn)


def test_function_after_runtime_closed(js: ModuleType) -> None:
    rt = js.Runtime()
    fn = rt.eval("() => 1")
    rt.close()
    with pytest.raises(RuntimeError, match="Function call failed: Runtime has been shut down"):
        fn()


def test_gc_releases_handles(rt: Any) -> None:
    gc.collect()
    base = rt._debug_tracked_function_count()
    fns = [rt.eval("() => 1") for _ in range(5)]
    assert rt._debug_tracked_function_count() == base + 5
    del fns
    gc.collect()
    rt.eval("1")  # let the runtime process the releases
    for _ in range(50):
        if rt._debug_tracked_function_count() == base:
            break
        rt.eval("1")
    assert rt._debug_tracked_function_count() == base


async def test_close_releases_handle(rt: Any) -> None:
    base = rt._debug_tracked_function_count()
    fn = rt.eval("() => 1")
    assert rt._debug_tracked_function_count() == base + 1
    await fn.close()
    assert rt._debug_tracked_function_count() == base


def test_function_stats(rt: Any) -> None:
    fn = rt.eval("(x) => x")
    fn(1)
    stats = rt.get_stats()
    assert stats.call_function_sync_count == 1
    assert stats.last_execution_kind == "call_function_sync"


async def test_function_async_stats(rt: Any) -> None:
    fn = rt.eval("(x) => x")
    await fn.call_async(1)
    stats = rt.get_stats()
    assert stats.call_function_async_count == 1
    assert stats.last_execution_kind == "call_function_async"


def test_many_arguments_and_return_types(js: ModuleType, rt: Any) -> None:
    fn = rt.eval("(...a) => a")
    assert fn() == []
    assert fn(1, None, js.undefined, "s") == [1, None, js.undefined, "s"]
