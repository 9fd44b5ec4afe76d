"""bind_function, bind_object, Runtime.bind, register_op and the __host_op_* globals."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from types import ModuleType
from typing import Any

import pytest


def test_bind_function_sync(rt: Any) -> None:
    calls: list[tuple[Any, ...]] = []

    def add(a: int, b: int) -> int:
        calls.append((a, b))
        return a + b

    rt.bind_function("add", add)
    assert rt.eval("add(2, 3)") == 5
    assert calls == [(2, 3)]
    assert rt.eval("typeof add") == "function"


def test_bound_function_receives_converted_values(js: ModuleType, rt: Any) -> None:
    seen: list[Any] = []
    rt.bind_function("take", lambda *args: seen.append(args) or len(args))
    assert rt.eval("take(1, 'a', undefined, [1, 2], {k: 2}, new Uint8Array([7]), 5n)") == 7
    assert seen == [(1, "a", js.undefined, [1, 2], {"k": 2}, b"\x07", 5)]


def test_null_argument(js: ModuleType, rt: Any) -> None:
    """jsrun 0.3.0 passes null arguments (also nested) as undefined; tether may keep None."""
    seen: list[Any] = []
    rt.bind_function("take", lambda *v: seen.append(v))
    rt.eval("take(null, [null])")
    assert seen[0][0] in (None, js.undefined)
    assert seen[0][1][0] in (None, js.undefined)


def test_bound_function_returns_converted_values(rt: Any) -> None:
    rt.bind_function(
        "give", lambda: {"d": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), "s": {1}}
    )
    assert rt.eval("const g = give(); [g.d.getUTCFullYear(), g.s.has(1)]") == [2020, True]


def test_python_exception_becomes_js_type_error(js: ModuleType, rt: Any) -> None:
    def bad() -> None:
        raise ValueError("text")

    rt.bind_function("bad", bad)
    assert rt.eval("try { bad() } catch (e) { [e instanceof TypeError, e.message] }") == [
        True,
        "ValueError: text",
    ]
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval("bad()")
    assert info.value.name == "TypeError"
    assert info.value.message == "ValueError: text"
    assert str(info.value) == "Evaluation failed: TypeError: ValueError: text"


def test_guard_pattern(js: ModuleType, rt: Any) -> None:
    def guarded(path: str) -> str:
        if path.startswith("/etc"):
            raise PermissionError("Permission denied")
        return "ok"

    rt.bind_function("readFile", guarded)
    assert rt.eval("readFile('/tmp/x')") == "ok"
    with pytest.raises(js.JavaScriptError, match="Permission denied"):
        rt.eval("readFile('/etc/passwd')")


async def test_bind_function_async(rt: Any) -> None:
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * 10

    await rt.eval_async("1")  # captures the running loop
    rt.bind_function("fetch", fetch)
    assert await rt.eval_async("fetch(4)") == 40
    assert await rt.eval_async("Promise.all([fetch(1), fetch(2)])") == [10, 20]
    # Await the call too: an op still in flight when the loop and the runtime close is a
    # jsrun 0.3.0 deadlock (its close() waits for the runtime thread, which waits for the GIL).
    is_promise = (
        "(async () => { const p = fetch(1); const ok = p instanceof Promise;"
        " await p; return ok })()"
    )
    assert await rt.eval_async(is_promise) is True


async def test_async_bound_function_error(js: ModuleType, rt: Any) -> None:
    async def fail() -> None:
        await asyncio.sleep(0)
        raise KeyError("gone")

    await rt.eval_async("1")
    rt.bind_function("fail", fail)
    got = await rt.eval_async("fail().then(() => 'no', (e) => String(e.message))")
    assert "gone" in got
    with pytest.raises(js.JavaScriptError, match="gone"):
        await rt.eval_async("fail()")


async def test_async_functions_run_concurrently(rt: Any) -> None:
    async def nap(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    await rt.eval_async("1")
    rt.bind_function("nap", nap)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await rt.eval_async("Promise.all([nap(200), nap(200), nap(200)])") == [200] * 3
    assert loop.time() - start < 0.5


def test_bind_object(rt: Any) -> None:
    config = {"version": "1.0", "debug": True, "nested": {"n": [1, 2]}, "add": lambda a, b: a + b}
    rt.bind_object("config", config)
    assert rt.eval("config.version") == "1.0"
    assert rt.eval("config.nested.n[1]") == 2
    assert rt.eval("config.add(2, 5)") == 7
    assert rt.eval("typeof config.add") == "function"


def test_bind_object_is_a_copy(rt: Any) -> None:
    data = {"v": 1}
    rt.bind_object("obj", data)
    data["v"] = 2
    assert rt.eval("obj.v") == 1
    rt.eval("obj.v = 3")
    assert data["v"] == 2


async def test_bind_object_async_function(rt: Any) -> None:
    async def get(k: str) -> str:
        await asyncio.sleep(0)
        return k.upper()

    await rt.eval_async("1")
    rt.bind_object("api", {"get": get})
    assert await rt.eval_async("api.get('x')") == "X"


def test_bind_object_escaped_names(rt: Any) -> None:
    rt.bind_object("api.with$odd.chars", {"key'\"\\\n": 1, "fn": lambda: "called"})
    assert rt.eval("globalThis['api.with$odd.chars'][\"key'\\\"\\\\\\n\"]") == 1
    assert rt.eval("globalThis['api.with$odd.chars'].fn()") == "called"


def test_bind_function_odd_name(rt: Any) -> None:
    rt.bind_function("$odd_name$2", lambda: 5)
    assert rt.eval("$odd_name$2()") == 5


def test_bind_object_nested_callable_rejected(rt: Any) -> None:
    with pytest.raises(RuntimeError, match="Unsupported Python type"):
        rt.bind_object("bad", {"inner": {"f": lambda: 1}})


@pytest.mark.parametrize("value", [[1, 2], "x", 3, None])
def test_bind_object_requires_dict(rt: Any, value: object) -> None:
    with pytest.raises(RuntimeError, match="bind_object expects a dict with string keys"):
        rt.bind_object("bad", value)


# --- Runtime.bind ------------------------------------------------------------------------------


def test_runtime_bind_forms(rt: Any) -> None:
    def plain(x: int) -> int:
        return x + 1

    assert rt.bind(plain) is plain

    @rt.bind
    def deco(x: int) -> int:
        return x + 2

    @rt.bind()
    def deco_call(x: int) -> int:
        return x + 3

    @rt.bind(name="renamed")
    def original(x: int) -> int:
        return x + 4

    assert deco(0) == 2 and deco_call(0) == 3 and original(0) == 4  # still plain Python
    assert rt.eval("[plain(0), deco(0), deco_call(0), renamed(0)]") == [1, 2, 3, 4]
    assert rt.eval("typeof original") == "undefined"
    assert rt.bind(lambda: 9, name="lam") is not None
    assert rt.eval("lam()") == 9


async def test_runtime_bind_async(rt: Any) -> None:
    await rt.eval_async("1")

    @rt.bind
    async def later() -> str:
        await asyncio.sleep(0)
        return "later"

    assert await rt.eval_async("later()") == "later"


def test_runtime_bind_errors(rt: Any) -> None:
    with pytest.raises(TypeError):
        rt.bind(42)

    class NoName:
        __name__ = ""

        def __call__(self) -> int:
            return 1

    with pytest.raises(ValueError):
        rt.bind(NoName())


# --- register_op and host ops --------------------------------------------------------------------


def test_register_op_sync(rt: Any) -> None:
    op = rt.register_op("double", lambda x: x * 2)
    assert isinstance(op, int)
    assert rt.eval(f"__host_op_sync__({op}, 21)") == 42


def test_register_op_ids_count_from_zero(rt: Any) -> None:
    ids = [rt.register_op(f"op{i}", lambda i=i: i) for i in range(3)]
    assert ids == [0, 1, 2]


def test_register_op_shares_counter_with_bind_function(rt: Any) -> None:
    rt.bind_function("f", lambda: 1)
    assert rt.register_op("g", lambda: 2) == 1


def test_register_op_receives_positional_args(rt: Any) -> None:
    op = rt.register_op("args", lambda *a: list(a))
    assert rt.eval(f"__host_op_sync__({op}, 1, 'two', [3])") == [1, "two", [3]]


async def test_register_op_async(rt: Any) -> None:
    async def slow(x: int) -> int:
        await asyncio.sleep(0.01)
        return x + 1

    await rt.eval_async("1")
    op = rt.register_op("slow", slow, mode="async")
    assert await rt.eval_async(f"__host_op_async__({op}, 1)") == 2


async def test_sync_call_to_async_op_throws(js: ModuleType, rt: Any) -> None:
    async def slow() -> int:
        return 1

    await rt.eval_async("1")
    op = rt.register_op("slow", slow, mode="async")
    with pytest.raises(js.JavaScriptError, match="(?i)not synchronous|async"):
        rt.eval(f"__host_op_sync__({op})")


def test_register_op_mode_mismatch(rt: Any) -> None:
    async def coro() -> None:
        return None

    with pytest.raises(RuntimeError):
        rt.register_op("a", coro, mode="sync")
    with pytest.raises(RuntimeError):
        rt.register_op("b", lambda: 1, mode="async")


def test_register_op_invalid_mode(rt: Any) -> None:
    with pytest.raises(RuntimeError, match="Invalid mode 'x', expected 'sync' or 'async'"):
        rt.register_op("a", lambda: 1, mode="x")


def test_unknown_op_id_throws(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError):
        rt.eval("__host_op_sync__(9999)")


def test_register_op_after_close(js: ModuleType) -> None:
    rt = js.Runtime()
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.register_op("a", lambda: 1)
    with pytest.raises(RuntimeError, match="closed"):
        rt.bind_function("a", lambda: 1)


def test_op_conversions_both_ways(js: ModuleType, rt: Any) -> None:
    got: list[Any] = []

    def keep(*args: Any) -> list[Any]:
        got.extend(args)
        return list(args)

    op = rt.register_op("keep", keep)
    back = rt.eval(
        f"__host_op_sync__({op}, new Uint8Array([1]), new Date(0), new Set([1]), 10n ** 30n,"
        " undefined).map((v) => typeof v)"
    )
    assert got == [
        b"\x01",
        dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc),
        {1},
        10**30,
        js.undefined,
    ]
    assert back == ["object", "object", "object", "bigint", "undefined"]


def test_op_exception_message(js: ModuleType, rt: Any) -> None:
    def deny() -> None:
        raise PermissionError("Permission denied")

    op = rt.register_op("deny", deny)
    msg = rt.eval(f"try {{ __host_op_sync__({op}) }} catch (e) {{ e.message }}")
    assert "Permission denied" in msg


BLOB_OVER = "RuntimeError: Size (5000 bytes) exceeded maximum limit of 1000 bytes"
CATCH = "try {{ {call}; 'no error' }} catch (e) {{ [e instanceof Error, e.name, e.message] }}"


def test_op_result_over_size_limit_is_a_js_error(js: ModuleType, make_rt: Any) -> None:
    rt = make_rt(max_serialization_bytes=1000)
    rt.bind_function("blob", lambda: b"x" * 5000)
    rt.bind_function("rows", lambda: ["x" * 600, "y" * 600])
    rt.bind_function("text", lambda: "z" * 5000)
    rt.bind_function("small", lambda: b"x" * 900)
    op = rt.register_op("blob_op", lambda: bytearray(5000))
    # JS can catch it: an Error (jsrun's TypeError, with the Python error named in the message).
    assert rt.eval(CATCH.format(call="blob()")) == [True, "TypeError", BLOB_OVER]
    assert rt.eval(CATCH.format(call=f"__host_op_sync__({op})")) == [True, "TypeError", BLOB_OVER]
    caught = rt.eval(CATCH.format(call="rows()"))
    assert caught[:2] == [True, "TypeError"]
    assert re.fullmatch(
        r"RuntimeError: Size \(\d+ bytes\) exceeded maximum limit of 1000 bytes", caught[2]
    )
    assert rt.eval(CATCH.format(call="text()")) == [
        True,
        "TypeError",
        "RuntimeError: String size limit exceeded: 5000 > 1000",
    ]
    # Uncaught, it reaches Python as a JavaScriptError, and the runtime stays usable.
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval("blob()")
    assert info.value.name == "TypeError"
    assert info.value.message == BLOB_OVER
    assert rt.eval("small().length") == 900


async def test_async_op_result_over_size_limit_is_a_js_error(js: ModuleType, make_rt: Any) -> None:
    rt = make_rt(max_serialization_bytes=1000)

    async def blob() -> bytes:
        await asyncio.sleep(0)
        return b"a" * 5000

    async def small() -> bytes:
        return b"a" * 900

    rt.bind_function("blob", blob)
    rt.bind_function("small", small)
    op = rt.register_op("blob_op", blob, mode="async")
    rejected = "{call}.then(() => 'no error', e => [e instanceof Error, e.name, e.message])"
    assert await rt.eval_async(rejected.format(call="blob()")) == [True, "TypeError", BLOB_OVER]
    assert await rt.eval_async(rejected.format(call=f"__host_op_async__({op})")) == [
        True,
        "TypeError",
        BLOB_OVER,
    ]
    awaited = (
        "(async () => { try { await blob(); return 'no error' } catch (e) { return e.name } })()"
    )
    assert await rt.eval_async(awaited) == "TypeError"
    with pytest.raises(js.JavaScriptError) as info:
        await rt.eval_async("blob()")
    assert info.value.name == "TypeError"
    assert info.value.message == BLOB_OVER
    assert await rt.eval_async("small().then(b => b.length)") == 900
