"""The embedded server: `tether.serve()` starts the Rust server in-process."""

from __future__ import annotations

import asyncio
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any

from . import _native
from ._native import ConfigError
from .websocket import WebSocketHandler, starter

if TYPE_CHECKING:
    from typing_extensions import Self

_INT_OPTIONS = (
    "max_clients",
    "max_message_length",
    "max_rooms",
    "queue_capacity",
    "websocket_max_connections",
    "websocket_incoming_bytes",
    "websocket_outgoing_bytes",
)
_PATH_OPTIONS = ("config", "tls_cert", "tls_key", "data")
_LIST_OPTIONS = ("allowed_origins", "allowed_hosts")
_OPTIONS = (*_INT_OPTIONS, *_PATH_OPTIONS, "shutdown_grace", "bus", *_LIST_OPTIONS)


class Server:
    """A running embedded server.

    Close it with `close()`, `await aclose()`, or use it as a (sync or async) context manager.
    Closing tells every client the server is going away and waits for the drain.
    Python WebSocket endpoints are added with `websocket()`, even while it runs.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeServer) -> None:
        self._native = native

    @property
    def http_addr(self) -> str:
        """The bound HTTP address, `IP:PORT` (the real port when 0 was asked for)."""
        return self._native.http_addr

    @property
    def tcp_addr(self) -> str:
        """The bound rooms TCP address, `IP:PORT`."""
        return self._native.tcp_addr

    @property
    def relay_addr(self) -> str | None:
        """The UI relay's `IP:PORT`, or `None` when it is off (or its default port was taken)."""
        return self._native.relay_addr

    @property
    def url(self) -> str:
        """`http://IP:PORT` of the HTTP listener."""
        return f"http://{self.http_addr}"

    @property
    def running(self) -> bool:
        """True until the server has stopped."""
        return self._native.running

    def close(self, timeout: float | None = None) -> None:
        """Stops the server and waits (at most `timeout` seconds, if given) for its drain."""
        self._native.stop()
        self._native.wait(timeout)

    async def aclose(self) -> None:
        """Stops the server and awaits its drain without blocking the event loop."""
        self._native.stop()
        await self._native.wait_async()

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops; `False` if `timeout` seconds passed first."""
        return self._native.wait(timeout)

    def websocket(
        self,
        path: str,
        handler: WebSocketHandler,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        max_message_bytes: int | None = None,
        incoming_bytes: int | None = None,
        outgoing_bytes: int | None = None,
        max_connections: int | None = None,
    ) -> None:
        """Serves WebSocket connections to `path` with `handler`, over the Rust server.

        `handler` is `async def handler(ws: tether.WebSocket) -> None` (Starlette's WebSocket
        API); each connection runs it as a task on `loop`, by default the loop running now.
        When it returns the socket closes with 1000; when it raises, the error is logged on the
        `tether.websocket` logger and the socket closes with 1011. On server shutdown the
        client gets 1001 and a pending `receive()` returns `websocket.disconnect`. A client's
        close frame is answered at once; a client that breaks the protocol gets 1002 (1007 for
        text that is not UTF-8) and its connection is dropped.

        Limits (`None` takes the server's, see `tether.serve`):

        - `max_message_bytes`: largest message (default 1 MiB); a bigger one closes with 1009.
        - `incoming_bytes`: bytes of received frames the handler has not read yet (default
          4 MiB, and at least one message of `max_message_bytes`); a client that sends more
          than that ahead of the handler is closed with 1008.
        - `outgoing_bytes`: bytes of sent frames the client has not taken yet (default 4 MiB);
          `send_*` waits for room, and a frame bigger than the whole budget raises ValueError.
          Each queued frame counts 64 bytes on top of its payload, in both directions.
        - `max_connections`: open connections to this path (default: no cap of its own, only
          the server's); one more is closed with 1013 before the handler runs.

        Raises `ConfigError` when there is no loop, when `path` does not start with `/` or is
        a built-in route or page of the server, when `path` is already registered, and for
        limits that are not positive integers or cannot work together.
        """
        if not isinstance(path, str):
            raise ConfigError(f"a WebSocket path must be a string, got {path!r}")
        if not callable(handler):
            raise ConfigError(
                f"handler must be an async function taking a tether.WebSocket, got {handler!r}"
            )
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise ConfigError(
                    f"server.websocket({path!r}, ...) needs an asyncio event loop to run the "
                    "handler on: call it from async code running on that loop, or pass loop="
                ) from None
        if loop.is_closed():
            raise ConfigError(f"the event loop given for {path!r} is closed")
        limits = {
            "max_message_bytes": max_message_bytes,
            "incoming_bytes": incoming_bytes,
            "outgoing_bytes": outgoing_bytes,
            "max_connections": max_connections,
        }
        for name, value in limits.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        self._native.add_websocket(path, starter(handler, loop, self.http_addr), loop, **limits)

    def remove_websocket(self, path: str) -> bool:
        """Stops serving `path`: later connections get 404, open ones go on. Returns False if
        no handler was registered there."""
        return self._native.remove_websocket(path)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        relay = f" relay={self.relay_addr}" if self.relay_addr else ""
        return f"<tether.Server http={self.http_addr} tcp={self.tcp_addr}{relay} {state}>"


def _check(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid: http, tcp, {', '.join(_OPTIONS)}"
        )
    out: dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name in _INT_OPTIONS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an integer, got {value!r}")
        elif name in _PATH_OPTIONS:
            if not isinstance(value, (str, os.PathLike)):
                raise ConfigError(f"{name} must be a path, got {value!r}")
            value = os.fspath(value)
        elif name in _LIST_OPTIONS:
            value = _str_list(name, value)
        elif name == "bus":
            if not isinstance(value, str):
                raise ConfigError(
                    f"bus must be a redis://HOST:PORT/DB string, got {type(value).__name__}"
                )
        elif name == "shutdown_grace":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"shutdown_grace must be a number of seconds, got {value!r}")
            value = float(value)
        out[name] = value
    return out


def _str_list(name: str, value: object) -> list[str]:
    """A list of strings, or one comma-separated string (as `TETHER_ALLOWED_ORIGINS`)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ConfigError(
        f"{name} must be a list of strings or a comma-separated string, got {value!r}"
    )


def _addr(name: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        host, port = value
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    raise ConfigError(f"{name} must be an 'IP:PORT' string or a (host, port) tuple, got {value!r}")


def serve(
    http: str | None = None,
    tcp: str | None = None,
    *,
    relay: str | tuple[str, int] | bool | None = None,
    **options: Any,
) -> Server:
    """Starts the tether server in this process and returns once it listens.

    `http` (default `127.0.0.1:8700`) and `tcp` (default `127.0.0.1:10010`) are `IP:PORT`
    strings; port 0 picks a free port (read the result from `.http_addr` / `.tcp_addr`).
    `relay` is the UI relay's address (default `localhost:5163`: 127.0.0.1 and [::1], skipped with
    a warning when that port is taken), `"off"` or `False` for none; read it back from `.relay_addr`.
    Other options are the `tether serve` flags with `_` for `-`: `config`, `max_clients`,
    `max_message_length`, `max_rooms`, `queue_capacity`, `tls_cert`, `tls_key`,
    `shutdown_grace`, `data` (a directory: rooms and their history kept in SQLite across
    restarts), `bus` (`redis://HOST:PORT/DB`: one node of a cluster through Redis),
    `allowed_origins` and `allowed_hosts` (a list of strings or one comma-separated string); and
    the defaults of the Python WebSocket endpoints
    (`Server.websocket`): `websocket_max_connections` (open connections to all of them together,
    default 1024; one more is closed with 1013 before its handler runs), `websocket_incoming_bytes`
    and `websocket_outgoing_bytes` (each connection's queue budget per direction, default 4 MiB).

    WebSocket upgrades (built-in doors, the relay and `server.websocket()` endpoints) from a web
    page are admitted only from the same origin or from `allowed_origins` (default: pages on
    `localhost`, `127.0.0.1` and `[::1]`, any port); clients that send no `Origin` (Python,
    command-line tools) always are. A loopback listener answers only loopback `Host` names plus
    `allowed_hosts`. See docs/protocol/common.md.

    Raises `ConfigError` for a bad option and `ServerError` when a listener cannot bind.
    """
    relay_arg = "off" if relay is False else None if relay is True else _addr("relay", relay)
    native = _native.serve(
        _addr("http", http), _addr("tcp", tcp), relay=relay_arg, **_check(options)
    )
    return Server(native)
