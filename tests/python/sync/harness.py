"""The harness for the sync suite: one app shape served by three backends, and a protocol client.

Backends:

* ``ws_sync``: ws-sync 0.6.9 (PyPI) in a Starlette app under uvicorn, the reference.
* ``tether``: the same Starlette app with ``tether.sync`` instead of ``ws_sync``, under uvicorn.
* ``tether-embedded``: ``tether.sync`` served by ``tether.serve()`` through ``server.websocket()``,
  no uvicorn.

The app: one endpoint at ``/ws``; ``?s=<sid>`` selects (or creates) one ``Session`` per sid, kept in
a dict. A test supplies ``build(m, session)``, called inside ``with session:`` when the session is
created, where ``m`` is the backend's module (``ws_sync`` or ``tether.sync``); it returns the
object(s) the test wants to reach later through ``app.objects[sid]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterable
from types import ModuleType
from typing import Any

import jsonpatch
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

TIMEOUT = float(os.environ.get("SYNC_TEST_TIMEOUT", "10"))
"""Seconds to wait for a frame, a close or a server-side condition before failing."""

BACKENDS = ("ws_sync", "tether", "tether-embedded")

# Why a test skips ws-sync 0.6.9: the numbered differences of tether.sync (README.md here).
R1_HANDLER_ERROR = (
    "(1) ws-sync 0.6.9 ends the connection on a handler error (fixed in tether: error toast)"
)
R2_MALFORMED = (
    "(2) ws-sync 0.6.9 ends the connection on a malformed frame (fixed in tether: error toast)"
)
R3_SET_KEYS = (
    "(3) ws-sync 0.6.9 _SET does setattr(obj, <frontend key>) without mapping keys back to "
    "attributes (fixed in tether)"
)
R4_PYDANTIC = (
    "(4) ws-sync 0.6.9 has no pydantic validation (tether validates typed attributes/params)"
)
R5_TAKEOVER = (
    "(5) ws-sync 0.6.9 takeover race: the old socket's loop can close the new socket "
    "(fixed in tether)"
)
R6_CANCEL_BEFORE_START = (
    "(6) ws-sync 0.6.9 leaks a task cancelled before it started: every later start is "
    "'already running' (fixed in tether)"
)
R7_HEAD_EXTRAS = (
    "(7) ws-sync 0.6.9 lacks default keys, bare @remote_action/@remote_task and sync_key_scope "
    "(tether has them, as ws-sync HEAD)"
)
R8_UNKNOWN_ACTION = (
    "(8) ws-sync 0.6.9 only warns on an unknown action/task type (tether: error toast)"
)
R9_SYNC_HANDLER = (
    "(9) ws-sync 0.6.9 runs a plain-def action on the event loop and then awaits its None "
    "(tether runs it in a thread)"
)


def load_backend(backend: str) -> ModuleType:
    """The sync module a backend serves: ``ws_sync`` or ``tether.sync``."""
    import importlib

    # Both are installed by the test extras; a missing one is a failure, not a skip.
    return importlib.import_module("ws_sync" if backend == "ws_sync" else "tether.sync")


def submodule(m: ModuleType, name: str) -> ModuleType:
    """``m.<name>`` as a module (``ws_sync.utils``, ``tether.sync.utils``, ...)."""
    import importlib

    return importlib.import_module(f"{m.__name__}.{name}")


Build = Callable[[ModuleType, Any], Any]
Endpoint = Callable[["App", Any], Awaitable[None]]


async def default_endpoint(app: App, ws: Any) -> None:
    """``/ws?s=<sid>``: the Session for that sid handles the connection."""
    sid = ws.query_params.get("s") or "default"
    await app.session_for(sid).handle_connection(ws)


class App:
    """A running app on one backend: sessions per sid, the objects `build` made, the URL."""

    def __init__(self, backend: str, m: ModuleType, build: Build, endpoint: Endpoint | None):
        self.backend = backend
        self.m = m
        self.build = build
        self.endpoint = endpoint or default_endpoint
        self.sessions: dict[str, Any] = {}
        self.objects: dict[str, Any] = {}
        self.errors: list[str] = []
        self.endpoints_done = 0  # endpoint calls that have returned (or raised)
        self.url = ""
        self.loop = asyncio.get_running_loop()
        self.clients: list[Client] = []
        self._events: list[asyncio.Event] = []
        self._thread_events: list[threading.Event] = []
        self._stop: Callable[[], Awaitable[None]] | None = None

    # ----- sessions and objects ----- #
    def session_for(self, sid: str) -> Any:
        """The Session for `sid`, created (and `build` run inside `with session:`) on first use."""
        if sid not in self.sessions:
            session = self.m.Session()
            with session:
                self.objects[sid] = self.build(self.m, session)
            self.sessions[sid] = session
        return self.sessions[sid]

    def obj(self, sid: str = "s1") -> Any:
        """What `build` returned for `sid`."""
        assert sid in self.objects, f"no session {sid!r} was created (have {list(self.objects)})"
        return self.objects[sid]

    # ----- coordination, released at teardown so nothing waits forever ----- #
    def event(self) -> asyncio.Event:
        ev = asyncio.Event()
        self._events.append(ev)
        return ev

    def thread_event(self) -> threading.Event:
        ev = threading.Event()
        self._thread_events.append(ev)
        return ev

    async def until(self, cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        """Waits until `cond()` holds (polled), failing with `what` after `timeout` seconds."""
        deadline = self.loop.time() + timeout
        while not cond():
            if self.loop.time() > deadline:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for: {what}{self.notes()}"
                )
            await asyncio.sleep(0.01)

    async def wait_event(self, ev: asyncio.Event, what: str, timeout: float = TIMEOUT) -> None:
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"timed out after {timeout}s waiting for: {what}{self.notes()}"
            ) from None

    async def wait_disconnected(self, sid: str = "s1") -> None:
        """Waits until the server noticed that `sid`'s socket went away."""
        session = self.sessions[sid]
        await self.until(lambda: not session.is_connected, f"session {sid!r} to be disconnected")

    def notes(self) -> str:
        return (
            f"\n[{self.backend}] endpoint errors:\n" + "\n".join(self.errors) if self.errors else ""
        )

    # ----- clients ----- #
    async def connect(self, sid: str | None = "s1", *, query: str | None = None) -> Client:
        """Opens a client socket to ``/ws?s=<sid>`` (or ``/ws?<query>``)."""
        q = query if query is not None else (f"s={sid}" if sid is not None else "")
        url = f"{self.url}?{q}" if q else self.url
        try:
            ws = await connect(url, open_timeout=TIMEOUT, max_size=None, ping_interval=None)
        except Exception as e:
            raise AssertionError(f"[{self.backend}] cannot connect to {url}: {e!r}{self.notes()}")
        client = Client(self, ws, sid)
        self.clients.append(client)
        if sid is not None and query is None and self.endpoint is default_endpoint:
            # the handshake may complete before the endpoint runs: make `app.obj(sid)` usable
            await self.until(
                lambda: sid in self.sessions, f"the endpoint to create session {sid!r}"
            )
        return client

    async def _run_endpoint(self, ws: Any) -> None:
        try:
            assert asyncio.get_running_loop() is self.loop, (
                "the websocket endpoint runs on another event loop than the test"
            )
            await self.endpoint(self, ws)
        except Exception:
            self.errors.append(traceback.format_exc())
            raise
        finally:
            self.endpoints_done += 1

    async def aclose(self) -> None:
        for client in self.clients:
            await client.close()
        for ev in self._events:
            ev.set()
        for tev in self._thread_events:
            tev.set()
        if self._stop is not None:
            await self._stop()


