"""The `eval` code cache: a repeated source runs its cached bytecode and behaves exactly like a
fresh compile (values, errors with their locations, globals, fresh objects), the cache stays
within its bounds, `code_cache_entries=0` turns it off, and `RuntimeStats` counts it. A source
enters the cache the second time it is compiled, so it hits from its third `eval` on.

The behaviour tests run on jsrun too (repeating a source must not change anything there
either); the counters and the config are tether's own."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

import pytest

CAUSE = "function causeError() {\n  throw new TypeError('boom')\n}\ncauseError()"


def _error(rt: Any, js: ModuleType, code: str) -> tuple[str, str | None, list[dict[str, Any]]]:
    with pytest.raises(js.JavaScriptError) as info:
        rt.eval(code)
    return str(info.value), info.value.stack, info.value.frames


def test_repeated_eval_returns_the_same_values(rt: Any) -> None:
    for _ in range(5):
        assert rt.eval("1+1") == 2
        assert rt.eval("({a: [1, 'b'], n: null})") == {"a": [1, "b"], "n": None}


def test_repeated_errors_keep_message_and_location(js: ModuleType, rt: Any) -> None:
    first = _error(rt, js, CAUSE)
    for _ in range(3):
        assert _error(rt, js, CAUSE) == first
    message, stack, frames = first
    assert message == "Evaluation failed: TypeError: boom"
    assert stack is not None and "causeError" in stack
    assert frames[0]["function_name"] == "causeError"
    assert frames[0]["file_name"] == "<eval>"
    assert frames[0]["line_number"] == 2
    assert any(f["line_number"] == 4 for f in frames[1:])


def test_repeated_script_runs_again_with_fresh_objects(rt: Any) -> None:
    code = (
        "var runs = (globalThis.runs || 0) + 1;\n"
        "function defined() { return runs }\n"
        "globalThis.seen = globalThis.seen || [];\n"
        "(() => { const o = {n: 0}; o.n++; seen.push(o); return [o.n, defined()] })()"
    )
    assert [rt.eval(code) for _ in range(3)] == [[1, 1], [1, 2], [1, 3]]
    assert rt.eval("seen[0] !== seen[1] && seen[1] !== seen[2]") is True


def test_stats_count_hits_and_misses(tjs: ModuleType) -> None:
    with tjs.Runtime() as rt:
        assert rt.get_stats().code_cache_misses == 0
        for _ in range(4):
            assert rt.eval("1+1") == 2
        stats = rt.get_stats()
        assert (stats.code_cache_hits, stats.code_cache_misses) == (2, 2)
        assert stats.code_cache_entries == 1
        assert stats.code_cache_bytes > 0
        assert stats.code_cache_evictions == 0


def test_errors_on_a_hit_match_a_runtime_without_cache(tjs: ModuleType) -> None:
    off = tjs.RuntimeConfig(code_cache_entries=0)
    with tjs.Runtime() as rt, tjs.Runtime(off) as plain:
        miss = _error(rt, tjs, CAUSE)
        cached = _error(rt, tjs, CAUSE)
        hit = _error(rt, tjs, CAUSE)
        assert rt.get_stats().code_cache_hits == 1
        assert hit == cached == miss == _error(plain, tjs, CAUSE)
        syntax = _error(rt, tjs, "1 +")
        assert _error(rt, tjs, "1 +") == syntax == _error(plain, tjs, "1 +")


def test_eviction_keeps_the_cache_bounded(tjs: ModuleType) -> None:
    config = tjs.RuntimeConfig(code_cache_bytes=16 * 1024, code_cache_entries=32)
    with tjs.Runtime(config) as rt:
        for i in range(500):
            code = f"var v{i} = {i}; '{'x' * (i % 200)}'.length + v{i}"
            assert rt.eval(code) == i % 200 + i
            assert rt.eval(code) == i % 200 + i  # compiled into the cache
            if i % 50 == 0:
                stats = rt.get_stats()
                assert stats.code_cache_entries <= 32
                assert stats.code_cache_bytes <= 16 * 1024
        stats = rt.get_stats()
        assert stats.code_cache_misses == 1000
        assert stats.code_cache_entries > 0
        assert stats.code_cache_evictions == 500 - stats.code_cache_entries
        assert 0 < stats.code_cache_bytes <= 16 * 1024
        # The heap does not grow with the number of distinct sources seen.
        before = rt.get_stats().heap_used_bytes
        for i in range(500, 1500):
            code = f"var v{i} = {i}; '{'x' * (i % 200)}'.length + v{i}"
            rt.eval(code)
            rt.eval(code)
        grown = rt.get_stats().heap_used_bytes - before
        # 1,000 more globals cost some heap; 1,000 more cached scripts would cost far more.
        assert grown < 400 * 1024, grown


def test_disabled_cache_behaves_as_before(tjs: ModuleType) -> None:
    for off in (
        tjs.RuntimeConfig(code_cache_entries=0),
        tjs.RuntimeConfig(code_cache_bytes=0),
    ):
        with tjs.Runtime(off) as rt:
            assert [rt.eval("1+1") for _ in range(3)] == [2, 2, 2]
            assert _error(rt, tjs, CAUSE)[2][0]["line_number"] == 2
            stats = rt.get_stats()
            assert (stats.code_cache_hits, stats.code_cache_misses) == (0, 0)
            assert (stats.code_cache_entries, stats.code_cache_bytes) == (0, 0)


def test_config_validation(tjs: ModuleType) -> None:
    config = tjs.RuntimeConfig()
    assert (config.code_cache_bytes, config.code_cache_entries) == (1024 * 1024, 256)
    assert "code_cache_bytes" in repr(config)
    with pytest.raises(ValueError, match="code_cache_bytes must be a non-negative integer"):
        tjs.RuntimeConfig(code_cache_bytes=-1)
    with pytest.raises(ValueError, match="code_cache_entries must be a non-negative integer"):
        tjs.RuntimeConfig(code_cache_entries=-1)
    with pytest.raises(TypeError):
        tjs.RuntimeConfig(code_cache_entries="many")  # type: ignore[arg-type]


def test_module_level_eval_uses_the_cache(tjs: ModuleType) -> None:
    out: list[Any] = []

    def run() -> None:  # a fresh thread: its own default runtime
        for _ in range(3):
            out.append(tjs.eval("6*7"))
        stats = tjs.get_default_runtime().get_stats()
        out.append((stats.code_cache_hits, stats.code_cache_misses))
        tjs.close_default_runtime()

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive()
    assert out == [42, 42, 42, (1, 2)]


def test_tagged_templates_are_compiled_each_time(tjs: ModuleType) -> None:
    with tjs.Runtime() as rt:
        rt.eval(
            "var ws = new WeakSet();"
            "function tag(s) { const had = ws.has(s); ws.add(s); return had }"
        )
        # A fresh compile makes a new strings array for `tag\`x\``; a shared one would repeat.
        assert [rt.eval("tag`x`") for _ in range(3)] == [False, False, False]
        assert rt.get_stats().code_cache_hits == 0


def test_one_off_sources_stay_out_of_the_cache(tjs: ModuleType) -> None:
    with tjs.Runtime() as rt:
        assert [rt.eval(f"{i} + 1") for i in range(300)] == [i + 1 for i in range(300)]
        stats = rt.get_stats()
        assert stats.code_cache_misses == 300
        assert (stats.code_cache_entries, stats.code_cache_evictions) == (0, 0)
