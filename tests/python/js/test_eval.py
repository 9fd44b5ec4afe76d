"""eval / eval_async: completion values, promises, errors, timeouts and their validation."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from types import ModuleType
from typing import Any

import pytest

from .conftest import is_tether


def test_eval_completion_value(rt: Any) -> None:
    assert rt.eval("1 + 1") == 2
    assert rt.eval("let a = 20; a * 2 + 2") == 42
    assert rt.eval("'he' + 'llo'") == "hello"


def test_state_persists_between_evals(rt: Any) -> None:
    rt.eval("globalThis.counter = 1; function bump() { return ++counter }")
    rt.eval("bump()")
    assert rt.eval("bump()") == 3
    rt.eval("let lexical = 'kept'")
    assert rt.eval("lexical") == "kept"


def test_runtimes_are_isolated(js: ModuleType) -> None:
    with js.Runtime() as a, js.Runtime() as b:
        a.eval("globalThis.only_a = 1")
        assert b.eval("typeof only_a") == "undefined"


def test_sync_eval_does_not_await_promises(rt: Any) -> None:
    assert rt.eval("Promise.resolve(42)") == {}


async def test_eval_async_awaits_promises(rt: Any) -> None:
    assert await rt.eval_async("Promise.resolve(42)") == 42
    assert await rt.eval_async("1 + 2") == 3
    assert await rt.eval_async("(async () => { await null; return 'done' })()") == "done"


async def test_eval_async_promise_rejection(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        await rt.eval_async("Promise.reject(new RangeError('nope'))")
    assert info.value.name == "RangeError"
    assert info.value.message == "nope"


async def test_eval_async_with_timers(rt: Any) -> None:
    code = "new Promise(r => setTimeout(() => r('late'), 30))"
    assert await rt.eval_async(code) == "late"


def test_javascript_error_attributes(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval("function causeError() { throw new TypeError('boom') }\ncauseError()")
    err = info.value
    assert isinstance(err, Exception)
    assert not isinstance(err, RuntimeError)
    assert str(err) == "Evaluation failed: TypeError: boom"
    assert err.name == "TypeError"
    assert err.message == "boom"
    assert "<eval>" in err.stack
    assert "causeError" in err.stack
    assert err.stack.startswith("TypeError: boom")
    assert err.frames, err.frames
    first = err.frames[0]
    assert first["function_name"] == "causeError"
    assert first["file_name"] == "<eval>"
    assert first["line_number"] == 1
    assert isinstance(first["column_number"], int)
    assert any(f.get("line_number") == 2 for f in err.frames[1:])
    for frame in err.frames:
        assert {"file_name", "line_number", "column_number"} <= set(frame)


def test_syntax_error(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval("let = = 1")
    assert info.value.name == "SyntaxError"
    assert str(info.value).startswith("Evaluation failed: SyntaxError")


def test_custom_error_class_name(js: ModuleType, rt: Any) -> None:
    code = "class MyErr extends Error { constructor(m) { super(m); this.name = 'MyErr' } }"
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval(code + "; throw new MyErr('mine')")
    assert info.value.name == "MyErr"
    assert info.value.message == "mine"


@pytest.mark.parametrize(
    ("code", "message"),
    [("throw 42", "Uncaught 42"), ("throw 'boom'", "Uncaught boom")],
)
def test_thrown_non_error(js: ModuleType, rt: Any, code: str, message: str) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval(code)
    err = info.value
    assert err.name is None
    assert err.message == message
    assert err.frames == []
    assert str(err) == f"Evaluation failed: Error: {message}"


def test_runtime_usable_after_error(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError):
        rt.eval("null.x")
    assert rt.eval("'still here'") == "still here"


def test_caught_errors_stay_in_js(rt: Any) -> None:
    assert rt.eval("try { null.x } catch (e) { e instanceof TypeError }") is True


def test_import_statement_in_eval_is_syntax_error(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval("import x from 'y'")
    assert info.value.name == "SyntaxError"


# --- timeouts ----------------------------------------------------------------------------------


def test_sync_timeout_from_config(js: ModuleType, make_rt: Any) -> None:
    rt = make_rt(timeout=0.2)
    with pytest.raises(RuntimeError) as info:
        rt.eval("while (true) {}")
    assert not isinstance(info.value, js.RuntimeTerminated)
    text = str(info.value)
    assert "Evaluation failed" in text
    assert "Sync evaluation timed out after 200ms" in text
    assert rt.eval("1 + 1") == 2  # still usable


async def test_async_timeout_cpu_loop(js: ModuleType, rt: Any) -> None:
    with pytest.raises(RuntimeError) as info:
        await rt.eval_async("while (true) {}", timeout=0.2)
    assert "Async evaluation timed out after 200ms" in str(info.value)
    assert await rt.eval_async("2 + 2") == 4


async def test_async_timeout_pending_promise(rt: Any) -> None:
    with pytest.raises(RuntimeError) as info:
        await rt.eval_async("new Promise(() => {})", timeout=0.2)
    text = str(info.value)
    assert "Evaluation failed" in text
    assert "timed out" in text
    assert "pending" in text


async def test_timeout_accepts_timedelta_and_int(rt: Any) -> None:
    assert await rt.eval_async("7", timeout=dt.timedelta(seconds=1)) == 7
    assert await rt.eval_async("8", timeout=1) == 8
    with pytest.raises(RuntimeError, match="timed out"):
        await rt.eval_async("new Promise(() => {})", timeout=dt.timedelta(milliseconds=100))


async def test_config_timeout_applies_to_eval_async(make_rt: Any) -> None:
    rt = make_rt(timeout=0.2)
    with pytest.raises(RuntimeError, match="timed out"):
        await rt.eval_async("while (true) {}")


async def test_timeout_is_accurate(rt: Any) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RuntimeError):
        await rt.eval_async("while (true) {}", timeout=0.2)
    assert 0.15 < loop.time() - start < 1.5


TIMEOUT_ERRORS = [
    (-1, "Timeout cannot be negative"),
    (0, "Timeout cannot be zero"),
    (0.0, "Timeout cannot be zero"),
    (float("inf"), "Timeout must be finite"),
    (float("nan"), "Timeout must be finite"),
    ("1", "Timeout must be a number"),
    (dt.timedelta(seconds=-1), "Timeout cannot be negative"),
    (dt.timedelta(0), "Timeout cannot be zero"),
]


@pytest.mark.parametrize(("value", "message"), TIMEOUT_ERRORS)
async def test_eval_async_timeout_validation(rt: Any, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        await rt.eval_async("1", timeout=value)


@pytest.mark.parametrize(("value", "message"), TIMEOUT_ERRORS)
async def test_eval_module_async_timeout_validation(rt: Any, value: object, message: str) -> None:
    rt.add_static_module("m", "export const x = 1")
    with pytest.raises(ValueError, match=re.escape(message)):
        await rt.eval_module_async("m", timeout=value)


@pytest.mark.parametrize(("value", "message"), TIMEOUT_ERRORS)
async def test_function_timeout_validation(rt: Any, value: object, message: str) -> None:
    fn = rt.eval("(x) => x")
    with pytest.raises(ValueError, match=re.escape(message)):
        await fn.call_async(1, timeout=value)
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(1, timeout=value)


@pytest.mark.parametrize(("value", "message"), TIMEOUT_ERRORS)
def test_config_timeout_validation(js: ModuleType, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        js.RuntimeConfig(timeout=value)
    config = js.RuntimeConfig()
    with pytest.raises(ValueError, match=re.escape(message)):
        config.timeout = value


def test_js_environment_globals(js: ModuleType, rt: Any) -> None:
    for name in [
        "setTimeout",
        "setInterval",
        "clearTimeout",
        "clearInterval",
        "queueMicrotask",
        "ReadableStream",
        "__host_op_sync__",
        "__host_op_async__",
    ]:
        assert rt.eval(f"typeof {name}") == "function", name
    assert rt.eval("typeof console") == "object"
    assert rt.eval("typeof Deno") == "undefined"
    assert rt.eval("typeof SharedArrayBuffer") == "function"
    assert rt.eval("typeof fetch") == "undefined"


def test_engine_specific_globals(js: ModuleType, rt: Any) -> None:
    """QuickJS has no Intl, Temporal or WebAssembly (documented gap); V8 in jsrun has them."""
    present = {n: rt.eval(f"typeof {n}") != "undefined" for n in ["Intl", "WebAssembly"]}
    if is_tether(js):
        assert present == {"Intl": False, "WebAssembly": False}
        assert rt.eval("typeof (1234.5).toLocaleString()") == "string"  # en-US fallback
    else:
        assert present == {"Intl": True, "WebAssembly": True}
