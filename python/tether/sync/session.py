"""`Session`: one user's synced objects across reconnects, over one WebSocket at a time.

The protocol is `tether._native.SyncSession`, the Rust `tether-sync` engine: it parses and
encodes every frame, dispatches `_SET`/`_GET`/`_PATCH`/`_ACTION`/`_TASK_*`/`_BIN_META`, queues
actions one at a time, keeps the task list, handles takeover and the limits. This module feeds it
the socket's frames and runs what it asks for (`RunAction` → the action's handler, `StartTask` →
an asyncio task, `Set`/`Patched` → validate and assign attributes, ...), then reports back.

On tether's embedded server (`tether.serve(...).websocket(...)`) the engine writes its frames
straight into the connection's queue; on Starlette/FastAPI they go through `ws.send_text`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import _native
from .errors import SyncError
from .utils import nonblock_call

if TYPE_CHECKING:
    from typing_extensions import Self

    from .sync import Sync

__all__ = [
    "DEFAULT_DISCONNECT_MESSAGE",
    "Session",
    "SessionState",
    "session_context",
]

session_context: ContextVar[Session] = ContextVar("session_context")
"""The current `Session`: set by `with session:` and inside every handler."""

DEFAULT_DISCONNECT_MESSAGE = (
    "Seems like you're logged in somewhere else. If this is a mistake, please refresh the page."
)

_logger = logging.getLogger("tether.sync.session")

# The tokens of `with session:` blocks, per context, so nesting and concurrent tasks unwind right.
_tokens: ContextVar[tuple[Token[Session], ...]] = ContextVar("tether_sync_tokens", default=())

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class SessionState:
    """User state attached to a `Session` (`session.state = ...`), told about connections."""

    async def on_connect(self) -> None:
        """Called after a WebSocket connected and the initial state was sent."""

    async def on_disconnect(self) -> None:
        """Called after the session's WebSocket went away (not when another one took over)."""

    async def on_terminate(self) -> None:
        """Called by `Session.close()`."""


def _state_name(ws: Any) -> str | None:
    return getattr(getattr(ws, "application_state", None), "name", None)


def _native_socket(ws: Any) -> Any:
    """The `_native.NativeWebSocket` behind a `tether.WebSocket`, else None."""
    native = getattr(ws, "_native", None)
    return native if isinstance(native, _native.NativeWebSocket) else None


