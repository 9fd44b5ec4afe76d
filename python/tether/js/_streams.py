"""`JsStream` (a JS `ReadableStream` iterated from Python) and the per-runtime stream counters
that `Runtime.get_stats()` reports."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable
from typing import Any

from .._native import js as _js

JsFunction = _js.JsFunction

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
