"""`Session`: one user's synced objects across reconnects, over one WebSocket at a time.

The receive loop, takeover and error handling follow ws-sync's `Session`, with its bugs fixed:
a handler error or a malformed frame becomes an error toast (the connection stays), and a
taken-over connection's loop never touches the socket that replaced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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


class Session:
    """The server side of one frontend `Session`: a registry of event handlers plus the socket.

    Works with a Starlette/FastAPI `WebSocket` or tether's own (`tether.WebSocket`): anything
    with `accept`, `receive` (ASGI messages), `send_text`, `send_bytes` and `close`.
    """

    def __init__(self, logger: logging.Logger | None = None, *, max_frame_bytes: int = 1 << 20):
        self.ws: Any = None
        self.ws_lock = asyncio.Lock()
        self.event_handlers: dict[str, Callable[..., Any]] = {}
        self.init_handlers: list[Callable[..., Any]] = []
        self.logger = logger or _logger
        self.state: SessionState | None = None
        self.max_frame_bytes = max_frame_bytes
        self._syncs: dict[str, Sync] = {}

    @property
    def is_connected(self) -> bool:
        """Whether a WebSocket is attached (sends are dropped while there is none)."""
        return self.ws is not None

    # ----- registry -----

    def register_event(self, event: str, callback: Callable[..., Any]) -> None:
        """Routes frames of type `event` to `callback(data)`; a second registration replaces."""
        if event in self.event_handlers:
            self.logger.warning("Event %s already has a subscriber; replacing it.", event)
        self.event_handlers[event] = callback

    def deregister_event(self, event: str) -> None:
        """Stops routing `event` (a warning if nothing was registered)."""
        if self.event_handlers.pop(event, None) is None:
            self.logger.warning("Event %s has no subscriber.", event)

    def register_init(self, callback: Callable[..., Any]) -> None:
        """Runs `callback()` on every (re)connection, in registration order."""
        self.init_handlers.append(callback)

    def deregister_init(self, callback: Callable[..., Any]) -> None:
        """Removes an init handler (no error if absent)."""
        with contextlib.suppress(ValueError):
            self.init_handlers.remove(callback)

    # ----- connections -----

    async def new_connection(self, ws: Any) -> None:
        """Attaches `ws`, telling a previous socket it was taken over, then sends the state."""
        async with self.ws_lock:
            old, self.ws = self.ws, ws
            if old is not None and old is not ws:
                self.logger.info("A new connection takes over this session.")
                await self._disconnect_socket(old, DEFAULT_DISCONNECT_MESSAGE)
        if _state_name(ws) == "CONNECTING":
            await ws.accept()
        await self.init()

    async def disconnect(self, message: str = DEFAULT_DISCONNECT_MESSAGE, ws: Any = None) -> None:
        """Sends `_DISCONNECT` (the client stops reconnecting) and closes the socket."""
        target = ws if ws is not None else self.ws
        if target is None:
            return
        if target is self.ws:
            self.ws = None
        await self._disconnect_socket(target, message)

    async def _disconnect_socket(self, ws: Any, message: str) -> None:
        with contextlib.suppress(Exception):
            await ws.send_text(_native.encode_frame("_DISCONNECT", message))
        with contextlib.suppress(Exception):
            await ws.close()

    async def init(self) -> None:
        """Runs the init handlers (each synced object sends its `_SET`)."""
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
            await self.new_connection(ws)
        ws = self.ws
        if ws is None:
            raise SyncError("no WebSocket: pass one to handle_connection(ws) or new_connection(ws)")
        with self:
            if self.state is not None:
                try:
                    await self.state.on_connect()
                except Exception:
                    self.logger.exception("Error in state.on_connect")
            try:
                await self._receive_loop(ws)
            except Exception as e:
                self.logger.info("Connection ended: %s: %s", type(e).__name__, e)
            finally:
                # A newer socket took over: it owns the session now, leave it alone.
                taken_over = self.ws is not None and self.ws is not ws
                if self.ws is ws:
                    self.ws = None
                if not taken_over:
                    with contextlib.suppress(Exception):
                        await ws.close()
                    if self.state is not None:
                        try:
                            await self.state.on_disconnect()
                        except Exception:
                            self.logger.exception("Error in state.on_disconnect")

    async def _receive_loop(self, ws: Any) -> None:
        bin_meta: tuple[str, dict[str, Any]] | None = None
        while True:
            msg = await ws.receive()
            if msg.get("type") == "websocket.disconnect" or self.ws is not ws:
                return
            text, data = msg.get("text"), msg.get("bytes")
            if text is not None:
                if bin_meta is not None:
                    bin_meta = None
                    await self.toast_error("expected a binary frame after _BIN_META")
                frame = await self._parse(text)
                if frame is None:
                    continue
                event, payload = frame
                if event == "_BIN_META":
                    bin_meta = await self._parse_bin_meta(payload)
                    continue
                await self._dispatch(event, payload)
            elif data is not None:
                if bin_meta is None:
                    await self.toast_error("binary frame without a preceding _BIN_META")
                    continue
                if len(data) > self.max_frame_bytes:
                    bin_meta = None
                    await self.toast_error(f"binary frame over {self.max_frame_bytes} bytes")
                    continue
                event, metadata = bin_meta
                bin_meta = None
                await self._dispatch(event, {"data": data, **metadata})

    async def _parse(self, text: str) -> tuple[str, Any] | None:
        if len(text) > self.max_frame_bytes:
            await self.toast_error(f"frame over {self.max_frame_bytes} bytes ignored")
            return None
        try:
            frame = json.loads(text)
        except ValueError as e:
            await self.toast_error(f"malformed frame (not JSON: {e})")
            return None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.toast_error('malformed frame: expected {"type": string, "data": ...}')
            return None
        return frame["type"], frame.get("data")

    async def _parse_bin_meta(self, payload: Any) -> tuple[str, dict[str, Any]] | None:
        if (
            isinstance(payload, dict)
            and isinstance(payload.get("type"), str)
            and isinstance(payload.get("metadata", {}), dict)
        ):
            return payload["type"], dict(payload.get("metadata") or {})
        await self.toast_error('malformed _BIN_META: expected {"type": string, "metadata": {...}}')
        return None

    async def _dispatch(self, event: str, data: Any) -> None:
        handler = self.event_handlers.get(event)
        if handler is None:
            self.logger.warning("Received event %s but no subscriber was found.", event)
            return
        try:
            await nonblock_call(handler, data)
        except Exception as e:
            await self._report(event, e)

    async def _report(self, where: str, e: Exception) -> None:
        """A handler failed: log it, tell the client with an error toast, carry on."""
        if isinstance(e, SyncError):
            self.logger.warning("%s: %s", where, e)
            await self.toast_error(f"{where}: {e}")
        else:
            self.logger.error("%s failed", where, exc_info=e)
            await self.toast_error(f"{where} failed: {type(e).__name__}: {e}")

    # ----- sending -----

    async def send(self, event: str, data: Any) -> None:
        """Sends `{"type": event, "data": data}`; a no-op while disconnected.

        Raises `TypeError`/`ValueError` when `data` is not JSON (NaN included).
        """
        if self.ws is None:
            return
        await self.send_text(_native.encode_frame(event, data))

    async def send_text(self, text: str) -> None:
        """Sends one encoded frame; socket errors are logged (the socket is going away)."""
        ws = self.ws
        if ws is None:
            return
        try:
            await ws.send_text(text)
        except Exception as e:
            self.logger.info("Dropped a frame for a closing socket: %s", e)

    async def send_binary(self, event: str, metadata: dict[str, Any], data: bytes) -> None:
        """Sends `_BIN_META` for `event` then `data` as one binary frame."""
        ws = self.ws
        if ws is None:
            return
        meta = _native.encode_frame("_BIN_META", {"type": event, "metadata": metadata})
        try:
            await ws.send_text(meta)
            await ws.send_bytes(bytes(data))
        except Exception as e:
            self.logger.info("Dropped a binary frame for a closing socket: %s", e)

    async def toast_error(self, message: str) -> None:
        """Sends an error toast (how failures reach the client)."""
        await self.send("_TOAST", {"type": "error", "message": message})

    async def close(self) -> None:
        """Closes every synced object, the socket, and tells `state.on_terminate`."""
        for s in list(self._syncs.values()):
            s.close()
        if self.ws is not None:
            ws, self.ws = self.ws, None
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
