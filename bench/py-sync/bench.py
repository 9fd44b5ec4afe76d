"""One side of bench/py-sync: what `await obj.sync()` costs for a 10,000-item state, as JSON lines.

Usage: python bench.py VARIANT N REPS   (run through bench/py-sync/run.sh)

VARIANT:
  ws-sync         ws-sync 0.6.9, `items` a list of plain dicts. 0.6.9 cannot sync pydantic models at
                  all: `_snapshot()` deep-copies the raw attribute values and `send_json` json-encodes
                  them, so a `BaseModel` in the state fails with "Object of type Item is not JSON
                  serializable". Dicts are what a 0.6.9 app has to use.
  tether-typed    tether.sync, `items: list[Item]` as a class-level annotation, `Item` a pydantic
                  `BaseModel` (id: int, text: str, done: bool, tags: list[str], score: float); dumped
                  with a pydantic `TypeAdapter`.
  tether-untyped  tether.sync, `items` a list of plain dicts (no annotation), as with ws-sync.

Each variant: a `Session` connected to a real `starlette.websockets.WebSocket` whose ASGI `send`
only records the message (as bench/sync/ws_sync_side.py), so `Session.send` runs exactly as under
Starlette, and one object synced with `Sync.only(obj, "ITEMS", items=...)`. Timed:
`await obj.sync()` (the whole path: snapshot, diff, frame, send), `perf_counter_ns`, after an
untimed `gc.collect()` (the collector stays enabled during the call). Scenarios:
  changed    one field (`text`) of the middle item changed before each sync (one `replace` op)
  unchanged  nothing changed (no frame is sent)
One untimed warm-up sync per scenario.

`BENCH_LABEL=<label>` (set by run.sh for its BASELINE venv) reports the variant as
`VARIANT@<label>`, so a baseline build's rows sit beside the current ones.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from starlette.websockets import WebSocket

VARIANTS = ("ws-sync", "tether-typed", "tether-untyped")


def item(i: int) -> dict:
    return {"id": i, "text": f"item {i}", "done": False, "tags": ["a", "b"], "score": i * 1.5}


class RecordingSocket:
    """The ASGI side of a WebSocket: accepts, records what the app sends."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def receive(self) -> dict:
        return {"type": "websocket.connect"}

    async def send(self, message: dict) -> None:
        self.sent.append(message)


class Item(BaseModel):
    id: int
    text: str
    done: bool
    tags: list[str]
    score: float


# `Sync` of the variant being run (ws_sync.Sync or tether.sync.Sync), set by `main`.
Sync: Any = None


class TypedItems:
    items: list[Item]  # class-level annotation: tether.sync dumps/validates it with a TypeAdapter

    def __init__(self, n: int) -> None:
        self.items = [Item(**item(i)) for i in range(n)]
        self.sync = Sync.only(self, "ITEMS", items=...)


class Items:
    def __init__(self, n: int) -> None:
        self.items = [item(i) for i in range(n)]
        self.sync = Sync.only(self, "ITEMS", items=...)


def make_object(variant: str, n: int) -> tuple[Any, Callable[[int], None]]:
    """The synced object and a function changing one field of one item (the `changed` edit)."""
    if variant == "tether-typed":
        typed = TypedItems(n)

        def change_typed(r: int) -> None:
            typed.items[n // 2].text = f"changed {r}"

        return typed, change_typed

    obj = Items(n)

    def change(r: int) -> None:
        obj.items[n // 2]["text"] = f"changed {r}"

    return obj, change


async def main(variant: str, n: int, reps: int) -> None:
    global Sync
    if variant == "ws-sync":
        from ws_sync import Session, Sync
        from ws_sync.session import session_context
    else:
        from tether.sync import Session, Sync, session_context

    session = Session()
    token = session_context.set(session)
    obj, change = make_object(variant, n)
    session_context.reset(token)
    asgi = RecordingSocket()
    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    ws = WebSocket(scope, asgi.receive, asgi.send)
    await session.new_connection(ws)  # accept + the init `_SET:ITEMS`
    assert asgi.sent[0]["type"] == "websocket.accept", asgi.sent[:1]
    first = json.loads(asgi.sent[-1]["text"])
    assert first["type"] == "_SET:ITEMS", first["type"]
    assert len(first["data"]["items"]) == n and first["data"]["items"][0] == item(0), first["data"][
        "items"
    ][:1]

    async def timed_sync() -> tuple[int, str | None]:
        before = len(asgi.sent)
        gc.collect()
        t = time.perf_counter_ns()
        await obj.sync()
        dt = time.perf_counter_ns() - t
        new = asgi.sent[before:]
        return dt, (new[-1].get("text") if new else None)

    def report(scenario: str, samples: list[int], frame: str | None) -> None:
        s = sorted(samples)
        ops, size = 0, 0
        if frame is not None:
            msg = json.loads(frame)
            assert msg["type"] == "_PATCH:ITEMS", frame[:200]
            ops, size = len(msg["data"]), len(frame.encode("utf-8"))
        print(
            json.dumps(
                {
                    "variant": labelled(variant),
                    "n": n,
                    "scenario": scenario,
                    "reps": len(s),
                    "median_ns": s[len(s) // 2],
                    "p90_ns": s[min(len(s) - 1, (len(s) * 9) // 10)],
                    "min_ns": s[0],
                    "max_ns": s[-1],
                    "ops": ops,
                    "bytes": size,
                    "frame": frame[:300] if frame else None,
                }
            ),
            flush=True,
        )

    samples: list[int] = []
    frame = None
    for r in range(reps + 1):
        change(r)
        dt, frame = await timed_sync()
        assert frame is not None, "a changed item sent no frame"
        msg = json.loads(frame)
        assert msg["data"] == [
            {"op": "replace", "path": f"/items/{n // 2}/text", "value": f"changed {r}"}
        ], frame[:300]
        if r:
            samples.append(dt)
    report("changed", samples, frame)

    samples = []
    for r in range(reps + 1):
        dt, frame = await timed_sync()
        assert frame is None, f"nothing changed but a frame was sent: {frame[:200]}"
        if r:
            samples.append(dt)
    report("unchanged", samples, None)


def labelled(variant: str) -> str:
    label = os.environ.get("BENCH_LABEL")
    return f"{variant}@{label}" if label else variant


def pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    variant, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if variant not in VARIANTS:
        sys.exit(f"VARIANT must be one of {', '.join(VARIANTS)}")
    if variant == "ws-sync":
        assert pkg("ws-sync") == "0.6.9", pkg("ws-sync")
    print(
        json.dumps(
            {
                "variant": labelled(variant),
                "meta": True,
                "python": sys.version.split()[0],
                "ws_sync": pkg("ws-sync"),
                "tether": pkg("tether"),
                "pydantic": pkg("pydantic"),
                "jsonpatch": pkg("jsonpatch"),
                "starlette": pkg("starlette"),
            }
        ),
        flush=True,
    )
    asyncio.run(main(variant, n, reps))
