"""`Runtime`: the native runtime with the Python helpers (binding decorators, streams from
async iterables, statistics, the inspector stubs), and `PyStreamSource`."""

from __future__ import annotations

import asyncio
import warnings
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, overload

from .._native import js as _js
from ._config import InspectorEndpoints, RuntimeConfig, RuntimeStats
from ._streams import _chunk_size, _consume, _stream_counters, _stream_stats

F = TypeVar("F", bound=Callable[..., Any])


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
            code_cache_bytes=config.code_cache_bytes,
            code_cache_entries=config.code_cache_entries,
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
