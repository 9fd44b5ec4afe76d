"""tether.js: JavaScript runtimes for Python, with jsrun 0.3.0's API, on QuickJS.

```python
from tether import js

with js.Runtime() as rt:
    rt.bind_function("add", lambda a, b: a + b)
    print(rt.eval("add(1, 2)"))  # 3
```

Each `Runtime` owns one thread that blocks while idle (no CPU use). Sync calls wait with the
GIL released; async calls (`eval_async`, `JsFunction.call_async`, `eval_module_async`) return
asyncio awaitables. Differences from jsrun, on purpose: the engine is QuickJS-NG (no `Intl`,
`Temporal`, `WebAssembly` or inspector), a sync `JsFunction` call that reaches back into Python
does not deadlock, the runtime stays usable after a pending-promise timeout, no internals are
reachable from JS, Python ints beyond ±2**53 become BigInt, a host callback may call back
into JS (a `JsFunction` it was given, or `rt.eval`) inline, and a `Runtime` garbage-collected
without `close()` is terminated (jsrun keeps it running until the program exits). `JsStream`
also has `aclose()`.

`InspectorConfig` is accepted but QuickJS has no debugger protocol: `inspector_endpoints()`
returns None (with a RuntimeWarning when an inspector was configured).

Module-level `eval`, `eval_async`, `bind_function` and `bind_object` use a default runtime kept
per asyncio Task (or per thread outside asyncio); `close_default_runtime()` closes it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import threading
import warnings
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, TypeVar, overload

from .._native import js as _js

JavaScriptError = _js.JavaScriptError
RuntimeTerminated = _js.RuntimeTerminated
JsFunction = _js.JsFunction
JsUndefined = _js.JsUndefined
SnapshotBuilder = _js.SnapshotBuilder
undefined = _js.undefined

JavaScriptError.__module__ = __name__
RuntimeTerminated.__module__ = __name__

F = TypeVar("F", bound=Callable[..., Any])

_MIB = 1024 * 1024


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _unsigned(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    if value < 0:
        raise OverflowError("can't convert negative int to unsigned")
    return value


def _typed(name: str, value: Any, kind: type | tuple[type, ...], expected: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"argument '{name}': '{type(value).__name__}' object is not {expected}")
    return value


class InspectorConfig:
    """Chrome DevTools settings (accepted for compatibility: QuickJS has no inspector)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9229,
        wait_for_connection: bool = False,
        break_on_next_statement: bool = False,
        target_url: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.wait_for_connection = wait_for_connection
        self.break_on_next_statement = break_on_next_statement
        self.target_url = target_url
        self.display_name = display_name

    def endpoint(self) -> str:
        """`host:port`."""
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return (
            f'InspectorConfig(host="{self.host}", port={self.port}, '
            f"wait_for_connection={str(self.wait_for_connection).lower()}, "
            f"break_on_next_statement={str(self.break_on_next_statement).lower()}, "
            f"target_url={self.target_url!r}, display_name={self.display_name!r})"
        )


class InspectorEndpoints:
    """Where a DevTools frontend would connect (never produced: QuickJS has no inspector)."""

    def __init__(self, **fields: str) -> None:
        for name in (
            "id",
            "websocket_url",
            "devtools_frontend_url",
            "title",
            "description",
            "target_url",
            "favicon_url",
            "host",
        ):
            setattr(self, name, fields.get(name, ""))