async def start_app(backend: str, build: Build, endpoint: Endpoint | None = None) -> App:
    m = load_backend(backend)
    app = App(backend, m, build, endpoint)
    if backend == "tether-embedded":
        await _serve_embedded(app)
    else:
        await _serve_uvicorn(app)
    return app


async def _serve_uvicorn(app: App) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    async def ws_endpoint(websocket: Any) -> None:
        await app._run_endpoint(websocket)

    asgi = Starlette(routes=[WebSocketRoute("/ws", ws_endpoint)])
    config = uvicorn.Config(
        asgi,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws_ping_interval=None,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = app.loop.time() + 10
    while not server.started:
        if task.done():
            task.result()
            raise AssertionError("uvicorn stopped before it started")
        if app.loop.time() > deadline:
            raise AssertionError("uvicorn did not start within 10s")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    app.url = f"ws://127.0.0.1:{port}/ws"

    async def stop() -> None:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)

    app._stop = stop


async def _serve_embedded(app: App) -> None:
    import tether

    server = tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="off", shutdown_grace=1)
    server.websocket("/ws", app._run_endpoint)
    app.url = f"ws://{server.http_addr}/ws"

    async def stop() -> None:
        await server.aclose()

    app._stop = stop


def frame_type(frame: Any) -> str:
    if isinstance(frame, bytes):
        return f"<binary {len(frame)} bytes>"
    return str(frame.get("type")) if isinstance(frame, dict) else f"<{frame!r}>"


