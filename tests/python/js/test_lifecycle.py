"""close, context manager, terminate, heap limit, stats, RuntimeConfig, snapshots, inspector."""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

import pytest

from .conftest import is_tether, run_guarded

CLOSED = "Runtime has been closed"


def test_close_is_idempotent(js: ModuleType) -> None:
    rt = js.Runtime()
    assert rt.is_closed() is False
    rt.close()
    rt.close()
    assert rt.is_closed() is True


async def test_use_after_close(js: ModuleType) -> None:
    rt = js.Runtime()
    rt.close()
    with pytest.raises(RuntimeError, match=CLOSED):
        rt.eval("1")
    with pytest.raises(RuntimeError, match=CLOSED):
        await rt.eval_async("1")
    with pytest.raises(RuntimeError, match=CLOSED):
        rt.bind_function("f", lambda: 1)
    with pytest.raises(RuntimeError, match=CLOSED):
        rt.bind_object("o", {})
    with pytest.raises(RuntimeError, match=CLOSED):
        rt.get_stats()


def test_context_manager(js: ModuleType) -> None:
    with js.Runtime() as rt:
        assert rt.eval("1 + 1") == 2
    assert rt.is_closed()
    with pytest.raises(RuntimeError, match=CLOSED):
        rt.eval("1")


def test_context_manager_closes_on_error(js: ModuleType) -> None:
    with pytest.raises(KeyError), js.Runtime() as rt:
        raise KeyError("x")
    assert rt.is_closed()


def test_runtime_rejects_wrong_config_type(js: ModuleType) -> None:
    with pytest.raises(TypeError):
        js.Runtime({"timeout": 1})


# --- terminate ---------------------------------------------------------------------------------


def test_terminate_idle(js: ModuleType) -> None:
    rt = js.Runtime()
    rt.terminate()
    rt.terminate()  # idempotent
    with pytest.raises(js.RuntimeTerminated, match="host request"):
        rt.eval("1")
    assert isinstance(js.RuntimeTerminated("x"), RuntimeError)
    rt.close()


async def test_terminate_during_eval_async(js: ModuleType) -> None:
    rt = js.Runtime()
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, rt.terminate)
    with pytest.raises(js.RuntimeTerminated) as info:
        await rt.eval_async("while (true) {}")
    assert "host request" in str(info.value) or "terminated" in str(info.value).lower()
    with pytest.raises(js.RuntimeTerminated, match="host request"):
        await rt.eval_async("1")
    rt.terminate()
    rt.close()


async def test_concurrent_terminate_calls(js: ModuleType) -> None:
    rt = js.Runtime()
    loop = asyncio.get_running_loop()
    for delay in (0.1, 0.1, 0.15):
        loop.call_later(delay, rt.terminate)
    with pytest.raises(js.RuntimeTerminated):
        await rt.eval_async("while (true) {}")
    rt.close()


@pytest.mark.tether_only(
    "jsrun 0.3.0: Runtime is unsendable; terminate() from another thread panics"
)
def test_terminate_from_another_thread(js: ModuleType) -> None:
    import threading
    import time

    rt = js.Runtime()
    timer = threading.Timer(0.2, rt.terminate)
    timer.start()
    start = time.monotonic()
    done, result = run_guarded(lambda: rt.eval("while (true) {}"), 10)
    assert done, "terminate() did not stop while(true){}"
    assert isinstance(result, js.RuntimeTerminated), result
    assert "host request" in str(result)
    assert time.monotonic() - start < 5
    with pytest.raises(js.RuntimeTerminated, match="host request"):
        rt.eval("1")
    rt.terminate()
    rt.close()


# --- heap limit --------------------------------------------------------------------------------


def test_heap_limit(js: ModuleType, make_rt: Any) -> None:
    rt = make_rt(max_heap_size=16 * 1024 * 1024)
    assert rt.eval("1 + 1") == 2
    with pytest.raises(js.RuntimeTerminated, match="(?i)heap limit"):
        rt.eval(
            "const keep = []; while (true) { keep.push(new Array(100000).fill(Math.random())) }"
        )
    with pytest.raises(RuntimeError):
        rt.eval("1")


def test_initial_heap_requires_max(js: ModuleType) -> None:
    with pytest.raises(RuntimeError) as info:
        js.Runtime(js.RuntimeConfig(initial_heap_size=8 * 1024 * 1024))
    assert "Failed to spawn runtime" in str(info.value)
    assert "initial_heap_size requires max_heap_size" in str(info.value)


