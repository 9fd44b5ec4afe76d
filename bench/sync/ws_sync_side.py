"""ws-sync 0.6.9's side of bench/sync: what one `await Sync.sync()` costs, as JSON lines.

Usage: python ws_sync_side.py N REPS   (run through bench/sync/run.sh, with the tether venv)

The real package: a `Session` connected to a real `starlette.websockets.WebSocket` whose ASGI
`send` only records the message, so `Session.send` -> `WebSocket.send_json` runs exactly as under
Starlette (`json.dumps(..., separators=(",", ":"), ensure_ascii=False)`), and one object synced
with `Sync.only(obj, "ITEMS", items=...)` over an attribute of N dicts. `sync()` is the whole
stock path: `_snapshot()` (deepcopy) + `jsonpatch.make_patch(prev, new)` + send. Scenarios as on
tether's side (bench/sync/examples/sync_bench.rs): change the middle item's `text`; insert one
item at the front (removed again and synced untimed after each rep); no change. `gc.collect()`
runs untimed before each timed sync (the collector stays enabled during it).
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from importlib.metadata import version

from starlette.websockets import WebSocket
from ws_sync import Session, Sync
from ws_sync.session import session_context


def item(i: int) -> dict:
    return {"id": i, "text": f"item {i}", "done": False, "tags": ["a", "b"], "score": i * 1.5}


class Items:
    def __init__(self, n: int):
        self.items = [item(i) for i in range(n)]
        self.sync = Sync.only(self, "ITEMS", items=...)


class RecordingSocket:
    """The ASGI side of a WebSocket: accepts, records what the app sends."""

    def __init__(self):
        self.sent: list[dict] = []

    async def receive(self):
        return {"type": "websocket.connect"}

    async def send(self, message):
        self.sent.append(message)


async def main(n: int, reps: int) -> None:
    session = Session()
    session_context.set(session)
    obj = Items(n)
    asgi = RecordingSocket()
    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    ws = WebSocket(scope, asgi.receive, asgi.send)
    await session.new_connection(ws)  # accept + the init `_SET:ITEMS`
    assert asgi.sent[0]["type"] == "websocket.accept", asgi.sent[:1]
    assert json.loads(asgi.sent[-1]["text"])["type"] == "_SET:ITEMS"
    warm = 1 if n <= 10_000 else 0
    mid = n // 2

    async def timed_sync() -> tuple[int, str | None]:
        before = len(asgi.sent)
        gc.collect()
        t = time.perf_counter_ns()
        await obj.sync.sync()
        dt = time.perf_counter_ns() - t
        new = asgi.sent[before:]
        return dt, (new[-1]["text"] if new else None)

    def report(scenario: str, samples: list[int], frame: str | None) -> None:
        samples = sorted(samples)
        ops, size = 0, 0
        if frame is not None:
            msg = json.loads(frame)
            assert msg["type"] == "_PATCH:ITEMS", frame[:200]
            ops, size = len(msg["data"]), len(frame.encode("utf-8"))
        print(
            json.dumps(
                {
                    "side": "ws-sync",
                    "path": "Sync.sync",
                    "n": n,
                    "scenario": scenario,
                    "reps": len(samples),
                    "median_ns": samples[len(samples) // 2],
                    "min_ns": samples[0],
                    "max_ns": samples[-1],
                    "ops": ops,
                    "bytes": size,
                }
            ),
            flush=True,
        )

    samples, frame = [], None
    for r in range(reps + warm):
        obj.items[mid]["text"] = f"changed {r}"
        dt, frame = await timed_sync()
        assert frame is not None
        if r >= warm:
            samples.append(dt)
    report("change", samples, frame)

    samples, frame = [], None
    for r in range(reps + warm):
        obj.items.insert(0, item(n + 1 + r))
        dt, frame = await timed_sync()
        assert frame is not None
        if r >= warm:
            samples.append(dt)
        obj.items.pop(0)
        await obj.sync.sync()
    report("insert", samples, frame)

    samples, frame = [], None
    for r in range(reps + warm):
        dt, frame = await timed_sync()
        assert frame is None
        if r >= warm:
            samples.append(dt)
    report("none", samples, None)


if __name__ == "__main__":
    assert version("ws-sync") == "0.6.9", version("ws-sync")
    print(
        json.dumps(
            {
                "side": "ws-sync",
                "meta": True,
                "python": sys.version.split()[0],
                "ws_sync": version("ws-sync"),
                "jsonpatch": version("jsonpatch"),
                "starlette": version("starlette"),
            }
        ),
        flush=True,
    )
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
