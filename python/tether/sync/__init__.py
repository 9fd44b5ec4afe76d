"""`tether.sync`: ws-sync's Python API on tether's Rust core.

Server objects mirrored into browser state over one WebSocket with JSON Patch, wire-compatible
with ws-sync's React client and `web/tether-client.js`. An app written for ws-sync runs after
changing its imports from `ws_sync` to `tether.sync`:

```python
from tether.sync import Session, remote_action, sync_all

class Notes:
    @sync_all("NOTES", toCamelCase=True)
    def __init__(self):
        self.notes: list[str] = []

    @remote_action("ADD")
    async def add(self, note: str):
        self.notes.append(note)
        await self.sync()

session = Session()
with session:
    notes = Notes()
# Starlette/FastAPI: @app.websocket("/ws") async def ws(ws): await session.handle_connection(ws)
# or embedded: tether.serve(...).websocket("/ws", session.handle_connection)
```

The protocol runs in Rust: each `Session` drives the `tether-sync` engine
(`tether._native.SyncSession`), which parses and encodes frames, dispatches events, queues
actions and tracks tasks; this package reads and assigns attributes (the diff walk is native),
validates with pydantic when it is installed, and runs the handlers and tasks the engine asks
for. On tether's embedded server the engine's frames go to the socket without passing through
Python. Where tether differs from ws-sync 0.6.9 (bugs fixed, additions):
`docs/protocol/sync.md`.
"""

from __future__ import annotations

from . import decorators, session
from .decorators import remote_action, remote_task, remote_task_cancel, sync, sync_all, sync_only
from .errors import NoSessionError, SyncError, SyncValidationError
from .id import get_user_session
from .session import Session, SessionState, session_context
from .sync import Sync, ToastType, get_current_sync_key_prefix, sync_key_scope
from .utils import nonblock_call, toCamelCase

__all__ = [
    "NoSessionError",
    "Session",
    "SessionState",
    "Sync",
    "SyncError",
    "SyncValidationError",
    "ToastType",
    "decorators",
    "get_current_sync_key_prefix",
    "get_user_session",
    "nonblock_call",
    "remote_action",
    "remote_task",
    "remote_task_cancel",
    "session",
    "session_context",
    "sync",
    "sync_all",
    "sync_key_scope",
    "sync_only",
    "toCamelCase",
]
