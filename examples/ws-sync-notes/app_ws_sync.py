"""Notes: a small ws-sync app (Starlette + uvicorn) with a page at `/`.

`app_ws_sync.py` runs on ws-sync 0.6.9 from PyPI; `app_tether.py` is this file with only its
import lines changed, and runs on `tether.sync`. Everything below the imports is plain ws-sync.

    python app_ws_sync.py --port 8000      # then open http://127.0.0.1:8000/
    python app_ws_sync.py --port 0         # any free port; the first stdout line says which

State (key `NOTES`, camelCase on the wire): `title`, `notes` (`{id, text, done}`), `nextId`,
`progress`, the read-only property `noteCount`, and `runningTasks`. Actions: `ADD {text}`,
`RENAME {title}`, `TOGGLE {id}`, `REMOVE {id}`. Task: `REVIEW {step}` marks the notes done one
by one (progress 0..1), cancellable. Toasts after ADD, RENAME and at the end of REVIEW.

One `Session` per `?s=<id>` (kept across reconnects: a second socket with the same id takes the
session over, the first gets `_DISCONNECT`); without `?s=`, one `Session` per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from ws_sync import Session, remote_action, remote_task, sync_all
from ws_sync.utils import toCamelCase

logger = logging.getLogger("notes")

HERE = Path(__file__).resolve().parent
WEB_DIR = Path(os.environ.get("NOTES_WEB_DIR", HERE.parents[1] / "web"))
KEY = "NOTES"


class Notes:
    @sync_all(KEY, toCamelCase=True, expose_running_tasks=True, logger=logger)
    def __init__(self, title: str = "My notes"):
        self.title = title
        self.notes: list[dict] = [{"id": 1, "text": "read the README", "done": False}]
        self.next_id = 2
        self.progress = 0.0
        self._reviewing = False  # private: not synced

    @property
    def note_count(self) -> int:  # synced (read-only) as `noteCount`
        return len(self.notes)

    # ---- actions: `_ACTION:NOTES`, one at a time per session ----

    @remote_action("ADD")
    async def add(self, text: str):
        text = text.strip()
        if not text:
            await self.sync.toast("a note needs some text", type="warning")
            return
        self.notes.append({"id": self.next_id, "text": text, "done": False})
        self.next_id += 1
        await self.sync(toast=f"added {text!r}", type="success")

    @remote_action("RENAME")
    async def rename(self, title: str, suffix: str = ""):
        self.title = f"{title}{suffix}"
        await self.sync()
        await self.sync.toast("renamed to", repr(self.title), type="info")

    @remote_action("TOGGLE")
    async def toggle(self, id: int):
        for note in self.notes:
            if note["id"] == id:
                note["done"] = not note["done"]
        await self.sync()

    @remote_action("REMOVE")
    async def remove(self, id: int):
        self.notes = [n for n in self.notes if n["id"] != id]
        await self.sync()

    # ---- task: `_TASK_START:NOTES` / `_TASK_CANCEL:NOTES`, concurrent, cancellable ----

    @remote_task("REVIEW")
    async def review(self, step: float = 0.5):
        self._reviewing = True
        self.progress = 0.0
        await self.sync()
        todo = [n for n in self.notes if not n["done"]]
        for i, note in enumerate(todo, start=1):
            await asyncio.sleep(step)
            note["done"] = True
            self.progress = i / len(todo)
            await self.sync()
        self._reviewing = False
        await self.sync.toast(f"reviewed {len(todo)} notes", type="success")

    @review.cancel
    async def stop_review(self):
        # awaited inside the cancelled task, before REVIEW leaves `runningTasks`
        self._reviewing = False
        self.progress = 0.0
        await self.sync()
        await self.sync.toast("review cancelled", type="info")


# ---- wiring: sessions, the socket, the page ----

sessions: dict[str, tuple[Session, Notes]] = {}


def new_session() -> tuple[Session, Notes]:
    session = Session(logger=logger)
    with session:  # `Sync` (made by @sync_all) registers with the current session
        notes = Notes()
    return session, notes


async def notes_socket(ws: WebSocket):
    sid = ws.query_params.get("s")
    if sid is None:
        session, _notes = new_session()
    else:
        if sid not in sessions:
            sessions[sid] = new_session()
        session, _notes = sessions[sid]
    await session.handle_connection(ws)


async def config(_request):
    """What the page needs to know about the wire names."""
    return JSONResponse({"key": KEY, "runningTasks": toCamelCase("running_tasks")})


async def index(_request):
    return FileResponse(HERE / "index.html", media_type="text/html")


async def healthz(_request):
    return PlainTextResponse("ok")


app = Starlette(
    routes=[
        Route("/", index),
        Route("/config", config),
        Route("/healthz", healthz),
        WebSocketRoute("/ws", notes_socket),
        Mount("/web", app=StaticFiles(directory=WEB_DIR), name="web"),
    ]
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000, help="0 = any free port")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args()
    logging.basicConfig(level=args.log_level.upper())
    # Bind first, so `--port 0` can report the port it got before serving.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    print(f"listening http {host}:{port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, lifespan="off"))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
