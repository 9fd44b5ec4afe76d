"""App objects shared by several tests, written once against the ws-sync API.

Each builder takes the backend module `m` (``ws_sync`` or ``tether.sync``) and defines its
classes with `m`'s decorators, exactly as an app would after ``import ws_sync as m``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def notes_class(m: ModuleType, key: str = "NOTES", **sync_options: Any) -> type:
    """A notes list with a title: ADD / RENAME / NOOP actions, a derived read-only `total`."""

    class Notes:
        @m.sync_all(key, **sync_options)
        def __init__(self) -> None:
            self.title = "T"
            self.notes: list[str] = []

        @property
        def total(self) -> int:
            return len(self.notes)

        @m.remote_action("ADD")
        async def add(self, note):
            self.notes.append(note)
            await self.sync()

        @m.remote_action("RENAME")
        async def rename(self, title):
            self.title = title
            await self.sync()

        @m.remote_action("REPORT")
        async def report(self):
            """Sends the current title back as a toast (and syncs nothing)."""
            await self.sync.toast(self.title)

    return Notes


def build_notes(m: ModuleType, session: Any) -> Any:
    return notes_class(m)()
