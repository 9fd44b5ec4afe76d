"""Fixtures for tether.ui: a relay, fake UI peers, a TCP proxy that cuts connections, and a
runner for hero scripts in a subprocess (the stock sidekick-py client is a process singleton).

The relay is always the real tether relay: the embedded server's (`tether.serve(relay=...)`), or
with TETHER_UI_RELAY=binary the `tether` binary's (`tether serve --relay`, found as $TETHER_BIN,
on PATH or in $CARGO_TARGET_DIR). The stock sidekick-py 0.0.7 that some tests compare with lives
in the venv `tests/ui/setup.sh` makes; a missing one skips those tests, or fails them under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import missing_peer

HERE = Path(__file__).parent
REPO = HERE.parents[2]


# --- a loop in a thread -----------------------------------------------------------------------


class LoopThread:
    """An asyncio loop in a daemon thread, so sync and async tests can share servers."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# --- the relay ----------------------------------------------------------------------------------


class EmbeddedRelay:
    """The real tether relay, embedded: `tether.serve(..., relay="127.0.0.1:0")`."""

    kind = "real (embedded)"

    def __init__(self, server: Any, addr: str) -> None:
        self._server = server
        self.port = int(addr.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.close(5)


class ProcessRelay:
    """The real tether relay, as `tether serve --relay 127.0.0.1:0` in a subprocess."""

    kind = "real (binary)"

    def __init__(self, binary: str) -> None:
        self._proc = subprocess.Popen(
            [
                binary,
                "serve",
                "--http",
                "127.0.0.1:0",
                "--tcp",
                "127.0.0.1:0",
                "--relay",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.port = 0
        deadline = time.monotonic() + 30
        assert self._proc.stdout is not None
        lines = []
        while time.monotonic() < deadline:
            line = self._proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"listening relay\S*\s+\S*?(\d+\.\d+\.\d+\.\d+:\d+)", line)
            if match:
                self.port = int(match.group(1).rsplit(":", 1)[1])
                break
        if not self.port:
            self._proc.kill()
            raise RuntimeError(
                "tether serve --relay did not report its address:\n" + "".join(lines)
            )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self._proc.stdout is not None
        for _ in self._proc.stdout:
            pass

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def _binary_with_relay() -> str:
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/tether-target"))
    candidates = [os.environ.get("TETHER_BIN"), shutil.which("tether")]
    candidates += [str(target / profile / "tether") for profile in ("release", "debug")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "TETHER_UI_RELAY=binary but no tether binary: set TETHER_BIN or run "
        "`cargo build -p tether-server`",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def relay() -> Iterator[Any]:
    import tether

    mode = os.environ.get("TETHER_UI_RELAY", "embedded")
    if mode == "binary":
        server: Any = ProcessRelay(_binary_with_relay())
    elif mode == "embedded":
        embedded = tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="127.0.0.1:0")
        assert embedded.relay_addr, "tether.serve(relay=...) reported no relay address"
        server = EmbeddedRelay(embedded, embedded.relay_addr)
    else:
        pytest.fail(f"TETHER_UI_RELAY={mode!r}: expected 'embedded' or 'binary'", pytrace=False)
    sys.stderr.write(f"\ntether.ui tests: relay = {server.kind} at {server.url}\n")
    yield server
    server.close()


@pytest.fixture
def session_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def session_url(relay: Any, session_id: str) -> str:
    return f"{relay.url}/?session={session_id}"


# --- a TCP proxy that can cut connections -----------------------------------------------------


class Proxy:
    """Forwards 127.0.0.1:<port> to the relay; `cut()` aborts every connection through it,
    `refuse()` stops listening (connections are refused), `accept()` listens again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._lt = LoopThread("ui-proxy")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.accept()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def accept(self) -> None:
        async def start() -> int:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
            return int(self._server.sockets[0].getsockname()[1])

        self.port = self._lt.run(start())

    def refuse(self) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()

        self._lt.run(stop())

    def cut(self) -> None:
        async def cut() -> None:
            for writer in list(self._writers):
                transport = writer.transport
                transport.abort()  # type: ignore[attr-defined]
            self._writers.clear()

        self._lt.run(cut())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.refuse()
            self.cut()
        self._lt.close()


@pytest.fixture
def proxy(relay: Any) -> Iterator[Proxy]:
    p = Proxy(relay.port)
    yield p
    p.close()


# --- a fake UI peer -----------------------------------------------------------------------------


def announce(peer_id: str, role: str = "sidekick", status: str = "online") -> str:
    return json.dumps(
        {
            "id": 0,
            "component": "system",
            "type": "announce",
            "payload": {
                "peerId": peer_id,
                "role": role,
                "status": status,
                "version": "0.0.8",
                "timestamp": int(time.time() * 1000),
            },
        }
    )


class FakeUI:
    """A UI peer (`role: sidekick`): announces itself online and records every frame."""

    def __init__(self, url: str, peer_id: str | None = None, announce_online: bool = True) -> None:
        from websockets.sync.client import connect

        self.peer_id = peer_id or f"sidekick-{uuid.uuid4()}"
        self.ws = connect(url, open_timeout=5, max_size=None)
        self.ws.__enter__()  # websockets >= 17 wants the context-manager form
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self.closed = False
        self._cursor = 0
        self._thread = threading.Thread(target=self._read, name="fake-ui", daemon=True)
        self._thread.start()
        if announce_online:
            self.ws.send(announce(self.peer_id))

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for raw in self.ws:
                with self._cond:
                    self.raw.append(raw if isinstance(raw, str) else raw.decode())
                    self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    @property
    def frames(self) -> list[dict[str, Any]]:
        with self._cond:
            return [json.loads(raw) for raw in self.raw]

    def hero_frames(self) -> list[dict[str, Any]]:
        """Frames from the hero (without announces of other UIs)."""
        return [
            f
            for f in self.frames
            if not (f.get("component") == "system" and f["payload"].get("role") == "sidekick")
        ]

    def wait_for(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
        what: str = "",
        since: int | None = None,
    ) -> dict[str, Any]:
        """The first matching frame after the previous match (or from index `since`)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = self._cursor if since is None else since
            while True:
                while seen < len(self.raw):
                    frame = json.loads(self.raw[seen])
                    seen += 1
                    if predicate(frame):
                        self._cursor = seen
                        return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise AssertionError(
                        f"no frame {what or predicate} within {timeout} s; got:\n"
                        + "\n".join(self.raw[-20:])
                    )
                self._cond.wait(remaining)

    def wait_count(
        self, predicate: Callable[[dict[str, Any]], bool], n: int, timeout: float = 10.0
    ) -> None:
        deadline = time.monotonic() + timeout
        seen = got = 0
        with self._cond:
            while True:
                while seen < len(self.raw):
                    got += bool(predicate(json.loads(self.raw[seen])))
                    seen += 1
                if got >= n:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{got} matching frames, wanted {n}")
                self._cond.wait(remaining)

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message, separators=(",", ":")))

    def event(self, component: str, src: str, payload: dict[str, Any], kind: str = "event") -> None:
        self.send({"id": 0, "component": component, "type": kind, "src": src, "payload": payload})

    def close(self, offline: bool = True) -> None:
        with contextlib.suppress(Exception):
            if offline:
                self.ws.send(announce(self.peer_id, status="offline"))
            self.ws.close()
        self._thread.join(5)