def test_initial_heap_cannot_exceed_max(js: ModuleType) -> None:
    config = js.RuntimeConfig(max_heap_size=16 * 1024 * 1024, initial_heap_size=32 * 1024 * 1024)
    with pytest.raises(RuntimeError) as info:
        js.Runtime(config)
    assert "Failed to spawn runtime" in str(info.value)
    assert "cannot exceed" in str(info.value)


# --- stats -------------------------------------------------------------------------------------


async def test_stats_counters(rt: Any) -> None:
    stats = rt.get_stats()
    assert stats.last_execution_kind is None
    assert stats.eval_sync_count == 0
    rt.eval("1")
    rt.eval("2")
    stats = rt.get_stats()
    assert stats.eval_sync_count == 2
    assert stats.last_execution_kind == "eval_sync"
    await rt.eval_async("3")
    stats = rt.get_stats()
    assert stats.eval_async_count == 1
    assert stats.last_execution_kind == "eval_async"
    rt.add_static_module("m1", "export const a = 1")
    rt.eval_module("m1")
    stats = rt.get_stats()
    assert stats.eval_module_sync_count == 1
    assert stats.last_execution_kind == "eval_module_sync"


async def test_stats_module_async_kind(rt: Any) -> None:
    rt.add_static_module("m2", "export const a = 1")
    await rt.eval_module_async("m2")
    stats = rt.get_stats()
    assert stats.eval_module_async_count == 1
    assert stats.last_execution_kind == "eval_module_async"


def test_stats_fields(js: ModuleType, rt: Any) -> None:
    rt.eval("globalThis.big = new Array(10000).fill('x').join('')")
    stats = rt.get_stats()
    assert isinstance(stats, js.RuntimeStats)
    for name in [
        "heap_total_bytes",
        "heap_used_bytes",
        "external_memory_bytes",
        "physical_total_bytes",
        "total_execution_time_ms",
        "last_execution_time_ms",
        "active_async_ops",
        "open_resources",
        "active_timers",
        "active_intervals",
        "active_js_streams",
        "active_py_streams",
        "total_js_streams",
        "total_py_streams",
        "bytes_streamed_js_to_py",
        "bytes_streamed_py_to_js",
    ]:
        value = getattr(stats, name)
        assert isinstance(value, int) and value >= 0, name
    assert stats.heap_used_bytes > 0
    assert stats.heap_total_bytes >= stats.heap_used_bytes or is_tether(js)
    assert "RuntimeStats" in repr(stats)
    with pytest.raises(AttributeError):
        stats.eval_sync_count = 5


def test_stats_execution_time(rt: Any) -> None:
    rt.eval("const t = Date.now(); while (Date.now() - t < 50) {}")
    stats = rt.get_stats()
    assert stats.last_execution_time_ms >= 40
    assert stats.total_execution_time_ms >= stats.last_execution_time_ms


# --- RuntimeConfig -----------------------------------------------------------------------------


def test_config_defaults_and_setters(js: ModuleType) -> None:
    config = js.RuntimeConfig()
    assert config.max_heap_size is None
    assert config.initial_heap_size is None
    assert config.bootstrap is None
    assert config.timeout is None
    assert config.enable_console is False
    assert config.inspector is None
    assert config.max_serialization_depth == 100
    assert config.max_serialization_bytes == 10 * 1024 * 1024
    config.max_heap_size = 64 * 1024 * 1024
    config.bootstrap = "globalThis.x = 1"
    config.timeout = 2
    config.max_serialization_depth = 10
    config.max_serialization_bytes = 1000
    assert config.max_heap_size == 64 * 1024 * 1024
    assert config.bootstrap == "globalThis.x = 1"
    assert config.timeout == 2.0 and isinstance(config.timeout, float)
    assert config.max_serialization_depth == 10
    assert config.max_serialization_bytes == 1000
    assert "RuntimeConfig" in repr(config)


@pytest.mark.parametrize("field", ["max_serialization_depth", "max_serialization_bytes"])
def test_config_serialization_limits_positive(js: ModuleType, field: str) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        js.RuntimeConfig(**{field: 0})
    config = js.RuntimeConfig()
    with pytest.raises(ValueError, match="positive integer"):
        setattr(config, field, 0)


def test_bootstrap_runs_first(make_rt: Any) -> None:
    rt = make_rt(bootstrap="globalThis.greet = (n) => 'hi ' + n")
    assert rt.eval("greet('x')") == "hi x"


