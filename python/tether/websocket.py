"""`tether.WebSocket`: a Python WebSocket endpoint's connection, served by the Rust server.

```python
async def notes(ws: tether.WebSocket) -> None:
    await ws.accept()
    async for text in ws.iter_text():
        await ws.send_text(text.upper())

server.websocket("/ws/notes", notes)
```

The object duck-types Starlette's `WebSocket`, so handlers written for Starlette/FastAPI run
unchanged: the same states, ASGI messages, `receive_*` / `send_*` / `iter_*` helpers, and a
`WebSocketDisconnect` that is a subclass of Starlette's when Starlette is installed.

One difference: the native side completes the handshake before the handler runs, so
`accept()` only records that the handler accepted (its `subprotocol` and `headers` are not
sent), and calling it is optional: the first `receive_*` / `send_*` accepts implicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from http.cookies import SimpleCookie
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from ._native import NativeWebSocket

    _DisconnectBase = Exception
else:
    try:  # code that catches Starlette's class catches ours too
        from starlette.websockets import WebSocketDisconnect as _DisconnectBase
    except ImportError:  # pragma: no cover - depends on the environment
        _DisconnectBase = Exception

__all__ = [
    "URL",
    "Address",
    "Headers",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketHandler",
    "WebSocketState",
]

_log = logging.getLogger("tether.websocket")

Message = dict[str, Any]


class WebSocketState(enum.Enum):
    """Where each side of a connection stands; Starlette's members and values."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2
    RESPONSE = 3


class WebSocketDisconnect(_DisconnectBase):
    """The connection ended: `code` is the close code (the peer's, or the one sent), `reason`
    its reason. A subclass of `starlette.websockets.WebSocketDisconnect` when Starlette is
    installed, so existing `except` clauses keep working."""

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        Exception.__init__(self, code, reason or "")
        self.code = code
        self.reason = reason or ""

    def __repr__(self) -> str:
        return f"WebSocketDisconnect(code={self.code!r}, reason={self.reason!r})"


class Address(NamedTuple):
    """A peer or server address, like Starlette's `Address`."""

    host: str
    port: int


class URL(str):
    """The connection's URL, e.g. `ws://127.0.0.1:8700/ws/notes?x=1`: a `str` with the parts
    Starlette's `URL` offers most (`scheme`, `netloc`, `hostname`, `port`, `path`, `query`)."""

    __slots__ = ()

    @property
    def scheme(self) -> str:
        """`ws` or `wss`."""
        return urlsplit(self).scheme

    @property
    def netloc(self) -> str:
        """`host:port` as the client asked for it."""
        return urlsplit(self).netloc

    @property
    def hostname(self) -> str | None:
        """The host, without the port."""
        return urlsplit(self).hostname

    @property
    def port(self) -> int | None:
        """The port, if the URL names one."""
        return urlsplit(self).port

    @property
    def path(self) -> str:
        """The path, percent-decoded."""
        return unquote(urlsplit(self).path)

    @property
    def query(self) -> str:
        """The raw query string, without `?`."""
        return urlsplit(self).query


