"""examples/ws-sync-notes: the same app on ws-sync 0.6.9 and on tether.sync.

(a) `app_tether.py` is `app_ws_sync.py` with only its import lines changed (`ws_sync` ->
    `tether.sync`);
(b) both apps, each started as a subprocess on a free port, are driven by the same scripted
    `websockets` client (the ws-sync protocol by hand: actions, a client patch, a task run to its
    end, a cancelled task, a takeover by a second socket). The client keeps its own copy of the
    state (`_SET` replaces it, `_PATCH` is applied with `jsonpatch`), checks at each checkpoint
    that the copy equals a fresh `_SET` (answer to `_GET`), and the checkpoints and toasts must be
    the same for both apps. Op lists are not compared: only the states they lead to.

Needs ws-sync 0.6.9, jsonpatch, starlette, uvicorn and websockets in the test venv (the shared
venv gets them from tests/sync_compat/setup.sh).
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ws-sync-notes"
KEY = "NOTES"
TIMEOUT = 15.0


# ---- (a) only the imports differ ------------------------------------------------------------

IMPORT_RE = re.compile(r"^(from\s+\S+\s+import\s+.+|import\s+\S+.*)$")


def test_notes_files_differ_only_in_imports() -> None:
    old = (EXAMPLE / "app_ws_sync.py").read_text().splitlines()
    new = (EXAMPLE / "app_tether.py").read_text().splitlines()
    removed = [line[2:] for line in difflib.ndiff(old, new) if line.startswith("- ")]
    added = [line[2:] for line in difflib.ndiff(old, new) if line.startswith("+ ")]
    assert removed, "app_tether.py is identical to app_ws_sync.py: its imports must differ"
    for line in removed + added:
        assert IMPORT_RE.match(line), f"a changed line that is not an import: {line!r}"
    assert all("ws_sync" in line for line in removed), removed
    assert all("tether.sync" in line and "ws_sync" not in line for line in added), added
    # The change is the module name and nothing else.
    assert [line.replace("ws_sync", "tether.sync") for line in removed] == added
    # The rest is identical, line for line.
    assert len(old) == len(new)


# ---- (b) the same session against both apps ---------------------------------------------------


def jsonpatch() -> Any:
    return importlib.import_module("jsonpatch")


def websockets_client() -> Any:
    return importlib.import_module("websockets.asyncio.client")


@asynccontextmanager
async def run_app(script: str) -> AsyncIterator[int]:
    """Start `python <script> --port 0` and yield the port from its `listening http` line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE / script),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=EXAMPLE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        m = re.match(rb"listening http (\S+):(\d+)", line)
        if not m:
            proc.kill()
            err = await proc.stderr.read()
            pytest.fail(f"{script} did not start: {line!r}\n{err.decode(errors='replace')}")
        port = int(m.group(2))
        # The socket listens before uvicorn serves: wait until a connection is answered.
        for _ in range(200):
            try:
                _r, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()


class Client:
    """One socket with a client-side copy of `NOTES`, kept like a browser store would."""

    def __init__(self, ws: Any):
        self.ws = ws
        self.state: dict | None = None
        self.toasts: list[tuple[str, str]] = []
        self.other: list[dict] = []  # any other frame (e.g. `_DISCONNECT`)

    async def send(self, type_: str, data: Any) -> None:
        await self.ws.send(json.dumps({"type": type_, "data": data}))

    async def recv(self) -> dict:
        raw = await asyncio.wait_for(self.ws.recv(), TIMEOUT)
        assert isinstance(raw, str), f"a binary frame: {raw!r}"
        msg = json.loads(raw)
        t, data = msg["type"], msg.get("data")
        if t == f"_SET:{KEY}":
            self.state = data
        elif t == f"_PATCH:{KEY}":
            assert self.state is not None, "a _PATCH before the first _SET"
            self.state = jsonpatch().apply_patch(self.state, data)
        elif t == "_TOAST":
            self.toasts.append((data["type"], data["message"]))
        else:
            self.other.append(msg)
        return msg

    async def until(self, cond: Callable[[dict], bool], what: str) -> dict:
        seen: list[str] = []
        while True:
            if self.state is not None and cond(self.state):
                return self.state
            try:
                msg = await self.recv()
            except asyncio.TimeoutError:
                pytest.fail(f"timed out waiting for {what}; state {self.state}; frames {seen}")
            seen.append(msg["type"])

    async def checkpoint(self) -> dict:
        """`_GET` -> the answering `_SET` must equal the patched copy (frames arrive in order)."""
        before = self.state
        await self.send(f"_GET:{KEY}", {})
        while True:
            msg = await self.recv()
            if msg["type"] == f"_SET:{KEY}":
                break
            before = self.state
        assert msg["data"] == before, "the patched client copy differs from a fresh _SET"
        return msg["data"]

    async def patch(self, ops: list[dict]) -> None:
        """A local change sent as `_PATCH` (like a browser store's `patch`)."""
        self.state = jsonpatch().apply_patch(self.state, ops)
        await self.send(f"_PATCH:{KEY}", ops)

    async def action(self, name: str, **kwargs: Any) -> dict:
        await self.send(f"_ACTION:{KEY}", {"type": name, **kwargs})
        return await self.checkpoint()  # actions run one at a time: the _SET comes after them


