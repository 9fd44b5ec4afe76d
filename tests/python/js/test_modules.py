"""ES modules: static modules, resolver, sync/async loaders, eval_module(_async), errors."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from .conftest import is_tether


def test_static_module_namespace(js: ModuleType, rt: Any) -> None:
    rt.add_static_module("math", "export const pi = 3; export function twice(x) { return 2 * x }")
    ns = rt.eval_module("math")
    assert isinstance(ns, dict)
    assert ns["pi"] == 3
    assert isinstance(ns["twice"], js.JsFunction)
    assert ns["twice"](4) == 8


def test_static_module_default_export(rt: Any) -> None:
    rt.add_static_module("d", "export default {answer: 42}")
    assert rt.eval_module("d")["default"] == {"answer": 42}


def test_imports_between_static_modules(rt: Any) -> None:
    rt.add_static_module("base", "export const base = 10")
    rt.add_static_module("derived", "import { base } from 'base'; export const value = base + 1")
    assert rt.eval_module("derived")["value"] == 11


def test_static_prefix_and_url(rt: Any) -> None:
    rt.add_static_module("lib", "export const v = 'lib'")
    rt.add_static_module("a", "import { v } from 'static:lib'; export const x = v")
    rt.add_static_module("main", "export { x } from 'a'; export { v as y } from 'lib'")
    assert rt.eval_module("main") == {"x": "lib", "y": "lib"}


def test_several_main_modules(js: ModuleType, rt: Any) -> None:
    """jsrun 0.3.0 (deno_core) allows one eval_module per runtime; tether allows many."""
    rt.add_static_module("first", "export const n = 1")
    rt.add_static_module("second", "export const n = 2")
    assert rt.eval_module("first")["n"] == 1
    if not is_tether(js):
        with pytest.raises(RuntimeError, match="main"):
            rt.eval_module("second")
        return
    assert rt.eval_module("second")["n"] == 2
    assert rt.eval_module("first")["n"] == 1  # cached, same namespace


def test_module_evaluated_once(rt: Any) -> None:
    rt.eval("globalThis.loads = 0")
    rt.add_static_module("once", "globalThis.loads++; export const n = 1")
    rt.add_static_module("u1", "import 'once'; export const a = 1")
    rt.add_static_module("u2", "import 'once'; export const b = 1")
    rt.add_static_module("main", "import 'u1'; import 'u2'; export {}")
    rt.eval_module("main")
    assert rt.eval("loads") == 1


async def test_eval_module_async_and_top_level_await(rt: Any) -> None:
    rt.add_static_module(
        "tla", "export const v = await new Promise(r => setTimeout(() => r('awaited'), 10))"
    )
    ns = await rt.eval_module_async("tla")
    assert ns["v"] == "awaited"


def test_missing_module(rt: Any) -> None:
    with pytest.raises(RuntimeError) as info:
        rt.eval_module("nope")
    text = str(info.value)
    assert "Module evaluation failed" in text
    assert "nope" in text
    assert "Module resolution denied" in text
    assert "add_static_module" in text


def test_missing_import_inside_module(rt: Any) -> None:
    rt.add_static_module("broken", "import 'missing'; export const x = 1")
    with pytest.raises(RuntimeError, match="Module resolution denied for missing"):
        rt.eval_module("broken")


def test_module_syntax_error(js: ModuleType, rt: Any) -> None:
    rt.add_static_module("bad", "export const = 1")
    with pytest.raises((RuntimeError, js.JavaScriptError)) as info:
        rt.eval_module("bad")
    assert "SyntaxError" in str(info.value)


def test_module_throws(js: ModuleType, rt: Any) -> None:
    rt.add_static_module("thrower", "throw new Error('at load')")
    with pytest.raises((RuntimeError, js.JavaScriptError), match="at load"):
        rt.eval_module("thrower")


def test_resolver_string_url(rt: Any) -> None:
    seen: list[tuple[str, str]] = []

    def resolver(specifier: str, referrer: str) -> str | None:
        seen.append((specifier, referrer))
        if specifier == "alias":
            return "jsrun://static/real"
        return None

    rt.add_static_module("real", "export const who = 'real'")
    rt.add_static_module("main", "import { who } from 'alias'; export const got = who")
    rt.set_module_resolver(resolver)
    assert rt.eval_module("main")["got"] == "real"
    assert any(spec == "alias" for spec, _ in seen)


@pytest.mark.parametrize("fallback", [None, ""])
def test_resolver_fallback_to_static(rt: Any, fallback: str | None) -> None:
    rt.add_static_module("s", "export const ok = true")
    rt.set_module_resolver(lambda spec, ref: fallback)
    assert rt.eval_module("s")["ok"] is True


def test_resolver_denied(rt: Any) -> None:
    rt.set_module_resolver(lambda spec, ref: None)
    with pytest.raises(RuntimeError) as info:
        rt.eval_module("unknown")
    assert "Module resolution denied for unknown" in str(info.value)
    assert "Resolver returned None" in str(info.value)


def test_resolver_error(rt: Any) -> None:
    def resolver(spec: str, ref: str) -> str:
        raise ValueError("resolver exploded")

    rt.set_module_resolver(resolver)
    with pytest.raises(RuntimeError) as info:
        rt.eval_module("x")
    assert "Module resolution failed for x: ValueError: resolver exploded" in str(info.value)


def test_resolver_wrong_return_type(rt: Any) -> None:
    rt.set_module_resolver(lambda spec, ref: 42)
    with pytest.raises(RuntimeError, match="Module resolver must return a string or None"):
        rt.eval_module("x")


def test_resolved_url_without_loader(rt: Any) -> None:
    rt.set_module_resolver(lambda spec, ref: "custom://x")
    with pytest.raises(RuntimeError) as info:
        rt.eval_module("x")
    text = str(info.value)
    assert "Module evaluation failed: Failed to load module 'x'" in text
    assert "Module loading denied for custom://x. Did you call set_module_loader()?" in text


def test_sync_loader(rt: Any) -> None:
    loaded: list[str] = []

    def loader(specifier: str) -> str:
        loaded.append(specifier)
        return "export const n = 5"

    rt.set_module_resolver(lambda spec, ref: f"custom://{spec}")
    rt.set_module_loader(loader)
    assert rt.eval_module("thing")["n"] == 5
    assert loaded == ["custom://thing"]


def test_loader_modules_import_each_other(rt: Any) -> None:
    sources = {
        "custom://a": "import { b } from 'b'; export const a = 'a' + b",
        "custom://b": "export const b = 'b'",
    }
    rt.set_module_resolver(lambda spec, ref: f"custom://{spec}")
    rt.set_module_loader(lambda spec: sources[spec])
    assert rt.eval_module("a")["a"] == "ab"


def test_loader_error(rt: Any) -> None:
    def loader(spec: str) -> str:
        raise OSError("disk on fire")

    rt.set_module_resolver(lambda spec, ref: f"custom://{spec}")
    rt.set_module_loader(loader)
    with pytest.raises(RuntimeError, match="disk on fire"):
        rt.eval_module("x")


async def test_async_loader(rt: Any) -> None:
    async def loader(spec: str) -> str:
        await asyncio.sleep(0.01)
        return "export const fromAsync = 'yes'"

    rt.set_module_resolver(lambda spec, ref: f"custom://{spec}")
    rt.set_module_loader(loader)
    ns = await rt.eval_module_async("thing")
    assert ns["fromAsync"] == "yes"


async def test_async_loader_in_sync_eval_module(rt: Any) -> None:
    async def loader(spec: str) -> str:
        return "export const x = 1"

    rt.set_module_resolver(lambda spec, ref: f"custom://{spec}")
    rt.set_module_loader(loader)
    with pytest.raises(RuntimeError) as info:
        rt.eval_module("thing")
    assert "async" in str(info.value)
    assert "eval_module_async" in str(info.value)


async def test_dynamic_import(rt: Any) -> None:
    rt.add_static_module("dyn", "export const v = 'dynamic'")
    assert await rt.eval_async("import('dyn').then(m => m.v)") == "dynamic"
    assert await rt.eval_async("(async () => (await import('static:dyn')).v)()") == "dynamic"


async def test_dynamic_import_missing(js: ModuleType, rt: Any) -> None:
    with pytest.raises(js.JavaScriptError) as info:
        await rt.eval_async("import('nowhere')")
    assert "nowhere" in str(info.value)


async def test_dynamic_import_from_loader(rt: Any) -> None:
    rt.set_module_resolver(lambda spec, ref: f"custom://{spec}")
    rt.set_module_loader(lambda spec: "export default 7")
    assert await rt.eval_async("import('x').then(m => m.default)") == 7


def test_eval_module_timeout_from_config(make_rt: Any) -> None:
    rt = make_rt(timeout=0.2)
    rt.add_static_module("spin", "while (true) {}")
    with pytest.raises(RuntimeError, match="timed out"):
        rt.eval_module("spin")


async def test_eval_module_async_timeout(rt: Any) -> None:
    rt.add_static_module("hang", "await new Promise(r => setTimeout(r, 10000)); export const x = 1")
    with pytest.raises(RuntimeError, match="Module evaluation timed out after 200ms"):
        await rt.eval_module_async("hang", timeout=0.2)


async def test_eval_module_async_cpu_timeout(rt: Any) -> None:
    rt.add_static_module("spin", "while (true) {}; export const x = 1")
    with pytest.raises(RuntimeError, match="timed out after 200ms"):
        await rt.eval_module_async("spin", timeout=0.2)


@pytest.mark.tether_only("jsrun 0.3.0: after a never-resolving top-level await the test hangs")
async def test_top_level_await_never_resolving(js: ModuleType, rt: Any) -> None:
    """A TLA promise with nothing left to settle it fails at once or at the timeout."""
    rt.add_static_module("stuck", "await new Promise(() => {}); export const x = 1")
    with pytest.raises((RuntimeError, js.JavaScriptError)) as info:
        await rt.eval_module_async("stuck", timeout=0.5)
    assert "never resolved" in str(info.value) or "timed out" in str(info.value)


def test_module_state_shared_with_scripts(rt: Any) -> None:
    rt.add_static_module("g", "globalThis.fromModule = 'set'; export {}")
    rt.eval_module("g")
    assert rt.eval("fromModule") == "set"


def test_eval_module_after_close(js: ModuleType) -> None:
    rt = js.Runtime()
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.eval_module("x")
    with pytest.raises(RuntimeError, match="closed"):
        rt.add_static_module("x", "export {}")
