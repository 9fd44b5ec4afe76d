"""Sessions across sockets: takeover, server-side disconnect, reconnect resync, SessionState hooks,
session_context in handlers, Syncs created inside an action."""

from __future__ import annotations

import pytest

from .apps import build_notes, notes_class
from .harness import R5_TAKEOVER

EMPTY = {"title": "T", "notes": [], "total": 0}


async def test_takeover_tells_and_closes_the_old_socket(make_app) -> None:
    app = await make_app(build_notes)
    old = await app.connect("s1")
    await old.expect("_SET:NOTES")
    await app.connect("s1")
    message = await old.expect("_DISCONNECT")
    assert isinstance(message, str) and message
    assert await old.expect_closed() == []


@pytest.mark.tether_only(R5_TAKEOVER)
async def test_takeover_new_socket_keeps_working(make_app) -> None:
    app = await make_app(build_notes)
    first = await app.connect("s1")
    await first.expect("_SET:NOTES")
    await first.action("NOTES", "ADD", note="by first")
    await first.expect("_PATCH:NOTES")

    second = await app.connect("s1")
    await first.expect("_DISCONNECT")
    await first.expect_closed()
    assert await second.expect("_SET:NOTES") == {"title": "T", "notes": ["by first"], "total": 1}
    # the old socket's handler has finished: it must not have touched the new socket
    await app.until(lambda: app.endpoints_done == 1, "the first socket's endpoint to return")
    await second.action("NOTES", "ADD", note="by second")
    await second.expect("_PATCH:NOTES")
    assert second.state["NOTES"]["notes"] == ["by first", "by second"]
    assert app.sessions["s1"].is_connected

    # and again, from the second to a third socket
    third = await app.connect("s1")
    await second.expect("_DISCONNECT")
    await second.expect_closed()
    await third.expect("_SET:NOTES")
    await app.until(lambda: app.endpoints_done == 2, "the second socket's endpoint to return")
    assert (await third.get_strict("NOTES"))["total"] == 2
    assert app.sessions["s1"].is_connected


async def test_server_side_disconnect(make_app) -> None:
    def build(m, session):
        class Kickable(notes_class(m)):
            @m.remote_action("KICK")
            async def kick(self):
                await m.session_context.get().disconnect("bye")

        return Kickable()

    app = await make_app(build)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    await c.action("NOTES", "KICK")
    assert await c.expect("_DISCONNECT") == "bye"
    assert await c.expect_closed() == []
    await app.wait_disconnected("s1")

    again = await app.connect("s1")
    assert await again.expect("_SET:NOTES") == EMPTY


async def test_reconnect_resyncs_the_current_state(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    await c.action("NOTES", "ADD", note="one")
    await c.expect("_PATCH:NOTES")
    await c.close()
    await app.wait_disconnected("s1")

    obj = app.obj("s1")
    obj.notes.append("offline")
    obj.title = "changed"
    await obj.sync()  # nobody connected: a no-op, and no error

    again = await app.connect("s1")
    assert await again.expect("_SET:NOTES") == {
        "title": "changed",
        "notes": ["one", "offline"],
        "total": 2,
    }
    await again.action("NOTES", "ADD", note="two")
    await again.expect("_PATCH:NOTES")
    assert again.state["NOTES"] == {
        "title": "changed",
        "notes": ["one", "offline", "two"],
        "total": 3,
    }


async def test_session_state_hooks(make_app) -> None:
    log: list[object] = []

    def build(m, session):
        notes = notes_class(m)()

        class State(m.SessionState):
            async def on_connect(self):
                log.append(("connect", m.session_context.get() is session))
                await notes.sync.toast("welcome")

            async def on_disconnect(self):
                log.append("disconnect")
                disconnected.set()

        session.state = State()
        return notes

    app = await make_app(build)
    disconnected = app.event()
    c = await app.connect("s1")
    # on_connect runs after the initial _SETs
    assert await c.expect("_SET:NOTES") == EMPTY
    assert await c.expect_toast("default") == "welcome"
    await c.close()
    await app.wait_event(disconnected, "on_disconnect")
    assert log == [("connect", True), "disconnect"]

    disconnected.clear()
    again = await app.connect("s1")
    await again.expect("_SET:NOTES")
    assert await again.expect_toast("default") == "welcome"
    assert log == [("connect", True), "disconnect", ("connect", True)]


async def test_handlers_run_in_the_session_context_and_can_create_syncs(make_app) -> None:
    def build(m, session):
        class Child:
            def __init__(self, key) -> None:
                self.value = 0
                self.sync = m.Sync.all(self, key)

            @m.remote_action("INC")
            async def inc(self):
                self.value += 1
                await self.sync()

        class Parent:
            @m.sync_only("PARENT", children=...)
            def __init__(self) -> None:
                self.children: list[str] = []
                self._kids: list[Child] = []
                self._context_ok: list[bool] = []

            @m.remote_action("SPAWN")
            async def spawn(self, key):
                self._context_ok.append(m.session_context.get() is session)
                self._kids.append(Child(key))
                self.children.append(key)
                await self.sync()

        return Parent()

    app = await make_app(build)
    c = await app.connect("s1")
    assert await c.expect("_SET:PARENT") == {"children": []}
    await c.action("PARENT", "SPAWN", key="KID")
    await c.expect("_PATCH:PARENT")
    assert c.state["PARENT"] == {"children": ["KID"]}
    assert app.obj("s1")._context_ok == [True]

    assert await c.get_strict("KID") == {"value": 0}
    await c.action("KID", "INC")
    assert await c.expect("_PATCH:KID") == [{"op": "replace", "path": "/value", "value": 1}]

    # the new object is part of the session: sent on the next connect, after PARENT
    await c.close()
    await app.wait_disconnected("s1")
    again = await app.connect("s1")
    assert await again.expect("_SET:PARENT") == {"children": ["KID"]}
    assert await again.expect("_SET:KID") == {"value": 1}