async def notes_session(port: int) -> dict[str, Any]:
    """The scripted session; returns the checkpoints and the toasts."""
    url = f"ws://127.0.0.1:{port}/ws?s=script"
    points: dict[str, Any] = {}
    connect = websockets_client().connect
    connection_closed = importlib.import_module("websockets.exceptions").ConnectionClosed
    async with connect(url) as ws:
        c = Client(ws)
        points["initial"] = await c.until(lambda s: True, "the initial _SET")
        points["add"] = await c.action("ADD", text="buy milk")
        points["add-empty"] = await c.action("ADD", text="   ")  # a warning toast, no change
        points["rename"] = await c.action("RENAME", title="Groceries", suffix="!")
        points["toggle"] = await c.action("TOGGLE", id=1)
        points["add2"] = await c.action("ADD", text="call mom")
        points["remove"] = await c.action("REMOVE", id=1)
        # a client patch (like a browser store's edit); ws-sync sends nothing back for it
        await c.patch([{"op": "replace", "path": "/notes/0/text", "value": "buy oat milk"}])
        points["client-patch"] = await c.checkpoint()

        # a task run to its end: marks the open notes done, progress 0..1, a toast at the end
        await c.send(f"_TASK_START:{KEY}", {"type": "REVIEW", "step": 0.01})
        await c.until(lambda s: s["runningTasks"] == ["REVIEW"], "REVIEW in runningTasks")
        await c.until(lambda s: s["runningTasks"] == [], "REVIEW to finish")
        points["review"] = await c.checkpoint()

        # a cancelled task: cancel once the first note is done (the next one would take 1 s more)
        for text in ("one", "two", "three"):
            await c.action("ADD", text=text)
        await c.send(f"_TASK_START:{KEY}", {"type": "REVIEW", "step": 1.0})
        await c.until(
            lambda s: s["runningTasks"] == ["REVIEW"] and s["progress"] == 0, "REVIEW to start"
        )
        await c.until(lambda s: s["progress"] > 0, "REVIEW's first step")
        await c.send(f"_TASK_CANCEL:{KEY}", {"type": "REVIEW"})
        await c.until(lambda s: s["runningTasks"] == [], "REVIEW to be cancelled")
        points["cancelled"] = await c.checkpoint()

        # a second socket with the same session id takes over: the first gets `_DISCONNECT`,
        # the second the same state in a `_SET`
        async with connect(url) as ws2:
            c2 = Client(ws2)
            points["takeover"] = await c2.until(lambda s: True, "the _SET on the new socket")
            while not c.other:
                try:
                    await c.recv()
                except asyncio.TimeoutError:
                    pytest.fail("the first socket got no _DISCONNECT")
                except connection_closed:  # the server closed it after the `_DISCONNECT`
                    break
            points["first-socket-got"] = [m["type"] for m in c.other]
    points["toasts"] = c.toasts
    return points


def check_ws_sync_run(points: dict[str, Any]) -> None:
    """What the app must do (checked on ws-sync's run, then compared with tether's)."""
    assert points["initial"] == {
        "nextId": 2,
        "noteCount": 1,
        "notes": [{"id": 1, "text": "read the README", "done": False}],
        "progress": 0.0,
        "runningTasks": [],
        "title": "My notes",
    }
    assert points["add-empty"] == points["add"]
    assert points["rename"]["title"] == "Groceries!"
    assert points["client-patch"]["notes"] == [
        {"id": 2, "text": "buy oat milk", "done": False},
        {"id": 3, "text": "call mom", "done": False},
    ]
    assert points["review"]["progress"] == 1.0
    assert all(n["done"] for n in points["review"]["notes"])
    cancelled = points["cancelled"]
    assert cancelled["progress"] == 0.0 and cancelled["runningTasks"] == []
    assert [n["done"] for n in cancelled["notes"][2:]] == [True, False, False]
    assert points["takeover"] == cancelled
    assert points["first-socket-got"] == ["_DISCONNECT"]
    assert points["toasts"] == [
        ("success", "added 'buy milk'"),
        ("warning", "a note needs some text"),
        ("info", "renamed to 'Groceries!'"),
        ("success", "added 'call mom'"),
        ("success", "reviewed 2 notes"),
        ("success", "added 'one'"),
        ("success", "added 'two'"),
        ("success", "added 'three'"),
        ("info", "review cancelled"),
    ]


@pytest.fixture(scope="module")
def ws_sync_points() -> dict[str, Any]:
    for mod in ("ws_sync", "uvicorn", "starlette"):
        importlib.import_module(mod)  # the test extras install them; a missing one is a failure
    jsonpatch()
    websockets_client()

    async def go() -> dict[str, Any]:
        async with run_app("app_ws_sync.py") as port:
            return await notes_session(port)

    return asyncio.run(go())


def test_notes_on_ws_sync(ws_sync_points: dict[str, Any]) -> None:
    check_ws_sync_run(ws_sync_points)


async def test_notes_on_tether_sync_same_as_ws_sync(ws_sync_points: dict[str, Any]) -> None:
    async with run_app("app_tether.py") as port:
        points = await notes_session(port)
    for name, want in ws_sync_points.items():
        assert points.get(name) == want, f"checkpoint {name!r} differs from ws-sync's"
    assert points.keys() == ws_sync_points.keys()