class RuntimeConfig:
    """Settings for a `Runtime`: heap limit, default timeout, bootstrap or snapshot, console,
    and the JS → Python conversion limits."""

    def __init__(
        self,
        max_heap_size: int | None = None,
        initial_heap_size: int | None = None,
        bootstrap: str | None = None,
        timeout: float | timedelta | None = None,
        enable_console: bool = False,
        inspector: InspectorConfig | None = None,
        snapshot: bytes | None = None,
        max_serialization_depth: int | None = None,
        max_serialization_bytes: int | None = None,
    ) -> None:
        if snapshot is not None and bootstrap is not None:
            raise ValueError("snapshot and bootstrap cannot be used together")
        self.max_heap_size = max_heap_size
        self.initial_heap_size = initial_heap_size
        self.bootstrap = bootstrap
        self.timeout = timeout  # type: ignore[assignment]
        if not isinstance(enable_console, bool):
            raise TypeError(
                f"argument 'enable_console': '{type(enable_console).__name__}' object cannot be "
                "converted to 'PyBool'"
            )
        self._enable_console = enable_console
        self.inspector = inspector
        self.snapshot = snapshot
        self.max_serialization_depth = max_serialization_depth  # type: ignore[assignment]
        self.max_serialization_bytes = max_serialization_bytes  # type: ignore[assignment]

    @property
    def max_heap_size(self) -> int | None:
        """Heap limit in bytes; reaching it terminates the runtime."""
        return self._max_heap_size

    @max_heap_size.setter
    def max_heap_size(self, value: int | None) -> None:
        self._max_heap_size = _unsigned(value)

    @property
    def initial_heap_size(self) -> int | None:
        """Heap size before the first garbage collection (needs `max_heap_size`)."""
        return self._initial_heap_size

    @initial_heap_size.setter
    def initial_heap_size(self, value: int | None) -> None:
        self._initial_heap_size = _unsigned(value)

    @property
    def bootstrap(self) -> str | None:
        """A classic script run when the runtime starts."""
        return self._bootstrap

    @bootstrap.setter
    def bootstrap(self, value: str | None) -> None:
        self._bootstrap = _typed("bootstrap", value, str, "a str")

    @property
    def inspector(self) -> InspectorConfig | None:
        """Accepted for compatibility (QuickJS has no inspector)."""
        return self._inspector

    @inspector.setter
    def inspector(self, value: InspectorConfig | None) -> None:
        self._inspector = _typed("inspector", value, InspectorConfig, "an InspectorConfig")

    @property
    def snapshot(self) -> bytes | None:
        """Bytes from `SnapshotBuilder.build()`, replayed when the runtime starts."""
        return self._snapshot

    @snapshot.setter
    def snapshot(self, value: bytes | None) -> None:
        self._snapshot = _typed("snapshot", value, (bytes, bytearray), "bytes")

    @property
    def timeout(self) -> float | None:
        """Default time limit in seconds for every evaluation."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | timedelta | None) -> None:
        self._timeout = _js._parse_timeout(value)

    @property
    def enable_console(self) -> bool:
        """Whether `console.*` prints (read-only after construction)."""
        return self._enable_console

    @property
    def max_serialization_depth(self) -> int:
        """Deepest nesting converted between JS and Python (default 100)."""
        return self._max_serialization_depth

    @max_serialization_depth.setter
    def max_serialization_depth(self, value: int | None) -> None:
        self._max_serialization_depth = _positive("max_serialization_depth", value, 100)

    @property
    def max_serialization_bytes(self) -> int:
        """Largest value converted between JS and Python, in bytes (default 10 MiB)."""
        return self._max_serialization_bytes

    @max_serialization_bytes.setter
    def max_serialization_bytes(self, value: int | None) -> None:
        self._max_serialization_bytes = _positive("max_serialization_bytes", value, 10 * _MIB)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}: {v!r}"
            for k, v in (
                ("max_heap_size", self.max_heap_size),
                ("initial_heap_size", self.initial_heap_size),
                ("execution_timeout", self.timeout),
                ("bootstrap_script", self.bootstrap),
                ("enable_console", self.enable_console),
                ("inspector", self.inspector),
                ("snapshot", None if self.snapshot is None else f"<{len(self.snapshot)} bytes>"),
                ("max_serialization_depth", self.max_serialization_depth),
                ("max_serialization_bytes", self.max_serialization_bytes),
            )
        )
        return f"RuntimeConfig({fields})"


class RuntimeStats:
    """A runtime's counters and heap figures at one moment (read-only)."""

    _FIELDS = (
        "heap_total_bytes",
        "heap_used_bytes",
        "external_memory_bytes",
        "physical_total_bytes",
        "total_execution_time_ms",
        "last_execution_time_ms",
        "last_execution_kind",
        "eval_sync_count",
        "eval_async_count",
        "eval_module_sync_count",
        "eval_module_async_count",
        "call_function_sync_count",
        "call_function_async_count",
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
    )

    def __init__(self, values: Mapping[str, Any]) -> None:
        for name in self._FIELDS:
            object.__setattr__(self, name, values.get(name, 0))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RuntimeStats.{name} is read-only")

    def __repr__(self) -> str:
        shown = (
            "heap_used_bytes",
            "total_execution_time_ms",
            "last_execution_kind",
            "active_async_ops",
            "open_resources",
            "eval_sync_count",
            "call_function_async_count",
            "call_function_sync_count",
            "active_js_streams",
            "active_py_streams",
        )
        return "RuntimeStats(" + ", ".join(f"{k}={getattr(self, k)}" for k in shown) + ")"

    if False:  # pragma: no cover - attribute declarations for type checkers
        heap_total_bytes: int
        heap_used_bytes: int
        external_memory_bytes: int
        physical_total_bytes: int
        total_execution_time_ms: int
        last_execution_time_ms: int
        last_execution_kind: str | None
        eval_sync_count: int
        eval_async_count: int
        eval_module_sync_count: int
        eval_module_async_count: int
        call_function_sync_count: int
        call_function_async_count: int
        active_async_ops: int
        open_resources: int
        active_timers: int
        active_intervals: int
        active_js_streams: int
        active_py_streams: int
        total_js_streams: int
        total_py_streams: int
        bytes_streamed_js_to_py: int
        bytes_streamed_py_to_js: int