class Client:
    """A protocol client over a real socket.

    Every received text frame is parsed and applied to `state`: ``_SET:KEY`` replaces
    ``state[KEY]``, ``_PATCH:KEY`` applies the JSON Patch to a copy. `frames` logs everything.
    """

    def __init__(self, app: App, ws: ClientConnection, sid: str | None):
        self.app = app
        self.ws = ws
        self.sid = sid
        self.state: dict[str, Any] = {}
        self.frames: list[Any] = []
        self.toasts: list[dict[str, Any]] = []

    def _context(self) -> str:
        last = ", ".join(frame_type(f) for f in self.frames[-8:])
        return f"\n[{self.app.backend}] last frames: [{last}]{self.app.notes()}"

    # ----- receiving ----- #
    async def recv(self, what: str = "a frame", timeout: float = TIMEOUT) -> Any:
        """The next frame: a parsed JSON value for text, `bytes` for binary."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"no frame within {timeout}s while waiting for {what}{self._context()}"
            ) from None
        except ConnectionClosed as e:
            raise AssertionError(
                f"connection closed ({e.rcvd.code if e.rcvd else 'no close frame'}) while "
                f"waiting for {what}{self._context()}"
            ) from None
        if isinstance(raw, bytes):
            self.frames.append(raw)
            return raw
        frame = json.loads(raw)
        self.frames.append(frame)
        self._track(frame)
        return frame

    def _track(self, frame: Any) -> None:
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if not isinstance(kind, str):
            return
        if kind.startswith("_SET:"):
            self.state[kind[5:]] = copy.deepcopy(frame["data"])
        elif kind.startswith("_PATCH:"):
            key = kind[7:]
            assert key in self.state, f"_PATCH:{key} before any _SET:{key}{self._context()}"
            self.state[key] = jsonpatch.apply_patch(self.state[key], frame["data"])
        elif kind == "_TOAST":
            self.toasts.append(frame["data"])

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> Any:
        """The next frame must be of type `kind`; returns its data."""
        frame = await self.recv(f"{kind!r}", timeout)
        assert isinstance(frame, dict) and frame.get("type") == kind, (
            f"expected {kind!r} next, got {frame!r}{self._context()}"
        )
        return frame.get("data")

    async def expect_frames(self, kinds: Iterable[str]) -> dict[str, Any]:
        """The next frames are exactly `kinds`, in any order; returns {type: data}."""
        want = sorted(kinds)
        got: dict[str, Any] = {}
        for _ in want:
            frame = await self.recv(f"one of {want}")
            assert isinstance(frame, dict), f"expected one of {want}, got {frame!r}"
            got[frame.get("type")] = frame.get("data")
        assert sorted(got) == want, f"expected frames {want}, got {sorted(got)}{self._context()}"
        return got

    async def wait_for(
        self, kind: str, pred: Callable[[Any], bool] | None = None, timeout: float = TIMEOUT
    ) -> Any:
        """Skips (but tracks) frames until one of type `kind` (and `pred(data)`); returns data."""
        deadline = self.app.loop.time() + timeout
        while True:
            left = deadline - self.app.loop.time()
            frame = await self.recv(f"{kind!r}", max(left, 0.001))
            if (
                isinstance(frame, dict)
                and frame.get("type") == kind
                and (pred is None or pred(frame.get("data")))
            ):
                return frame.get("data")

    async def wait_state(
        self, key: str, pred: Callable[[Any], bool], what: str, timeout: float = TIMEOUT
    ) -> Any:
        """Processes frames until `pred(state[key])` holds; returns that state."""
        deadline = self.app.loop.time() + timeout
        while not (key in self.state and pred(self.state[key])):
            left = deadline - self.app.loop.time()
            await self.recv(
                f"state[{key!r}]: {what} (now {self.state.get(key)!r})", max(left, 0.001)
            )
        return self.state[key]

    async def expect_toast(self, kind: str = "error", timeout: float = TIMEOUT) -> str:
        """The next frame must be a ``_TOAST`` of type `kind`; returns its message."""
        data = await self.expect("_TOAST", timeout)
        assert isinstance(data, dict) and data.get("type") == kind, (
            f"expected a {kind!r} toast, got {data!r}{self._context()}"
        )
        assert isinstance(data.get("message"), str), f"toast without a message: {data!r}"
        return data["message"]

    async def expect_closed(self, timeout: float = TIMEOUT) -> list[Any]:
        """Reads until the server closes the socket; returns the frames read before the close."""
        got: list[Any] = []
        deadline = self.app.loop.time() + timeout
        while True:
            left = deadline - self.app.loop.time()
            if left <= 0:
                raise AssertionError(
                    f"socket still open after {timeout}s; read {got!r}{self._context()}"
                )
            try:
                raw = await asyncio.wait_for(self.ws.recv(), left)
            except asyncio.TimeoutError:
                continue
            except ConnectionClosed:
                return got
            frame = raw if isinstance(raw, bytes) else json.loads(raw)
            self.frames.append(frame)
            self._track(frame)
            got.append(frame)

    # ----- sending ----- #
    async def send(self, kind: str, data: Any = None) -> None:
        await self.ws.send(json.dumps({"type": kind, "data": data}))

    async def send_raw(self, raw: str | bytes) -> None:
        await self.ws.send(raw)

    async def send_binary(self, event: str, metadata: dict[str, Any], payload: bytes) -> None:
        """The two-frame binary sequence: ``_BIN_META`` text, then one binary frame."""
        await self.send("_BIN_META", {"type": event, "metadata": metadata})
        await self.ws.send(payload)

    async def action(self, key: str, name: str, /, **params: Any) -> None:
        await self.send(f"_ACTION:{key}", {"type": name, **params})

    async def start_task(self, key: str, name: str, /, **params: Any) -> None:
        await self.send(f"_TASK_START:{key}", {"type": name, **params})

    async def cancel_task(self, key: str, name: str) -> None:
        await self.send(f"_TASK_CANCEL:{key}", {"type": name})

    async def get(self, key: str) -> Any:
        """A barrier: sends ``_GET:KEY`` and waits for the ``_SET:KEY`` reply (earlier frames
        are tracked and skipped). Everything sent before it has been handled when it returns."""
        await self.send(f"_GET:{key}", {})
        return await self.wait_for(f"_SET:{key}")

    async def get_strict(self, key: str) -> Any:
        """As `get`, but the reply must be the very next frame (nothing else was sent)."""
        await self.send(f"_GET:{key}", {})
        return await self.expect(f"_SET:{key}")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), TIMEOUT)
