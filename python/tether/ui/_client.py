"""The connection to the relay: an asyncio loop in a daemon thread, an outbox, reconnects.

One `_Client` per run. Public calls (component methods, `clear_all`, ...) serialize their frame in
the caller's thread and append it to the outbox under a lock; the I/O loop writes the outbox to
the relay once a UI is online. States:

    IDLE -> CONNECTING -> WAITING_UI -> ACTIVE -> (connection lost) -> CONNECTING -> ...
                                                       any state -> CLOSING -> CLOSED

The first activation sends `global/clearAll` before the queued frames (a new run starts from an
empty UI, as with sidekick-py 0.0.7); a reconnect does not: the relay's replay log restores the
UI, and the outbox then delivers whatever was queued while the connection was down.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import ipaddress
import json
import logging
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import urlparse

from ._callbacks import Callbacks
from ._frames import _CLEAR_ALL, _announce, dumps
from ._settings import (
    DEFAULT_URL,
    URL_ENV,
    _settings,
    resolve_url,
)
from .exceptions import (
    SidekickConnectionError,
    SidekickConnectionRefusedError,
    SidekickDisconnectedError,
    SidekickError,
    SidekickQueueFullError,
    SidekickTimeoutError,
)

logger = logging.getLogger("tether.ui")

# WebSocket parameters of sidekick-py 0.0.7 (websockets 13.1 client).
_OPEN_TIMEOUT = 5.0
_PING_INTERVAL = 20.0
_PING_TIMEOUT = 10.0
_CLOSE_TIMEOUT = 1.0
_BACKOFF_FIRST = 0.2
_BACKOFF_MAX = 5.0
# A connection that stayed up this long (or reached a UI) resets the backoff and the window.
_STABLE_SECONDS = 2.0
# At shutdown, queued frames get this long to reach the relay before the offline announce.
_FLUSH_TIMEOUT = 5.0
# Close codes that mean "the relay refuses what we send": retrying would repeat the refusal.
_FATAL_CLOSE_CODES = {1003: "unsupported data", 1008: "policy violation", 1009: "message too big"}

T = TypeVar("T")


# --- the client -------------------------------------------------------------------------------


class _State(Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    WAITING_UI = "waiting for a UI"
    ACTIVE = "active"
    CLOSING = "closing"
    CLOSED = "closed"


class _Stopped(Exception):
    pass


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _set_future_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Client:
    """One connection lifetime (until `shutdown()` or until it is gone for good)."""

    def __init__(self) -> None:
        self.peer_id = f"hero-py-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._state = _State.IDLE
        self._error: SidekickError | None = None
        self._activated = False
        self._cleared = False  # the first activation's clearAll went out
        self._outbox: collections.deque[str] = collections.deque()
        self._outbox_bytes = 0
        self._room_waiters = 0
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._global_handler: Callable[[dict[str, Any]], Any] | None = None
        self._ui_peers: set[str] = set()
        self._url: str | None = None
        self.undelivered = (0, 0)  # (frames, bytes) left in the outbox when it closed
        # Loop-side objects, created by the I/O thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        # asyncio.Event binds to a loop on first use (Python >= 3.10): the I/O loop's.
        self._activate_ev = asyncio.Event()
        self._stop_ev = asyncio.Event()
        self._wake_ev = asyncio.Event()
        self._close_exc: BaseException | None = None
        self._ui_online: asyncio.Event | None = None
        self._callbacks = Callbacks(self)

    # -- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state.value

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    @property
    def error(self) -> SidekickError | None:
        """Why the connection is gone for good (`None` after a plain `shutdown()`)."""
        return self._error

    def _set_state_locked(self, state: _State) -> None:
        if self._state is state:
            return
        logger.debug("state %s -> %s", self._state.value, state.value)
        self._state = state
        self._notify_locked()

    def _set_state(self, state: _State, only_from: tuple[_State, ...] | None = None) -> None:
        with self._lock:
            if only_from is None or self._state in only_from:
                self._set_state_locked(state)

    def _notify_locked(self) -> None:
        self._cond.notify_all()
        waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_set_future_done, fut)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass

    def _closed_error_locked(self) -> SidekickError:
        if self._error is not None:
            return self._error
        return SidekickDisconnectedError("tether.ui is shut down.", reason="shutdown() was called")

    def _on_loop_thread(self) -> bool:
        return self._thread_id is not None and threading.get_ident() == self._thread_id

    def _active_or_raise_locked(self) -> bool:
        if self._state is _State.ACTIVE:
            return True
        if self._state in (_State.CLOSING, _State.CLOSED):
            raise self._closed_error_locked()
        return False

    def _closed_or_false_locked(self) -> bool:
        return self._state is _State.CLOSED

    def _wait_sync(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)  # short waits keep Ctrl+C responsive everywhere
        return True

    async def _wait_async(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._lock:
                if predicate():
                    return True
                fut: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, fut))
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(fut, remaining)
            except asyncio.TimeoutError:
                return False

    def wait_active(self, timeout: float | None) -> None:
        if self._on_loop_thread():
            raise RuntimeError("wait_for_connection() cannot block tether.ui's own I/O thread")
        self.activate()
        if not self._wait_sync(self._active_or_raise_locked, timeout):
            raise self._timeout_error(timeout)

    async def wait_active_async(self, timeout: float | None) -> None:
        self.activate()
        if not await self._wait_async(self._active_or_raise_locked, timeout):
            raise self._timeout_error(timeout)

    def _timeout_error(self, timeout: float | None) -> SidekickTimeoutError:
        where = self._where()
        if self._state is _State.WAITING_UI:
            why = f"connected to the relay at {where}, but no UI came online"
        else:
            why = f"not connected to the relay at {where} ({self._state.value})"
        return SidekickTimeoutError(
            f"Timed out after {timeout:g} s waiting for a Sidekick UI: {why}.",
            timeout_seconds=timeout,
        )

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._wait_sync(self._closed_or_false_locked, timeout)

    async def wait_closed_async(self, timeout: float | None = None) -> bool:
        return await self._wait_async(self._closed_or_false_locked, timeout)

    # -- the I/O thread --------------------------------------------------------------------------

    def ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is not None:
                return self._loop
            if self._state in (_State.CLOSING, _State.CLOSED):
                raise self._closed_error_locked()
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=self._thread_main, args=(loop, ready), name="tether-ui-io", daemon=True
            )
            self._loop = loop
            self._thread = thread
            thread.start()
        ready.wait()
        return loop

    def _thread_main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        self._thread_id = threading.get_ident()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(ready))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            ready.set()
            loop.close()

    async def _main(self, ready: threading.Event) -> None:
        ready.set()
        try:
            go = asyncio.ensure_future(self._activate_ev.wait())
            stop = asyncio.ensure_future(self._stop_ev.wait())
            await asyncio.wait({go, stop}, return_when=asyncio.FIRST_COMPLETED)
            go.cancel()
            stop.cancel()
            # Stopped before this thread even got to connect: one attempt still delivers what
            # was queued (a short script whose shutdown() or exit came first).
            if self._activated and (not self._stop_ev.is_set() or self._outbox):
                await self._connect_loop()
        except Exception as exc:  # a bug of ours: surface it instead of hanging
            logger.exception("tether.ui I/O loop failed")
            with self._lock:
                if self._error is None:
                    self._error = SidekickConnectionError("tether.ui I/O loop failed", exc)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        with self._lock:
            if self._state is not _State.CLOSED:
                self._set_state_locked(_State.CLOSING)
        try:
            await self._callbacks.close()
            with self._lock:
                frames, size = len(self._outbox), self._outbox_bytes
                self.undelivered = (frames, size)
            if frames:
                # Data loss is worth a line on stderr even when logging is not configured.
                text = (
                    f"tether.ui: {frames} frame(s) ({size} bytes) were never delivered: "
                    f"tether.ui closed while not connected to the relay at {self._where()}"
                )
                logger.warning("%s", text)
                print(text, file=sys.stderr)
            if self._error is not None:
                logger.error("tether.ui connection gone for good: %s", self._error)
        finally:
            self._set_state(_State.CLOSED)

    def _where(self) -> str:
        if self._url is not None:
            return self._url
        try:
            return resolve_url()
        except ValueError:
            return "(no valid relay URL)"

    async def _sleep_or_stop(self, delay: float) -> bool:
        try:
            await asyncio.wait_for(self._stop_ev.wait(), delay)
        except asyncio.TimeoutError:
            return False
        return True

    async def _open(self, url: str) -> Any:
        from websockets.asyncio.client import connect

        kwargs: dict[str, Any] = {
            "open_timeout": _OPEN_TIMEOUT,
            "ping_interval": _PING_INTERVAL,
            "ping_timeout": _PING_TIMEOUT,
            "close_timeout": _CLOSE_TIMEOUT,
            "max_size": 16 * 1024 * 1024,
        }
        if _is_loopback(url) and "proxy" in inspect.signature(connect).parameters:
            kwargs["proxy"] = None  # websockets >= 15 would honour $HTTPS_PROXY even for loopback
        opening = asyncio.ensure_future(connect(url, **kwargs))
        stop = asyncio.ensure_future(self._stop_ev.wait())
        try:
            await asyncio.wait({opening, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not opening.done():
            if not self._outbox:
                opening.cancel()
                raise _Stopped
            # Shutting down with frames queued: let this attempt finish (bounded by
            # open_timeout) so that they can still be delivered.
            await asyncio.wait({opening})
        return opening.result()

    def _give_up(self, url: str, exc: BaseException, ever_connected: bool) -> None:
        window = _settings.reconnect_timeout
        if ever_connected:
            error: SidekickError = SidekickDisconnectedError(
                f"Lost the connection to the tether relay at {url} and could not reconnect "
                f"within {window:g} s.",
                reason=f"{type(exc).__name__}: {exc}",
                original_exception=exc,
            )
        else:
            error = SidekickConnectionRefusedError(
                f"Could not connect to the tether relay at {url} within {window:g} s "
                f"(is `tether serve` running? the URL comes from tether.ui.set_url(), "
                f"${URL_ENV}, or defaults to {DEFAULT_URL})",
                url=url,
                original_exception=exc,
            )
        with self._lock:
            if self._error is None:
                self._error = error

    async def _connect_loop(self) -> None:
        attempt = 0
        down_since: float | None = None
        ever_connected = False
        first = True
        while first or not self._stop_ev.is_set():
            first = False
            try:
                url = resolve_url()
            except ValueError as exc:
                with self._lock:
                    self._error = SidekickConnectionError(str(exc), exc)
                return
            self._url = url
            self._set_state(_State.CONNECTING, only_from=(_State.IDLE, _State.CONNECTING))
            try:
                ws = await self._open(url)
            except _Stopped:
                return
            except Exception as exc:
                if self._stop_ev.is_set():
                    logger.debug("connecting to %s failed while stopping: %r", url, exc)
                    return
                now = time.monotonic()
                down_since = now if down_since is None else down_since
                waited = now - down_since
                if waited >= _settings.reconnect_timeout:
                    self._give_up(url, exc, ever_connected)
                    return
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**attempt) * random.uniform(0.8, 1.2)
                delay = max(0.01, min(delay, _settings.reconnect_timeout - waited))
                (logger.warning if attempt == 0 else logger.debug)(
                    "cannot reach the tether relay at %s (%s: %s); retrying in %.2f s",
                    url,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                attempt += 1
                if await self._sleep_or_stop(delay):
                    return
                continue
            ever_connected = True
            started = time.monotonic()
            became_active, reason, fatal = await self._serve(ws)
            if self._stop_ev.is_set():
                return
            if fatal is not None:
                with self._lock:
                    if self._error is None:
                        self._error = fatal
                return
            now = time.monotonic()
            logger.warning("connection to %s lost (%s); reconnecting", url, reason)
            if became_active or now - started >= _STABLE_SECONDS:
                attempt = 0
                down_since = now
            else:  # up and down at once: back off as after a failed attempt
                down_since = started if down_since is None else down_since
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**attempt)
                attempt += 1
                if await self._sleep_or_stop(delay):
                    return

    async def _serve(self, ws: Any) -> tuple[bool, str, SidekickError | None]:
        """Runs one connection; returns (reached a UI, why it ended, fatal error or None)."""
        from websockets.exceptions import ConnectionClosed

        self._close_exc = None
        became_active = False
        ui_online = asyncio.Event()
        self._ui_online = ui_online
        self._ui_peers.clear()
        reader = asyncio.ensure_future(self._reader(ws))
        stop = asyncio.ensure_future(self._stop_ev.wait())
        ui = asyncio.ensure_future(ui_online.wait())
        writer: asyncio.Future[None] | None = None
        try:
            await ws.send(_announce(self.peer_id, "online"))
            self._set_state(_State.WAITING_UI, only_from=(_State.CONNECTING,))
            await asyncio.wait({reader, stop, ui}, return_when=asyncio.FIRST_COMPLETED)
            if ui.done() and not reader.done() and not stop.done():
                if not self._cleared:
                    await ws.send(_CLEAR_ALL)
                    self._cleared = True
                self._set_state(_State.ACTIVE, only_from=(_State.WAITING_UI,))
                became_active = True
                writer = asyncio.ensure_future(self._writer(ws))
                await asyncio.wait({reader, stop, writer}, return_when=asyncio.FIRST_COMPLETED)
            if stop.done() and not reader.done():
                writer = await self._goodbye(ws, writer)
        except ConnectionClosed as exc:
            self._close_exc = self._close_exc or exc
        except asyncio.TimeoutError:
            logger.warning("the relay did not take the offline announce; closing anyway")
        finally:
            for task in (reader, stop, ui, writer):
                if task is not None and not task.done():
                    task.cancel()
            for task in (reader, writer):
                if task is not None:
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
                    except Exception as exc:  # ConnectionClosed from the writer, or a bug
                        self._close_exc = self._close_exc or exc
            self._ui_online = None
            self._set_state(_State.CONNECTING, only_from=(_State.WAITING_UI, _State.ACTIVE))
            with contextlib.suppress(Exception):
                await ws.close()
        return (became_active, *self._describe_close())

    def _describe_close(self) -> tuple[str, SidekickError | None]:
        exc = self._close_exc
        rcvd = getattr(exc, "rcvd", None)
        if rcvd is None:
            return (f"{type(exc).__name__}: {exc}" if exc else "closed", None)
        code, reason = rcvd.code, rcvd.reason
        text = f"closed by the relay with {code} {reason!r}"
        if code in _FATAL_CLOSE_CODES:
            fatal = SidekickDisconnectedError(
                f"The tether relay refused our frames and closed the connection "
                f"({code}, {_FATAL_CLOSE_CODES[code]}).",
                reason=reason or _FATAL_CLOSE_CODES[code],
            )
            return text, fatal
        return text, None

    async def _goodbye(self, ws: Any, writer: asyncio.Future[None] | None) -> Any:
        """On shutdown: flush the outbox, announce offline, close.

        The outbox is flushed even if no UI came online: the relay's replay log keeps it for
        a UI that opens later (a relay without one drops it, as it would have anyway)."""
        if writer is None and self._outbox:
            if not self._cleared:
                await ws.send(_CLEAR_ALL)
                self._cleared = True
            writer = asyncio.ensure_future(self._writer(ws))
        if writer is not None:
            deadline = time.monotonic() + _FLUSH_TIMEOUT
            while self._outbox and not writer.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            writer.cancel()
        # Bounded: a relay that stopped reading must not hold shutdown() forever.
        await asyncio.wait_for(ws.send(_announce(self.peer_id, "offline")), _CLOSE_TIMEOUT + 1)
        await ws.close()
        return writer

    async def _reader(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                raw = await ws.recv()
                if not isinstance(raw, str):
                    logger.warning("ignored a binary frame from the relay (%d bytes)", len(raw))
                    continue
                await self._incoming(raw)
        except ConnectionClosed as exc:
            self._close_exc = exc

    async def _incoming(self, raw: str) -> None:
        try:
            message = json.loads(raw)  # Python's json tolerates NaN, as the relay does
        except ValueError:
            logger.error("ignored a frame that is not JSON: %.200s", raw)
            return
        if not isinstance(message, dict):
            return
        global_handler = self._global_handler
        if global_handler is not None:
            await self._callbacks.slot()
            self._callbacks.submit(global_handler, (message,), serial=True)
        kind = message.get("type")
        if message.get("component") == "system" and kind == "announce":
            payload = message.get("payload")
            if isinstance(payload, dict) and payload.get("role") == "sidekick":
                peer = str(payload.get("peerId"))
                if payload.get("status") == "online":
                    self._ui_peers.add(peer)
                    if self._ui_online is not None:
                        self._ui_online.set()
                elif payload.get("status") == "offline":
                    self._ui_peers.discard(peer)
        elif kind in ("event", "error"):
            with self._lock:
                handler = self._handlers.get(message.get("src"))  # type: ignore[arg-type]
            if handler is not None:
                await self._callbacks.slot()
                try:
                    handler(message)
                except Exception:
                    logger.exception("error while handling %s for %r", kind, message.get("src"))

    async def _writer(self, ws: Any) -> None:
        outbox, lock = self._outbox, self._lock
        while True:
            with lock:
                frame = outbox[0] if outbox else None
                if frame is None:
                    self._wake_ev.clear()
            if frame is None:
                await self._wake_ev.wait()
                continue
            await ws.send(frame)
            with lock:
                outbox.popleft()  # only the writer pops: the head is still `frame`
                self._outbox_bytes -= len(frame)
                if self._room_waiters:
                    self._cond.notify_all()

    # -- public operations (any thread) ---------------------------------------------------------

    def activate(self) -> None:
        loop = self.ensure_loop()
        with self._lock:
            if self._activated or self._state in (_State.CLOSING, _State.CLOSED):
                return
            self._activated = True
            self._set_state_locked(_State.CONNECTING)
        loop.call_soon_threadsafe(self._activate_ev.set)

    def send(self, message: dict[str, Any]) -> None:
        """Queues one protocol message; raises instead of dropping anything."""
        frame = dumps(message)
        if not self._activated:
            self.activate()
        size = len(frame)  # json.dumps escapes non-ASCII: characters are bytes
        if size > _settings.max_frame_bytes:
            raise SidekickError(
                f"A {message.get('component')}/{message.get('type')} frame of {size} bytes "
                f"exceeds the relay's frame limit of {_settings.max_frame_bytes} bytes "
                "(tether.ui.configure(max_frame_bytes=...)); it was not sent"
            )
        with self._lock:
            while True:
                if self._state in (_State.CLOSING, _State.CLOSED):
                    raise self._closed_error_locked()
                limit = _settings.max_queue_bytes
                if self._outbox_bytes + size <= limit:
                    break
                if self._state is _State.ACTIVE and size <= limit and not self._on_loop_thread():
                    self._room_waiters += 1  # connected: wait for the writer (backpressure)
                    try:
                        self._cond.wait(0.25)
                    finally:
                        self._room_waiters -= 1
                    continue
                raise SidekickQueueFullError(
                    f"tether.ui outbox is full: {self._outbox_bytes} bytes are waiting "
                    f"({self._state.value}) and this {size}-byte frame would exceed the "
                    f"{limit}-byte bound (tether.ui.configure(max_queue_bytes=...)); "
                    f"nothing was dropped, this frame was not queued",
                    limit=limit,
                    queued_bytes=self._outbox_bytes,
                    frame_bytes=size,
                )
            self._outbox.append(frame)
            self._outbox_bytes += size
            wake = self._state is _State.ACTIVE and len(self._outbox) == 1
        if wake:
            self._call_soon(self._wake_ev.set)

    def _call_soon(self, func: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # the loop is closed
            pass

    def register_handler(self, instance_id: str, handler: Callable[[dict[str, Any]], None]) -> None:
        with self._lock:
            if instance_id in self._handlers:
                logger.warning(
                    "instance_id %r is already in use; the newer component gets its events",
                    instance_id,
                )
            self._handlers[instance_id] = handler

    def unregister_handler(self, instance_id: str) -> None:
        with self._lock:
            self._handlers.pop(instance_id, None)

    def set_global_handler(self, handler: Callable[[dict[str, Any]], Any] | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError("Global handler must be callable.")
        self._global_handler = handler

    def shutdown(self, wait: bool = False, timeout: float | None = None) -> None:
        with self._lock:
            if self._state is _State.CLOSED:
                return
            if self._loop is None:
                self._set_state_locked(_State.CLOSED)
                return
            self._set_state_locked(_State.CLOSING)
        self._call_soon(self._stop_ev.set)
        thread = self._thread
        if wait and thread is not None and not self._on_loop_thread():
            thread.join(timeout)

    # -- callbacks and tasks (`_callbacks.py`) ---------------------------------------------------

    def run_callback(self, callback: Callable[..., Any], *args: Any) -> None:
        """Runs a user callback: `async def` as a task on the I/O loop, a plain `def` in a
        worker thread, so that a blocking callback never stalls the I/O."""
        self._callbacks.run(callback, *args)

    def create_task(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        return self._callbacks.create_task(coro)

    async def interval(self, callback: Callable[[], Any], seconds: float) -> None:
        await self._callbacks.interval(callback, seconds)

    # -- at exit -------------------------------------------------------------------------------

    def close_at_exit(self, timeout: float = _FLUSH_TIMEOUT + 2.0) -> None:
        """At interpreter exit: deliver what is still queued (to the relay's replay log if no UI
        is online), announce offline, close. What cannot be delivered is reported on stderr."""
        if self._state is _State.CLOSED or self._loop is None:
            return
        if self._outbox and self._state is _State.CONNECTING:
            self._wait_sync(lambda: self._state is not _State.CONNECTING, 2.0)
        self.shutdown(wait=True, timeout=timeout)


# --- the process-wide client ------------------------------------------------------------------

_client_lock = threading.Lock()
_client: _Client | None = None


def get_client() -> _Client:
    """The current client; a new one if there is none yet or the last one is closed."""
    global _client
    with _client_lock:
        if _client is None or _client.closed:
            _client = _Client()
        return _client


def current_client() -> _Client | None:
    return _client


def client_to_wait_on() -> _Client:
    """The client to wait on: the current one's error if it is gone for good, else as
    `get_client()` (a new client after a plain `shutdown()`)."""
    client = current_client()
    if client is not None and client.closed and client.error is not None:
        raise client.error
    return get_client()


def _at_exit() -> None:
    client = _client
    if client is not None:
        # The interpreter is exiting: nothing else can be done about a failure here.
        with contextlib.suppress(Exception):
            client.close_at_exit()