_stream_stats: dict[int, dict[str, int]] = {}


def _stream_counters(uid: int) -> dict[str, int]:
    counters = _stream_stats.get(uid)
    if counters is None:
        counters = _stream_stats[uid] = {
            "active_js_streams": 0,
            "active_py_streams": 0,
            "total_js_streams": 0,
            "total_py_streams": 0,
            "bytes_streamed_js_to_py": 0,
            "bytes_streamed_py_to_js": 0,
        }
    return counters


def _chunk_size(chunk: object) -> int:
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return len(chunk)
    if isinstance(chunk, str):
        return len(chunk.encode("utf-8", "surrogatepass"))
    return 0


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class _Done:
    """An awaitable that is already done (what closing a finished stream returns)."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


def _cancel_dropped(cancel: JsFunction, stats: dict[str, int]) -> None:
    """A `JsStream` was garbage-collected before its end: cancel the JS stream, as jsrun does."""
    stats["active_js_streams"] -= 1
    # Fire and forget (a finalizer can neither wait nor raise); a no-op once the runtime is gone.
    with contextlib.suppress(Exception):
        cancel._call_detached()


class JsStream:
    """A JS `ReadableStream` returned to Python: iterate it with `async for`.

    Leaving it before its end cancels the JS stream (the source's `cancel()` runs, with no
    reason, as in jsrun): `close()` or `aclose()` at once, and a stream nobody holds any more
    (after a `break`, say) when it is garbage-collected.
    """

    def __init__(self, read: JsFunction, cancel: JsFunction) -> None:
        self._read = read
        self._cancel = cancel
        self._done = False
        self._released = False
        self._closing: Awaitable[None] | None = None
        self._stats = _stream_counters(read._runtime_uid)
        self._stats["active_js_streams"] += 1
        self._stats["total_js_streams"] += 1
        self._finalizer = weakref.finalize(self, _cancel_dropped, cancel, self._stats)
        self._finalizer.atexit = False

    def __aiter__(self) -> JsStream:
        return self

    async def __anext__(self) -> Any:
        if self._done:
            raise StopAsyncIteration("Stream closed")
        if self._read._runtime_closed:
            raise RuntimeError("Runtime has been shut down")
        try:
            result = await self._read.call_async()
        except BaseException:
            self._finish()
            raise
        if not isinstance(result, dict) or result.get("done"):
            self._finish()
            raise StopAsyncIteration
        value = result.get("value")
        self._stats["bytes_streamed_js_to_py"] += _chunk_size(value)
        return value

    def close(self) -> Awaitable[None]:
        """Cancels the JS stream now; with a running loop, awaiting the result waits for the JS
        `cancel()` to finish. A no-op once the stream ended or its runtime closed."""
        if self._closing is not None:
            return self._closing
        if self._done:
            self._finish()
            return _Done()
        self._done = True
        self._finalizer.detach()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # No running loop (sync code): cancel now, as jsrun's close() does; nothing to await.
            self._cancel._call_detached()
            self._finish()
            return _Done()
        try:
            fut = asyncio.ensure_future(self._cancel.call_async())
        except RuntimeError:  # the runtime is gone, and the stream with it
            self._finish()
            return _Done()
        fut.add_done_callback(_consume)
        fut.add_done_callback(lambda _f: self._finish())
        self._closing = fut
        return fut

    async def aclose(self) -> None:
        """Cancels the JS stream and waits until its `cancel()` has finished (so
        `contextlib.aclosing(stream)` works)."""
        await self.close()

    def __repr__(self) -> str:
        if self._done:
            return "<JsStream (closed)>"
        return f"<JsStream id={self._read._handle}>"

    def _finish(self) -> None:
        if self._released:
            return
        self._released = True
        self._done = True
        self._finalizer.detach()
        self._stats["active_js_streams"] -= 1
        self._read.close()
        self._cancel.close()


_js._set_stream_factory(JsStream)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


_js._set_coroutine_wrapper(_await)


class PyStreamSource:
    """A Python async iterable handed to JS, where it is a `ReadableStream`."""

    def __init__(self, runtime: Runtime, iterable: AsyncIterable[Any]) -> None:
        self._iterator: AsyncIterator[Any] = aiter(iterable)
        self._closed = False
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        stats = _stream_counters(runtime._uid)
        stats["active_py_streams"] += 1
        stats["total_py_streams"] += 1
        self._stats = stats

        async def pull() -> dict[str, Any]:
            if self._closed:
                return {"done": True}
            try:
                value = await anext(self._iterator)
            except StopAsyncIteration:
                self._end()
                return {"done": True}
            except BaseException:
                self._end()
                raise
            stats["bytes_streamed_py_to_js"] += _chunk_size(value)
            return {"done": False, "value": value}

        async def cancel() -> None:
            await self.aclose()

        pull_id = runtime.register_op("__stream_pull", pull, mode="async")
        cancel_id = runtime.register_op("__stream_cancel", cancel, mode="async")
        self._tether_stream_ops = (runtime._uid, pull_id, cancel_id)
        runtime._py_streams.add(self)

    def _end(self) -> None:
        if not self._closed:
            self._closed = True
            self._stats["active_py_streams"] -= 1

    async def aclose(self) -> None:
        """Closes the Python iterator (called when JS cancels the stream)."""
        if self._closed:
            return
        self._end()
        close = getattr(self._iterator, "aclose", None)
        if close is not None:
            await close()

    def close(self) -> None:
        """Stops producing chunks (JS sees the end of the stream)."""
        self._end()

    def _runtime_closed(self) -> None:
        """Closes the Python iterator because its runtime closed (as jsrun does), on the loop
        the source was made on."""
        if self._closed:
            return
        self._end()
        close = getattr(self._iterator, "aclose", None)
        if close is None:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop or running
        if loop is None or loop.is_closed():
            return  # no loop to run it on: the iterator is closed when it is collected
        if loop is running:
            loop.create_task(close()).add_done_callback(_consume)
        else:
            asyncio.run_coroutine_threadsafe(close(), loop)


class Runtime(_js.Runtime):
    """A JavaScript runtime on its own thread (see the module docs)."""

    def __new__(cls, config: RuntimeConfig | None = None) -> Runtime:  # noqa: PYI034
        if config is None:
            config = RuntimeConfig()
        elif not isinstance(config, RuntimeConfig):
            raise TypeError(
                f"argument 'config': '{type(config).__name__}' object cannot be cast as "
                "'RuntimeConfig'"
            )
        self = super().__new__(
            cls,
            max_heap_size=config.max_heap_size,
            initial_heap_size=config.initial_heap_size,
            bootstrap=config.bootstrap,
            timeout=config.timeout,
            enable_console=config.enable_console,
            snapshot=config.snapshot,
            max_serialization_depth=config.max_serialization_depth,
            max_serialization_bytes=config.max_serialization_bytes,
        )
        self._inspector = config.inspector
        self._py_streams: weakref.WeakSet[PyStreamSource] = weakref.WeakSet()
        return self

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        pass

    @overload
    def bind(self, function: F, /) -> F: ...
    @overload
    def bind(self, *, name: str | None = None) -> Callable[[F], F]: ...

    def bind(self, function: Any = None, /, *, name: str | None = None) -> Any:
        """Binds a Python function as a JS global: `rt.bind(fn)`, `@rt.bind`, `@rt.bind()` or
        `@rt.bind(name="x")`; returns the function unchanged."""

        def register(fn: F) -> F:
            if not callable(fn):
                raise TypeError("bind() expects a callable")
            js_name = name or getattr(fn, "__name__", None)
            if not js_name or js_name == "<lambda>":
                raise ValueError("Cannot determine a name for this function; pass name=...")
            self.bind_function(js_name, fn)
            return fn

        if function is None:
            return register
        return register(function)

    def stream_from_async_iterable(self, iterable: AsyncIterable[Any]) -> PyStreamSource:
        """Wraps a Python async iterable; passed into JS it becomes a `ReadableStream`."""
        return PyStreamSource(self, iterable)

    def close(self) -> None:
        """Stops the runtime and releases what Python still holds of it: `JsFunction`s and
        `JsStream`s raise when used, and Python iterables handed to JS are closed. Idempotent."""
        super().close()
        self._release_streams()

    def terminate(self) -> None:
        """Interrupts running JS and closes the runtime; later calls raise `RuntimeTerminated`."""
        super().terminate()
        self._release_streams()

    def _release_streams(self) -> None:
        for source in list(self._py_streams):
            source._runtime_closed()
        self._py_streams.clear()
        _stream_stats.pop(self._uid, None)

    def get_stats(self) -> RuntimeStats:
        """Counters and heap figures."""
        values = dict(self._stats())
        values.update(_stream_stats.get(self._uid, {}))
        return RuntimeStats(values)

    def inspector_endpoints(self) -> InspectorEndpoints | None:
        """Always `None`: the QuickJS engine has no inspector (a configured one is ignored with
        a warning)."""
        if self._inspector is not None:
            warnings.warn(
                "tether.js runs on QuickJS, which has no inspector (Chrome DevTools protocol); "
                "InspectorConfig is ignored",
                RuntimeWarning,
                stacklevel=2,
            )
        return None

    def __enter__(self) -> Runtime:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "open"
        return f"<tether.js.Runtime {state}>"


# -------------------------------------------------------------------------------------------
# The default runtime: one per asyncio Task, or per thread outside asyncio.


class _Slot:
    __slots__ = ("owner", "runtime")

    def __init__(self, owner: object, runtime: Runtime) -> None:
        self.owner = owner
        self.runtime = runtime


_default: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar(
    "tether_js_default_runtime", default=None
)
_all_defaults: list[Runtime] = []
_defaults_lock = threading.Lock()


def _owner() -> object:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.current_thread()


def get_default_runtime() -> Runtime:
    """The calling Task's (or thread's) runtime, created on first use."""
    owner = _owner()
    slot = _default.get()
    if slot is not None and slot.owner is owner and not slot.runtime.is_closed():
        return slot.runtime
    rt = Runtime()
    _default.set(_Slot(owner, rt))
    with _defaults_lock:
        _all_defaults[:] = [r for r in _all_defaults if not r.is_closed()]
        _all_defaults.append(rt)
    if isinstance(owner, asyncio.Task):
        owner.add_done_callback(lambda _t: rt.close())
    return rt


def close_default_runtime() -> None:
    """Closes the calling context's default runtime (RuntimeError from a context that does not
    own it)."""
    slot = _default.get()
    if slot is None:
        return
    if slot.owner is not _owner():
        raise RuntimeError("Default runtime can only be closed from its owner context.")
    slot.runtime.close()
    _default.set(None)


def eval(code: str) -> Any:
    """`get_default_runtime().eval(code)`."""
    return get_default_runtime().eval(code)


def eval_async(code: str, **kwargs: Any) -> Awaitable[Any]:
    """`get_default_runtime().eval_async(code, **kwargs)`."""
    return get_default_runtime().eval_async(code, **kwargs)


def bind_function(name: str, handler: Callable[..., Any]) -> None:
    """`get_default_runtime().bind_function(name, handler)`."""
    get_default_runtime().bind_function(name, handler)


def bind_object(name: str, obj: Mapping[str, Any]) -> None:
    """`get_default_runtime().bind_object(name, obj)`."""
    get_default_runtime().bind_object(name, obj)


@atexit.register
def _close_all() -> None:
    with _defaults_lock:
        runtimes = list(_all_defaults)
        _all_defaults.clear()
    for rt in runtimes:
        rt.close()


__all__ = [
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
]
