"""A FastAPI app on `tether.sync`, for the browser test tests/browser/fastapi-sync.test.mjs.

    python tests/fastapi_sync/app.py [--host 127.0.0.1] [--port 0]

Started as tests/sync_compat/serve.py starts its app (its `serve`): binds its socket first (port 0
= any free port), prints `listening http <host>:<port>`, then serves with uvicorn. Exits on
SIGTERM/SIGINT (graceful shutdown bounded to 2 s) and when its stdin reaches EOF (so a test runner
that dies does not leave it behind; pass --no-stdin-watch to run it by hand).

* `/` the page (index.html + page.js, which uses web/tether-client.js and web/sync.js);
  `/web/...` the repo's web/ directory; `/tests/fastapi_sync/...` this directory (so page.js can
  import `../../web/tether-client.js`, which also resolves on disk for tsc).
* `/ws?s=<id>`: one `Session` and one `Board` per session id, kept across reconnects (a second
  socket with the same id takes the session over); without `s`, one per connection.
* `Board` (key `BOARD`): a plain class whose `items: list[Item]` is a class-level annotation
  (`Item` a pydantic model), so tether.sync dumps it and validates incoming patches with a
  pydantic `TypeAdapter`. Actions `ADD {text}`, `TOGGLE {id}`; task `FILL {n, step}` adds `n`
  items one by one (progress 0..1), cancellable; the running tasks are exposed.
* `GET /api/sessions/<id>`: the server's view of a session's Board (`item_types` tells whether
  the items are still `Item` instances); `POST /api/sessions/<id>/items {text}`: a server-side
  change (`await board.sync()` sends a patch if connected, else nothing: the next `_SET` brings it).
* `boot`: random per process, so a page can tell that it resynced with a restarted server.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from pathlib import Path

from fastapi import Body, FastAPI, HTTPException, WebSocket
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from tether.sync import Session, remote_action, remote_task, sync_all

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sync_compat"))
from serve import serve  # tests/sync_compat/serve.py

WEB_DIR = HERE.parents[1] / "web"
BOOT = secrets.token_hex(4)
logger = logging.getLogger("fastapi_sync")


class Item(BaseModel):
    id: int
    text: str
    done: bool = False
    tags: list[str] = []


class Board:
    title: str
    items: list[Item]
    progress: float
    boot: str

    @sync_all("BOARD", exclude=["next_id"], expose_running_tasks=True, logger=logger)
    def __init__(self) -> None:
        self.title = "Board"
        self.items = [Item(id=1, text="first item", tags=["seed"])]
        self.next_id = 2
        self.progress = 0.0
        self.boot = BOOT

    def _new(self, text: str, tags: list[str] | None = None) -> Item:
        item = Item(id=self.next_id, text=text, tags=tags or [])
        self.next_id += 1
        self.items.append(item)
        return item

    @remote_action("ADD")
    async def add(self, text: str) -> None:
        self._new(text)
        await self.sync()

    @remote_action("TOGGLE")
    async def toggle(self, id: int) -> None:
        for item in self.items:
            if item.id == id:
                item.done = not item.done
        await self.sync()

    @remote_task("FILL")
    async def fill(self, n: int = 3, step: float = 0.2) -> None:
        self.progress = 0.0
        await self.sync()
        for i in range(1, n + 1):
            await asyncio.sleep(step)
            self._new(f"auto {i}", ["auto"])
            self.progress = i / n
            await self.sync()
        await self.sync.toast(f"filled {n}", type="success")

    @fill.cancel
    async def stop_fill(self) -> None:
        self.progress = 0.0
        await self.sync()
        await self.sync.toast("fill cancelled", type="info")


sessions: dict[str, tuple[Session, Board]] = {}


def new_session() -> tuple[Session, Board]:
    session = Session(logger=logger)
    with session:
        board = Board()
    return session, board


app = FastAPI(title="tether.sync on FastAPI (browser test)")


@app.websocket("/ws")
async def board_socket(websocket: WebSocket, s: str | None = None) -> None:
    if s is None:
        session, _board = new_session()
    else:
        if s not in sessions:
            sessions[s] = new_session()
        session, _board = sessions[s]
    await session.handle_connection(websocket)


def board_of(sid: str) -> Board:
    if sid not in sessions:
        raise HTTPException(404, f"no session {sid!r}")
    return sessions[sid][1]


@app.get("/api/sessions/{sid}")
async def board_state(sid: str) -> dict:
    board = board_of(sid)
    return {
        "title": board.title,
        "items": [item.model_dump() for item in board.items],
        "item_types": sorted({type(item).__name__ for item in board.items}),
        "progress": board.progress,
        "boot": board.boot,
        "connected": sessions[sid][0].is_connected,
    }


@app.post("/api/sessions/{sid}/items")
async def add_from_server(sid: str, text: str = Body(embed=True)) -> dict:
    board = board_of(sid)
    item = board._new(text, ["server"])
    await board.sync()  # a patch if a socket is connected; otherwise the next `_SET` carries it
    return item.model_dump()


@app.get("/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "ok"


@app.get("/")
async def index() -> FileResponse:
    return FileResponse(HERE / "index.html", media_type="text/html")


app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
app.mount("/tests/fastapi_sync", StaticFiles(directory=HERE), name="page")


if __name__ == "__main__":
    serve(app, log_env="FASTAPI_SYNC_LOG")