@pytest.fixture
def make_ui(session_url: str) -> Iterator[Callable[..., FakeUI]]:
    uis: list[FakeUI] = []

    def make(url: str | None = None, **kwargs: Any) -> FakeUI:
        ui = FakeUI(url or session_url, **kwargs)
        uis.append(ui)
        return ui

    yield make
    for ui in uis:
        ui.close()


def is_(component: str, kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """A frame predicate: `is_("label", "update", target="lab")`, payload keys via `action=`."""

    def predicate(frame: dict[str, Any]) -> bool:
        if frame.get("component") != component or frame.get("type") != kind:
            return False
        for key, value in fields.items():
            where = frame.get("payload", {}) if key in ("action", "status", "role") else frame
            if where.get(key) != value:
                return False
        return True

    return predicate


# --- the tether.ui client -----------------------------------------------------------------------


@pytest.fixture
def tui(session_url: str) -> Iterator[Any]:
    """`tether.ui`, pointed at this test's session; shut down and reset afterwards."""
    from tether import ui
    from tether.ui import _settings

    ui.set_url(session_url)
    yield ui
    ui.shutdown(wait=True)
    ui.set_url(None)
    _settings._settings.__init__()  # type: ignore[misc]


# --- scripts in a subprocess --------------------------------------------------------------------


def _stock_python() -> str | None:
    """A Python with stock sidekick-py 0.0.7: this one if it has it, else the venv that
    tests/ui/setup.sh makes (sidekick-py pins websockets 13.1, so it lives on its own)."""
    if importlib.util.find_spec("sidekick") is not None:
        return sys.executable
    venv = os.environ.get("TETHER_UI_VENV") or str(Path.home() / ".cache" / "tether-ui-venv")
    py = Path(venv) / "bin" / "python"
    if py.exists():
        probe = subprocess.run(
            [str(py), "-c", "import sidekick; assert sidekick.__version__ == '0.0.7'"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        if probe.returncode == 0:
            return str(py)
    return None


STOCK_PYTHON = _stock_python()
"""Runs stock sidekick-py scripts; `bash tests/ui/setup.sh` provides it (scripts/test.sh does)."""


@pytest.fixture
def stock_python() -> str:
    """The Python with stock sidekick-py 0.0.7; without one the test skips, or fails under CI."""
    if STOCK_PYTHON is None:
        missing_peer("stock sidekick-py 0.0.7 not found: run bash tests/ui/setup.sh")
    return STOCK_PYTHON


def run_script(
    path: Path, *args: str, timeout: float = 60.0, python: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(HERE)) if p)
    return subprocess.run(
        [python or sys.executable, str(path), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(HERE),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