class Session:
    """The server side of one frontend `Session`: the engine, custom event handlers, the socket.

    Works with a Starlette/FastAPI `WebSocket` or tether's own (`tether.WebSocket`): anything
    with `accept`, `receive` (ASGI messages), `send_text`, `send_bytes` and `close`.
    """

    def __init__(self, logger: logging.Logger | None = None, *, max_frame_bytes: int = 1 << 20):
        self.ws: Any = None
        self.event_handlers: dict[str, Callable[..., Any]] = {}
        self.init_handlers: list[Callable[..., Any]] = []
        self.logger = logger or _logger
        self.state: SessionState | None = None
        self.max_frame_bytes = max_frame_bytes
        self._syncs: dict[str, Sync] = {}
        from ._types import HAVE_PYDANTIC, walkable_model

        self.engine = _native.SyncSession(
            max_frame_bytes=max_frame_bytes,
            disconnect_message=DEFAULT_DISCONNECT_MESSAGE,
            toast_unknown_events=False,  # ws-sync only logs them
            model_check=walkable_model if HAVE_PYDANTIC else None,
        )
        self._conns: dict[int, Any] = {}  # connection id → socket (Starlette or tether)
        self._next_conn = 1
        self._out_lock = asyncio.Lock()
        self._custom: list[tuple[str, Any]] = []  # custom events for the receive loop
        # The running action's task: the receive loop reads nothing more until it is done
        # (ws-sync's order: a `_GET` after an action is answered after it).
        self.action_task: asyncio.Task[None] | None = None

    @property
    def is_connected(self) -> bool:
        """Whether a WebSocket is attached (sends are dropped while there is none)."""
        return self.engine.is_connected

    # ----- registry -----

    def register_event(self, event: str, callback: Callable[..., Any]) -> None:
        """Routes frames of type `event` to `callback(data)`; a second registration replaces."""
        if event in self.event_handlers:
            self.logger.warning("Event %s already has a subscriber; replacing it.", event)
        self.event_handlers[event] = callback
        self.engine.register_event(event)

    def deregister_event(self, event: str) -> None:
        """Stops routing `event` (a warning if nothing was registered)."""
        if self.event_handlers.pop(event, None) is None:
            self.logger.warning("Event %s has no subscriber.", event)
        self.engine.unregister_event(event)

    def register_init(self, callback: Callable[..., Any]) -> None:
        """Runs `callback()` on every (re)connection, in registration order."""
        self.init_handlers.append(callback)

    def deregister_init(self, callback: Callable[..., Any]) -> None:
        """Removes an init handler (no error if absent)."""
        with contextlib.suppress(ValueError):
            self.init_handlers.remove(callback)

    # ----- connections -----

    async def new_connection(self, ws: Any) -> int:
        """Attaches `ws` (the engine tells a previous socket it was taken over and sends the
        state); returns its connection id."""
        if _state_name(ws) == "CONNECTING":
            await ws.accept()
        conn = self._next_conn
        self._next_conn += 1
        self._conns[conn] = ws
        native = _native_socket(ws)
        if native is not None:
            self.engine.attach(conn, native)
        self.ws = ws
        with self:
            self.engine.handle_connect(conn)
            await self.flush()
            await self.init()
        return conn

    async def disconnect(self, message: str = DEFAULT_DISCONNECT_MESSAGE, ws: Any = None) -> None:
        """Sends `_DISCONNECT` (the client stops reconnecting) and closes the socket."""
        if ws is not None and ws is not self.ws:
            with contextlib.suppress(Exception):
                await ws.send_text(_native.sync_disconnect_frame(message))
            with contextlib.suppress(Exception):
                await ws.close()
            return
        if self.engine.disconnect(message):
            self.ws = None
            await self.flush()

    async def init(self) -> None:
        """Runs the init handlers registered with `register_init`."""
        with self:
            for handler in list(self.init_handlers):
                try:
                    await nonblock_call(handler)
                except Exception as e:
                    await self._report("init", e)

    async def handle_connection(self, ws: Any = None) -> None:
        """Serves the socket until it disconnects; usable directly as a WebSocket endpoint.

        With `ws`, it is attached first (`new_connection`); without, the attached one is used.
        """
        if ws is not None:
            conn = await self.new_connection(ws)
        else:
            ws = self.ws
            conn = self.engine.connection
            if ws is None or conn is None:
                raise SyncError(
                    "no WebSocket: pass one to handle_connection(ws) or new_connection(ws)"
                )
        with self:
            if self.state is not None:
                try:
                    await self.state.on_connect()
                except Exception:
                    self.logger.exception("Error in state.on_connect")
            try:
                await self._receive_loop(conn, ws)
            except Exception as e:
                self.logger.info("Connection ended: %s: %s", type(e).__name__, e)
            finally:
                # A newer socket took over: it owns the session now, leave it alone.
                taken_over = self.engine.connection not in (None, conn)
                ours = self.engine.connection == conn
                self.engine.handle_close(conn)
                self._conns.pop(conn, None)
                if ours:
                    self.ws = None
                with contextlib.suppress(Exception):
                    await self.flush()
                if not taken_over:
                    with contextlib.suppress(Exception):
                        await ws.close()
                    if self.state is not None:
                        try:
                            await self.state.on_disconnect()
                        except Exception:
                            self.logger.exception("Error in state.on_disconnect")

    async def _receive_loop(self, conn: int, ws: Any) -> None:
        engine = self.engine
        while True:
            msg = await ws.receive()
            if msg.get("type") == "websocket.disconnect" or engine.connection != conn:
                return
            text, data = msg.get("text"), msg.get("bytes")
            if text is not None:
                engine.handle_text(conn, text)
            elif data is not None:
                engine.handle_binary(conn, data)
            else:
                continue
            await self.flush()
            while (running := self.action_task) is not None and not running.done():
                await asyncio.wait({running})
            while self._custom:
                event, payload = self._custom.pop(0)
                handler = self.event_handlers.get(event)
                if handler is None:
                    continue
                try:
                    await nonblock_call(handler, payload)
                except Exception as e:
                    await self._report(event, e)
                await self.flush()

    # ----- the engine's outputs -----

    async def flush(self) -> None:
        """Writes what the engine produced and runs its events, until it has nothing left."""
        engine = self.engine
        async with self._out_lock:
            while (item := engine.poll_output()) is not None:
                kind = item[0]
                if kind == "text":
                    await self._write(item[1], "send_text", item[2])
                elif kind == "event":
                    self._on_event(item[1])
                elif kind == "wait":
                    await item[1]
                elif kind == "binary":
                    await self._write(item[1], "send_bytes", item[2])
                elif kind == "close":
                    ws = self._conns.get(item[1])
                    if ws is not None:
                        with contextlib.suppress(Exception):
                            await ws.close(item[2], item[3])
                elif kind == "log":
                    self.logger.log(_LEVELS.get(item[1], logging.INFO), "%s", item[2])

    async def _write(self, conn: int, method: str, data: Any) -> None:
        ws = self._conns.get(conn)
        if ws is None:
            return
        try:
            await getattr(ws, method)(data)
        except Exception as e:
            self.logger.info("Dropped a frame for a closing socket: %s", e)

    def _on_event(self, ev: dict[str, Any]) -> None:
        kind = ev["type"]
        if kind == "custom":
            self._custom.append((ev["event"], ev["data"]))
            return
        if kind in ("connected", "disconnected", "user_session"):
            return
        sync = self._syncs.get(ev.get("key", ""))
        if sync is None:
            self._orphan(ev)
            return
        if kind == "state_wanted":
            sync._send_state()
        elif kind == "set":
            sync._client_set(ev["keys"])
        elif kind == "patched":
            sync._client_patch(ev["keys"])
        elif kind == "run_action":
            sync._run_action(ev)
        elif kind == "start_task":
            sync._start_task(ev)
        elif kind == "cancel_task":
            sync._cancel_task(ev)

    def _orphan(self, ev: dict[str, Any]) -> None:
        """An event for a key whose `Sync` is gone: settle it with the engine."""
        kind = ev["type"]
        with contextlib.suppress(Exception):
            if kind == "run_action":
                self.engine.action_failed(ev["action"], f"{ev['key']!r} is not synced")
            elif kind == "start_task":
                self.engine.task_failed(ev["task"], f"{ev['key']!r} is not synced")
            elif kind == "cancel_task":
                self.engine.task_cancelled(ev["task"])

    async def _report(self, where: str, e: BaseException) -> None:
        """A handler failed: log it, tell the client with an error toast, carry on."""
        if isinstance(e, SyncError):
            self.logger.warning("%s: %s", where, e)
            message = f"{where}: {e}"
        else:
            self.logger.error("%s failed", where, exc_info=e)
            message = f"{where} failed: {type(e).__name__}: {e}"
        self.engine.toast("error", message)
        await self.flush()

    # ----- sending -----

    async def send(self, event: str, data: Any) -> None:
        """Sends `{"type": event, "data": data}`; a no-op while disconnected.

        Raises `TypeError`/`ValueError` when `data` is not JSON (NaN included).
        """
        if self.engine.send_event(event, data):
            await self.flush()

    async def send_binary(self, event: str, metadata: dict[str, Any], data: bytes) -> None:
        """Sends `_BIN_META` for `event` then `data` as one binary frame."""
        if self.engine.send_binary(event, metadata, bytes(data)):
            await self.flush()

    async def toast_error(self, message: str) -> None:
        """Sends an error toast (how failures reach the client)."""
        if self.engine.toast("error", message):
            await self.flush()

    async def close(self) -> None:
        """Closes every synced object, the socket, and tells `state.on_terminate`."""
        for s in list(self._syncs.values()):
            s.close()
        if self.ws is not None:
            ws, self.ws = self.ws, None
            conn = self.engine.connection
            if conn is not None:
                self.engine.handle_close(conn)
                self._conns.pop(conn, None)
            with contextlib.suppress(Exception):
                await self.flush()
            with contextlib.suppress(Exception):
                await ws.close()
        if self.state is not None:
            await self.state.on_terminate()

    # ----- context -----

    def __enter__(self) -> Self:
        _tokens.set((*_tokens.get(), session_context.set(self)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = _tokens.get()
        if stack:
            _tokens.set(stack[:-1])
            with contextlib.suppress(ValueError):
                session_context.reset(stack[-1])
