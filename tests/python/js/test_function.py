"""JsFunction: calls, awaitables, call_async, close, `this`, round trips, GC release."""

from __future__ import annotations

import gc
import inspect
import re
import time
import weakref
from types import ModuleType
from typing import Any

import pytest

from .conftest import is_tether

SHUT_DOWN = r"^Function call failed: Runtime has been shut down$"


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


def test_function_is_weak_referenceable(rt: Any) -> None:
    # Libraries cache JS functions in weak mappings: weakref.ref, WeakValueDictionary and
    # WeakKeyDictionary must all work, and die with the function (releasing its handle).
    gc.collect()
    base = rt._debug_tracked_function_count()
    fn = rt.eval("(x) => x + 1")
    ref = weakref.ref(fn)
    by_name = weakref.WeakValueDictionary({"inc": fn})
    by_fn = weakref.WeakKeyDictionary({fn: "inc"})
    assert ref() is fn
    assert by_name["inc"](1) == 2
    assert by_fn[fn] == "inc"
    assert rt._debug_tracked_function_count() == base + 1
    del fn
    gc.collect()
    assert ref() is None
    assert "inc" not in by_name
    assert len(by_fn) == 0
    assert rt._debug_tracked_function_count() == base


async def test_runtime_close_releases_held_functions(js: ModuleType) -> None:
    rt = js.Runtime()
    add = rt.eval("(a, b) => a + b")
    method = rt.eval("({ v: 41, get() { return this.v + 1 } })")["get"]
    pending = rt.eval("() => new Promise(() => {})")
    assert method() == 42
    assert rt._debug_tracked_function_count() == 3
    rt.close()
    # Close released every handle Python still holds...
    assert rt._debug_tracked_function_count() == 0
    # ...and a released function says why it cannot run, sync or async.
    for fn in (add, method, pending):
        with pytest.raises(RuntimeError, match=SHUT_DOWN):
            fn(1, 2)
        with pytest.raises(RuntimeError, match=SHUT_DOWN):
            await fn.call_async(1, 2)
    take = js.Runtime()
    try:
        with pytest.raises(RuntimeError):
            take.eval("(f) => typeof f")(add)
    finally:
        take.close()
    refs = [weakref.ref(f) for f in (add, method, pending)]
    del add, method, pending, fn
    gc.collect()
    assert [r() for r in refs] == [None, None, None]


def runtime_with_handler(js: ModuleType) -> tuple[Any, weakref.ref[Any]]:
    """A Runtime with a Python handler bound as `host()` (returning 7) that only the runtime
    holds, and a weak reference that tells when the handler is freed."""

    class Handler:
        def __call__(self) -> int:
            return 7

    handler = Handler()
    handler_ref = weakref.ref(handler)
    rt = js.Runtime()
    rt.bind_function("host", handler)
    return rt, handler_ref


@pytest.mark.tether_only(
    "jsrun 0.3.0: a JsFunction held after close() keeps the runtime's host functions alive"
)
def test_runtime_close_frees_what_held_functions_reach(js: ModuleType) -> None:
    # A held JsFunction must not keep its runtime's JS heap (and what that references on the
    # Python side, like a bound handler) alive after close().
    rt, handler_ref = runtime_with_handler(js)
    fn = rt.eval("() => host()")
    assert rt.eval("host()") == 7
    rt.close()
    gc.collect()
    assert handler_ref() is None
    with pytest.raises(RuntimeError, match=SHUT_DOWN):
        fn()


def test_terminate_releases_held_functions(js: ModuleType) -> None:
    rt = js.Runtime()
    fn = rt.eval("() => 1")
    rt.terminate()
    with pytest.raises(
        js.RuntimeTerminated, match=r"^Function call failed: Terminated by host request$"
    ):
        fn()
    if is_tether(js):
        # jsrun 0.3.0 keeps counting it after terminate() (only close() drains the handles).
        assert rt._debug_tracked_function_count() == 0
    rt.close()
    assert rt._debug_tracked_function_count() == 0


async def test_closed_function_repr(rt: Any) -> None:
    fn = rt.eval("() => 1")
    assert re.fullmatch(r"<JsFunction id=\d+>", repr(fn))
    await fn.close()
    assert repr(fn) == "<JsFunction (closed)>"


@pytest.mark.tether_only(
    "jsrun 0.3.0: a Runtime runs until close() (its docs: not released until the program exits)"
)
def test_dropped_runtime_stops_although_its_functions_live(js: ModuleType) -> None:
    # tether.js terminates a Runtime that is garbage-collected without close(). Functions that
    # outlive it must not keep its thread and JS heap alive (they did, until the last one went):
    # the heap holds the bound handler, so the handler goes when the heap does.
    rt, handler_ref = runtime_with_handler(js)
    fn = rt.eval("() => host()")
    assert fn() == 7
    del rt
    gc.collect()
    deadline = time.monotonic() + 5
    while handler_ref() is not None and time.monotonic() < deadline:
        time.sleep(0.005)
        gc.collect()
    assert handler_ref() is None
    with pytest.raises(RuntimeError, match=SHUT_DOWN):
        fn()


@pytest.mark.tether_only(
    "jsrun 0.3.0: raises 'Failed to release function: Runtime has been shut down'"
)
async def test_function_close_after_runtime_close_is_a_no_op(js: ModuleType) -> None:
    rt = js.Runtime()
    fn = rt.eval("() => 1")
    rt.close()
    await fn.close()  # already released by the runtime's close()
    await fn.close()
    with pytest.raises(RuntimeError, match="^Function has been closed$"):
        fn()
