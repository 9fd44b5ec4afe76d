"""The todo-sync demo (examples/todo-sync/CONTRACT.md) on the REAL ws-sync 0.6.9 from PyPI.

The compatibility test (tests/browser/sync-compat.test.mjs) drives the same browser page against
this app and against tether's `/demo/sync`, so this file is plain ws-sync usage, nothing tether:

* one `Session` and one `TodoDemo` per WebSocket connection on `/ws/sync/demo`, each starting
  from the contract's initial state;
* key `TODOS`, `send_on_init`, `expose_running_tasks` (snake case: `running_tasks`); the state
  fields are listed explicitly (`sync_only`) so the key order is the contract's
  (`todos`, `next_id`, `progress`, then `running_tasks`), not `dir()`'s alphabetical order;
* the repo's `web/` directory as static files at `/`, plus `/demo/sync` -> `web/demo-sync.html`,
  so the page and `/tether-client.js` load from this server exactly as from tether.

Run: `uvicorn --app-dir tests/sync_compat ws_sync_app:app --host 127.0.0.1 --port 8765`
(`TETHER_WEB_DIR` overrides the static directory, default `<repo>/web`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from ws_sync import Session, remote_action, remote_task, sync_only

logger = logging.getLogger("ws_sync_app")

WEB_DIR = Path(os.environ.get("TETHER_WEB_DIR", Path(__file__).resolve().parents[2] / "web"))
COUNT_STEP_SECONDS = 0.1


class TodoDemo:
    @sync_only(
        "TODOS",
        _expose_running_tasks=True,
        _send_on_init=True,
        _logger=logger,
        todos=...,
        next_id=...,
        progress=...,
    )
    def __init__(self):
        self.todos: list[dict] = [{"id": 1, "text": "try tether", "done": False}]
        self.next_id = 2
        self.progress = 0.0

    # ---- actions (_ACTION:TODOS, run one at a time per session) ----

    @remote_action("ADD")
    async def add(self, text: str):
        if not isinstance(text, str) or not text.strip():
            # ws-sync 0.6.9 has no error reporting: a handler exception ends the WebSocket
            # (the client reconnects and gets a fresh `_SET`). tether answers with an error toast
            # instead; the browser test checks that only against tether.
            raise ValueError("text must not be empty")
        self.todos.append({"id": self.next_id, "text": text, "done": False})
        self.next_id += 1
        await self.sync()

    @remote_action("TOGGLE")
    async def toggle(self, id: int):
        for todo in self.todos:
            if todo["id"] == id:
                todo["done"] = not todo["done"]
        await self.sync()

    @remote_action("REMOVE")
    async def remove(self, id: int):
        self.todos = [t for t in self.todos if t["id"] != id]
        await self.sync()

    @remote_action("CLEAR_DONE")
    async def clear_done(self):
        self.todos = [t for t in self.todos if not t["done"]]
        await self.sync()

    @remote_action("UPLOAD")
    async def upload(self, data: bytes, name: str = "upload"):
        # from the client's `sendBinary({type: "UPLOAD", name}, bytes)`: `_BIN_META` + a binary frame
        self.todos.append(
            {"id": self.next_id, "text": f"uploaded {name} ({len(data)} bytes)", "done": False}
        )
        self.next_id += 1
        await self.sync()
        await self.sync.send_binary({"type": "ECHO", "name": name}, bytes(reversed(data)))

    # ---- task (_TASK_START:TODOS / _TASK_CANCEL:TODOS, concurrent, cancellable) ----

    @remote_task("COUNT")
    async def count(self, n: int):
        n = int(n)
        for i in range(1, n + 1):
            self.progress = i / n
            await self.sync()
            await asyncio.sleep(COUNT_STEP_SECONDS)
        await self.sync.toast(f"counted to {n}", type="success")

    @count.cancel
    async def cancel_count(self):
        # awaited by ws-sync inside the cancelled task, before COUNT leaves `running_tasks`
        self.progress = 0.0
        await self.sync()
        await self.sync.toast("count cancelled", type="info")


async def demo_socket(ws: WebSocket):
    """One Session and one TodoDemo per connection (plain ws-sync usage)."""
    session = Session(logger=logger)
    with session:
        demo = TodoDemo()  # noqa: F841 (kept alive by the session's handlers)
    await session.handle_connection(ws)


async def demo_page(_request):
    return FileResponse(WEB_DIR / "demo-sync.html", media_type="text/html")


async def healthz(_request):
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        WebSocketRoute("/ws/sync/demo", demo_socket),
        Route("/demo/sync", demo_page),
        Route("/healthz", healthz),
        Mount("/", app=StaticFiles(directory=WEB_DIR, html=True), name="web"),
    ]
)

if __name__ == "__main__":  # pragma: no cover - convenience
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8765")))