def test_bootstrap_error(js: ModuleType) -> None:
    """jsrun 0.3.0 raises JavaScriptError, tether.js RuntimeError; both name the failure."""
    with pytest.raises((RuntimeError, js.JavaScriptError)) as info:
        js.Runtime(js.RuntimeConfig(bootstrap="throw new Error('boot failed')")).close()
    assert "Failed to spawn runtime" in str(info.value)
    assert "boot failed" in str(info.value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_heap_size": "x"},
        {"bootstrap": 5},
        {"enable_console": "yes"},
        {"inspector": 5},
        {"snapshot": "not bytes"},
    ],
    ids=["heap-str", "bootstrap-int", "console-str", "inspector-int", "snapshot-str"],
)
def test_config_type_errors(js: ModuleType, kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        js.RuntimeConfig(**kwargs)


@pytest.mark.parametrize("field", ["max_heap_size", "max_serialization_depth"])
def test_config_negative_sizes(js: ModuleType, field: str) -> None:
    with pytest.raises((OverflowError, ValueError)):
        js.RuntimeConfig(**{field: -1})


# --- snapshots ---------------------------------------------------------------------------------


def test_snapshot_round_trip(js: ModuleType, make_rt: Any) -> None:
    builder = js.SnapshotBuilder()
    builder.execute_script("lib", "globalThis.lib = { double: (x) => x * 2 }; var counter = 41")
    blob = builder.build()
    assert isinstance(blob, bytes) and len(blob) > 0
    with pytest.raises(RuntimeError, match="Snapshot already built"):
        builder.build()
    rt = make_rt(snapshot=blob)
    assert rt.eval("lib.double(21)") == 42
    assert rt.eval("++counter") == 42
    rt2 = make_rt(snapshot=blob)
    assert rt2.eval("counter") == 41  # each runtime starts from the snapshot


def test_snapshot_builder_bootstrap(js: ModuleType, make_rt: Any) -> None:
    builder = js.SnapshotBuilder(bootstrap="globalThis.base = 10")
    builder.execute_script("more", "globalThis.more = base + 1")
    rt = make_rt(snapshot=builder.build())
    assert rt.eval("[base, more]") == [10, 11]


def test_snapshot_rejects_imports(js: ModuleType) -> None:
    builder = js.SnapshotBuilder()
    with pytest.raises((RuntimeError, js.JavaScriptError)):
        builder.execute_script("mod", "import x from 'y'")


def test_snapshot_and_bootstrap_conflict(js: ModuleType) -> None:
    builder = js.SnapshotBuilder()
    builder.execute_script("a", "globalThis.a = 1")
    blob = builder.build()
    with pytest.raises(ValueError, match="snapshot and bootstrap cannot be used together"):
        js.RuntimeConfig(snapshot=blob, bootstrap="1")


def test_garbage_snapshot(js: ModuleType) -> None:
    if not is_tether(js):
        pytest.skip("jsrun 0.3.0: garbage snapshot bytes panic the runtime thread (V8 abort risk)")
    with pytest.raises(RuntimeError, match="Failed to spawn runtime"):
        js.Runtime(js.RuntimeConfig(snapshot=b"not a snapshot at all"))


# --- inspector ---------------------------------------------------------------------------------


def test_inspector_config_accepted(js: ModuleType) -> None:
    inspector = js.InspectorConfig("127.0.0.1", 9333, display_name="dbg")
    assert inspector.host == "127.0.0.1"
    assert inspector.port == 9333
    assert inspector.endpoint() == "127.0.0.1:9333"
    assert inspector.wait_for_connection is False
    assert inspector.break_on_next_statement is False
    assert inspector.display_name == "dbg"
    inspector.target_url = "app://x"
    assert inspector.target_url == "app://x"
    config = js.RuntimeConfig(inspector=inspector)
    assert config.inspector is not None and config.inspector.port == 9333


def test_inspector_endpoints_off(rt: Any) -> None:
    assert rt.inspector_endpoints() is None


def test_inspector_on_tether(tjs: ModuleType) -> None:
    """QuickJS has no debugger protocol: a configured inspector is accepted and ignored;
    inspector_endpoints() is None with a RuntimeWarning that says so (docs/js.md)."""
    config = tjs.RuntimeConfig(inspector=tjs.InspectorConfig("127.0.0.1", 9334))
    rt = tjs.Runtime(config)
    try:
        with pytest.warns(RuntimeWarning, match="no inspector"):
            assert rt.inspector_endpoints() is None
        assert rt.eval("1 + 1") == 2
    finally:
        rt.close()