class Headers(Mapping[str, str]):
    """Request headers: a read-only mapping with case-insensitive keys (the first value of a
    repeated header), plus `getlist()` and `raw` like Starlette's `Headers`."""

    __slots__ = ("_list",)

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._list = [(k.lower(), v) for k, v in pairs]

    def __getitem__(self, key: str) -> str:
        key = key.lower()
        for k, v in self._list:
            if k == key:
                return v
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(k == key.lower() for k, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._list))

    def __len__(self) -> int:
        return len(dict.fromkeys(k for k, _ in self._list))

    def getlist(self, key: str) -> list[str]:
        """Every value of `key`, in order."""
        key = key.lower()
        return [v for k, v in self._list if k == key]

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The ASGI form: `(name, value)` byte pairs."""
        return [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in self._list]

    def __repr__(self) -> str:
        return f"Headers({self._list!r})"


WebSocketHandler = Callable[["WebSocket"], Awaitable[None]]
"""What `Server.websocket()` takes: `async def handler(ws: tether.WebSocket) -> None`."""


class WebSocket:
    """One WebSocket connection to a Python endpoint, Starlette's `WebSocket` API on tether.

    `receive()` returns ASGI messages: `{"type": "websocket.connect"}` once if called before
    `accept()` (as Starlette does), then `{"type": "websocket.receive", "text": str}` or
    `{..., "bytes": bytes}`, and finally `{"type": "websocket.disconnect", "code": int,
    "reason": str}`; receiving after that raises `WebSocketDisconnect`. `send_*` wait while the
    outgoing queue's byte budget is spent (the client is slow) and raise `WebSocketDisconnect`
    once the connection has ended, `ValueError` for a frame bigger than the whole budget.
    A handler that falls behind its client by more than the incoming budget gets a
    `websocket.disconnect` with 1008 (the client is closed with it); see `Server.websocket`.
    """

    def __init__(self, native: NativeWebSocket, server: str | None = None) -> None:
        self._native = native
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING
        self.headers = Headers(native.headers)
        client = native.client
        self.client: Address | None = Address(*client) if client is not None else None
        self.server: Address | None = _split_addr(server)
        host = self.headers.get("host") or server or "localhost"
        query = native.query
        self.url = URL(f"{native.scheme}://{host}{native.path}" + (f"?{query}" if query else ""))
        self.query_params: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        self.path_params: dict[str, Any] = {}
        self.state = SimpleNamespace()

    # -- what the connection is ------------------------------------------------------------

    @property
    def path(self) -> str:
        """The request path, percent-decoded."""
        return unquote(self._native.path)

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the handshake carried."""
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.getlist("cookie"):
            with contextlib.suppress(Exception):
                jar.load(header)
        return {k: m.value for k, m in jar.items()}

    @property
    def scope(self) -> dict[str, Any]:
        """An ASGI-style scope of the handshake, for code that reads `websocket.scope`."""
        protocols = ",".join(self.headers.getlist("sec-websocket-protocol"))
        return {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "scheme": self.url.scheme,
            "path": self.path,
            "raw_path": self._native.path.encode("latin-1", "replace"),
            "root_path": "",
            "query_string": self._native.query.encode("latin-1", "replace"),
            "headers": self.headers.raw,
            "client": tuple(self.client) if self.client else None,
            "server": tuple(self.server) if self.server else None,
            "subprotocols": [p.strip() for p in protocols.split(",") if p.strip()],
            "path_params": self.path_params,
            "state": {},
            "extensions": {},
        }

    # -- Starlette's state machine ----------------------------------------------------------

    async def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Marks the connection accepted. The handshake was already completed before the
        handler ran, so `subprotocol` and `headers` are accepted for compatibility and not sent."""
        if self.client_state == WebSocketState.CONNECTING:
            await self.receive()
        if self.application_state == WebSocketState.CONNECTING:
            self.application_state = WebSocketState.CONNECTED
        elif self.application_state == WebSocketState.DISCONNECTED:
            raise RuntimeError('Cannot call "accept" once a close message has been sent.')

    async def receive(self) -> Message:
        """The next ASGI message (see the class docstring)."""
        if self.client_state == WebSocketState.CONNECTING:
            self.client_state = WebSocketState.CONNECTED
            return {"type": "websocket.connect"}
        if self.client_state == WebSocketState.DISCONNECTED:
            raise WebSocketDisconnect(*self._end())
        message: Message = await self._native.receive()
        if message["type"] == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
        return message

    async def send(self, message: Message) -> None:
        """Sends an ASGI message: `websocket.accept`, `websocket.send` or `websocket.close`."""
        kind = message.get("type")
        if kind == "websocket.accept":
            await self.accept(message.get("subprotocol"), message.get("headers"))
        elif kind == "websocket.send":
            if message.get("bytes") is not None:
                await self.send_bytes(message["bytes"])
            elif message.get("text") is not None:
                await self.send_text(message["text"])
            else:
                raise RuntimeError('A "websocket.send" message needs "text" or "bytes".')
        elif kind == "websocket.close":
            await self.close(message.get("code", 1000), message.get("reason"))
        else:
            raise RuntimeError(
                'Expected ASGI message "websocket.accept", "websocket.send" or '
                f'"websocket.close", but got {kind!r}'
            )

    # -- receiving --------------------------------------------------------------------------

    async def _receive_data(self) -> Message:
        if self.application_state == WebSocketState.CONNECTING:
            await self.accept()
        message = await self.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message["code"], message.get("reason"))
        return message

    async def receive_text(self) -> str:
        """The next text frame; raises `WebSocketDisconnect` when the connection ends."""
        message = await self._receive_data()
        if "text" not in message:
            raise TypeError("expected a text frame, got a binary one")
        text: str = message["text"]
        return text

    async def receive_bytes(self) -> bytes:
        """The next binary frame; raises `WebSocketDisconnect` when the connection ends."""
        message = await self._receive_data()
        if "bytes" not in message:
            raise TypeError("expected a binary frame, got a text one")
        data: bytes = message["bytes"]
        return data

    async def receive_json(self, mode: str = "text") -> Any:
        """The next frame parsed as JSON: a text frame (`mode="text"`) or UTF-8 bytes
        (`mode="binary"`)."""
        if mode not in {"text", "binary"}:
            raise RuntimeError('The "mode" argument should be "text" or "binary".')
        if mode == "text":
            return json.loads(await self.receive_text())
        return json.loads((await self.receive_bytes()).decode("utf-8"))

    async def iter_text(self) -> AsyncIterator[str]:
        """Text frames until the connection ends."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                yield await self.receive_text()

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary frames until the connection ends."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                yield await self.receive_bytes()

    async def iter_json(self) -> AsyncIterator[Any]:
        """JSON text frames until the connection ends."""
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                yield await self.receive_json()

    # -- sending ----------------------------------------------------------------------------

    async def _ready_to_send(self) -> None:
        if self.application_state == WebSocketState.CONNECTING:
            await self.accept()
        if self.application_state == WebSocketState.DISCONNECTED:
            raise RuntimeError('Cannot call "send" once a close message has been sent.')

    def _sent(self, ok: bool) -> None:
        if not ok:
            self.application_state = WebSocketState.DISCONNECTED
            raise WebSocketDisconnect(*self._end())

    async def send_text(self, data: str) -> None:
        """Sends a text frame; waits while the outgoing byte budget is spent. Raises
        `ValueError` if the frame alone is bigger than that budget."""
        await self._ready_to_send()
        self._sent(await self._native.send_text(data))

    async def send_bytes(self, data: bytes) -> None:
        """Sends a binary frame; waits while the outgoing byte budget is spent. Raises
        `ValueError` if the frame alone is bigger than that budget."""
        await self._ready_to_send()
        self._sent(await self._native.send_bytes(data))

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """Sends `data` as compact JSON (Starlette's encoding), as text or UTF-8 bytes."""
        if mode not in {"text", "binary"}:
            raise RuntimeError('The "mode" argument should be "text" or "binary".')
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if mode == "text":
            await self.send_text(text)
        else:
            await self.send_bytes(text.encode("utf-8"))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Closes the connection after the frames already sent; a no-op once it has ended."""
        self._native.close(code, reason or "")
        self.application_state = WebSocketState.DISCONNECTED

    # -- internals --------------------------------------------------------------------------

    def _end(self) -> tuple[int, str]:
        return self._native.closed or (1006, "")

    def _finish(self, code: int, reason: str) -> None:
        """Closes (if still open) once the handler is done; never raises."""
        with contextlib.suppress(Exception):
            self._native.close(code, reason)
        self.application_state = WebSocketState.DISCONNECTED

    def __repr__(self) -> str:
        return (
            f"<tether.WebSocket {self.url} client={self.client_state.name} "
            f"app={self.application_state.name}>"
        )


def _split_addr(addr: str | None) -> Address | None:
    if not addr:
        return None
    host, _, port = addr.rpartition(":")
    try:
        return Address(host.strip("[]"), int(port))
    except ValueError:
        return None


# Handler tasks, referenced until they finish (asyncio keeps only weak references to tasks).
_tasks: set[asyncio.Task[None]] = set()


def starter(
    handler: WebSocketHandler, loop: asyncio.AbstractEventLoop, server: str
) -> Callable[[NativeWebSocket], None]:
    """The callback the native side schedules on `loop` for each new connection: it wraps the
    connection and starts `handler` on it as a task."""

    def start(native: NativeWebSocket) -> None:
        ws = WebSocket(native, server)
        try:
            task = loop.create_task(_run(handler, ws))
        except Exception:  # the loop is closing: do not leave the peer hanging
            ws._finish(1011, "cannot start the handler")
            raise
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    return start


async def _run(handler: WebSocketHandler, ws: WebSocket) -> None:
    """Runs `handler`, then closes: 1000 when it returns, 1011 (logged) when it raises."""
    code, reason = 1000, ""
    try:
        result = handler(ws)
        if inspect.isawaitable(result):
            await result
    except WebSocketDisconnect:
        pass  # the connection ended under the handler: nothing left to close
    except Exception:
        _log.exception("WebSocket handler for %s raised", ws.path)
        code, reason = 1011, "internal error"
    except BaseException:  # cancelled (e.g. the loop is shutting down): the handler goes away
        code, reason = 1001, "handler cancelled"
        raise
    finally:
        ws._finish(code, reason)
