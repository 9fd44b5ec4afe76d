"""The ws-sync wire protocol over a real socket: _SET/_GET/_PATCH both ways, names and casing,
throttling, toasts, downloads, server actions, binary frames, the user/session handshake."""

from __future__ import annotations

import base64
import threading
from typing import Any

import jsonpatch
import pytest

from .apps import build_notes, notes_class
from .harness import R3_SET_KEYS, R7_HEAD_EXTRAS, submodule

# ---------------------------------------------------------------------------------------------
# connect, _GET, server _PATCH


async def test_initial_set_per_object_in_creation_order(make_app) -> None:
    class Plain:
        def __init__(self, **attrs: Any) -> None:
            self.__dict__.update(attrs)

    def build(m, session):
        second = Plain(count=2, label="b")
        first = Plain(items=[1, {"x": None}], flag=True)
        # creation order decides, not names or object creation
        s2 = m.Sync.only(second, "SECOND", count=...)
        s1 = m.Sync.all(first, "FIRST")
        return [(second, s2), (first, s1)]

    app = await make_app(build)
    c = await app.connect("s1")
    assert await c.expect("_SET:SECOND") == {"count": 2}
    assert await c.expect("_SET:FIRST") == {"items": [1, {"x": None}], "flag": True}


async def test_send_on_init_false_is_not_sent_but_answers_get(make_app) -> None:
    class Quiet:
        def __init__(self) -> None:
            self.v = 1

    def build(m, session):
        quiet = Quiet()
        quiet.sync = m.Sync.all(quiet, "QUIET", send_on_init=False)
        notes = notes_class(m)()
        return quiet, notes

    app = await make_app(build)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    assert await c.get_strict("QUIET") == {"v": 1}


async def test_get_returns_the_current_state(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    assert await c.expect("_SET:NOTES") == {"title": "T", "notes": [], "total": 0}
    obj = app.obj("s1")
    obj.notes.append("changed without sync")
    assert await c.get_strict("NOTES") == {
        "title": "T",
        "notes": ["changed without sync"],
        "total": 1,
    }


async def test_action_sends_a_patch(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")

    await c.action("NOTES", "ADD", note="hello")
    await c.expect("_PATCH:NOTES")
    assert c.state["NOTES"] == {"title": "T", "notes": ["hello"], "total": 1}

    await c.action("NOTES", "ADD", note="world")
    await c.expect("_PATCH:NOTES")
    assert c.state["NOTES"] == {"title": "T", "notes": ["hello", "world"], "total": 2}

    # a single changed scalar is one replace op
    await c.action("NOTES", "RENAME", title="new")
    assert await c.expect("_PATCH:NOTES") == [{"op": "replace", "path": "/title", "value": "new"}]
    assert app.obj("s1").title == "new"


async def test_sync_without_change_sends_nothing(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    await c.action("NOTES", "RENAME", title="T")  # same value: empty patch, no frame
    await c.get_strict("NOTES")


# ---------------------------------------------------------------------------------------------
# client _PATCH and _SET


async def test_client_patch_sets_attribute_without_echo(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    obj = app.obj("s1")

    patches = [
        [{"op": "replace", "path": "/title", "value": "from client"}],
        [{"op": "add", "path": "/notes/0", "value": "a"}],
    ]
    for patch in patches:
        c.state["NOTES"] = jsonpatch.apply_patch(c.state["NOTES"], patch)  # as a frontend does
        await c.send("_PATCH:NOTES", patch)
    await c.action("NOTES", "REPORT")
    # the next frame is REPORT's toast: no echo, no ack of the client's patches
    assert await c.expect_toast("default") == "from client"
    assert obj.title == "from client"
    assert obj.notes == ["a"]

    # the server's next sync diffs against the patched snapshot: only the new change goes out
    await c.action("NOTES", "ADD", note="b")
    patch = await c.expect("_PATCH:NOTES")
    assert all(op["path"] != "/title" for op in patch), patch
    assert c.state["NOTES"] == {"title": "from client", "notes": ["a", "b"], "total": 2}
    assert obj.notes == ["a", "b"]


async def test_client_patch_then_server_sync_reflects_it(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    patch = [{"op": "add", "path": "/notes/0", "value": "client note"}]
    c.state["NOTES"] = jsonpatch.apply_patch(c.state["NOTES"], patch)
    await c.send("_PATCH:NOTES", patch)
    await c.action("NOTES", "ADD", note="server note")
    await c.expect("_PATCH:NOTES")
    assert c.state["NOTES"]["notes"] == ["client note", "server note"]
    assert c.state["NOTES"]["total"] == 2
    assert await c.get_strict("NOTES") == c.state["NOTES"]


async def test_client_set_sets_attributes(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    await c.send("_SET:NOTES", {"title": "set", "notes": ["x", "y"]})
    assert await c.get_strict("NOTES") == {"title": "set", "notes": ["x", "y"], "total": 2}
    obj = app.obj("s1")
    assert (obj.title, obj.notes) == ("set", ["x", "y"])


@pytest.mark.tether_only(R3_SET_KEYS)
async def test_client_set_maps_camel_case_keys_to_attributes(make_app) -> None:
    class Profile:
        def __init__(self, m) -> None:
            self.user_name = "ann"
            self.age_years = 3
            self.sync = m.Sync.all(self, "PROFILE", toCamelCase=True)

    app = await make_app(lambda m, s: Profile(m))
    c = await app.connect("s1")
    assert await c.expect("_SET:PROFILE") == {"userName": "ann", "ageYears": 3}
    await c.send("_SET:PROFILE", {"userName": "bob", "ageYears": 4})
    assert await c.get("PROFILE") == {"userName": "bob", "ageYears": 4}
    obj = app.obj("s1")
    assert (obj.user_name, obj.age_years) == ("bob", 4)
    assert not hasattr(obj, "userName")


@pytest.mark.tether_only(R3_SET_KEYS)
async def test_client_set_maps_custom_names_to_attributes(make_app) -> None:
    class Doc:
        def __init__(self, m) -> None:
            self.title = "t"
            self.count = 0
            self.sync = m.Sync.only(self, "DOC", title="heading", count=...)

    app = await make_app(lambda m, s: Doc(m))
    c = await app.connect("s1")
    assert await c.expect("_SET:DOC") == {"heading": "t", "count": 0}
    await c.send("_SET:DOC", {"heading": "h", "count": 5})
    assert await c.get("DOC") == {"heading": "h", "count": 5}
    obj = app.obj("s1")
    assert (obj.title, obj.count) == ("h", 5)
    assert not hasattr(obj, "heading")


async def test_client_patch_maps_custom_and_camel_names(make_app) -> None:
    class Doc:
        def __init__(self, m) -> None:
            self.title = "t"
            self.page_count = 0
            self.sync = m.Sync.only(self, "DOC", title="heading", page_count=..., _toCamelCase=True)

    app = await make_app(lambda m, s: Doc(m))
    c = await app.connect("s1")
    assert await c.expect("_SET:DOC") == {"heading": "t", "pageCount": 0}
    await c.send(
        "_PATCH:DOC",
        [
            {"op": "replace", "path": "/heading", "value": "h"},
            {"op": "replace", "path": "/pageCount", "value": 9},
        ],
    )
    assert await c.get_strict("DOC") == {"heading": "h", "pageCount": 9}
    obj = app.obj("s1")
    assert (obj.title, obj.page_count) == ("h", 9)


# ---------------------------------------------------------------------------------------------
# names: toCamelCase, include/exclude, Sync.only


def test_to_camel_case_function(m) -> None:
    to_camel = submodule(m, "utils").toCamelCase
    cases = {
        "hello_world": "helloWorld",
        "user_id": "userId",
        "text": "text",
        "running_tasks": "runningTasks",
        "_private": "private",
        "snake_case_": "snakeCase",
        "alreadyCamel": "alreadycamel",
        "value_2x": "value2X",
        "": "",
    }
    assert {k: to_camel(k) for k in cases} == cases


async def test_nonblock_call(m) -> None:
    nonblock_call = submodule(m, "utils").nonblock_call

    async def coro(x):
        return x + 1

    def plain(x):
        return (x * 2, threading.get_ident())

    assert await nonblock_call(coro, 1) == 2
    value, ident = await nonblock_call(plain, 4)
    assert value == 8
    assert ident != threading.get_ident()


async def test_camel_case_keys_on_the_wire(make_app) -> None:
    class Cal:
        def __init__(self, m) -> None:
            self.current_day = "monday"
            self.day_count = 1
            self.sync = m.Sync.all(self, "CAL", toCamelCase=True, expose_running_tasks=True)

    app = await make_app(lambda m, s: Cal(m))
    c = await app.connect("s1")
    assert await c.expect("_SET:CAL") == {
        "currentDay": "monday",
        "dayCount": 1,
        "runningTasks": [],
    }


async def test_include_exclude_and_only(make_app) -> None:
    class Thing:
        def __init__(self) -> None:
            self.a = 1
            self.b = 2
            self.secret = "s"
            self._hidden = "h"
            self._private = "p"

        def method(self) -> None:  # callables are never synced
            pass

    def build(m, session):
        class Decorated:
            @m.sync("DECORATED", include={"b": ..., "c": "see"})
            def __init__(self) -> None:
                self.a, self.b, self.c = 1, 2, 3

        class CamelDecorated:
            @m.sync_all("CAMEL", exclude=["skip_me"], toCamelCase=True)
            def __init__(self) -> None:
                self.first_name = "f"
                self.skip_me = 0

        t1, t2, t3, t4 = Thing(), Thing(), Thing(), Thing()
        return [
            m.Sync.all(t1, "ALL"),
            m.Sync.all(t2, "MIXED", include={"_hidden": "hidden", "b": "bee"}, exclude=["secret"]),
            m.Sync.only(t3, "ONLY", a=..., secret="pssst"),
            m.Sync(t4, "CTOR", include={"b": "B"}),
            Decorated(),
            CamelDecorated(),
        ]

    app = await make_app(build)
    c = await app.connect("s1")
    assert await c.expect("_SET:ALL") == {"a": 1, "b": 2, "secret": "s"}
    assert await c.expect("_SET:MIXED") == {"a": 1, "bee": 2, "hidden": "h"}
    assert await c.expect("_SET:ONLY") == {"a": 1, "pssst": "s"}
    assert await c.expect("_SET:CTOR") == {"B": 2}
    assert await c.expect("_SET:DECORATED") == {"b": 2, "see": 3}
    assert await c.expect("_SET:CAMEL") == {"firstName": "f"}


# ---------------------------------------------------------------------------------------------
# throttling, toasts, downloads, server actions, binary


async def test_if_since_last_drops_a_sync_within_the_interval(make_app) -> None:
    def build(m, session):
        class Counter:
            @m.sync_only("COUNTER", n=...)
            def __init__(self) -> None:
                self.n = 0

            @m.remote_action("BUMP")
            async def bump(self):
                self.n += 1
                await self.sync(if_since_last=60)

            @m.remote_action("FLUSH")
            async def flush(self):
                await self.sync.sync()

        return Counter()

    app = await make_app(build)
    c = await app.connect("s1")
    assert await c.expect("_SET:COUNTER") == {"n": 0}
    await c.action("COUNTER", "BUMP")
    assert await c.expect("_PATCH:COUNTER") == [{"op": "replace", "path": "/n", "value": 1}]
    await c.action("COUNTER", "BUMP")  # within 60 s of the last sync: dropped, no frame
    await c.action("COUNTER", "FLUSH")
    assert await c.expect("_PATCH:COUNTER") == [{"op": "replace", "path": "/n", "value": 2}]
    assert app.obj("s1").n == 2


def box_class(m):
    class Box:
        @m.sync_only("BOX", n=...)
        def __init__(self) -> None:
            self.n = 0
            self._returned: list[str] = []

        @m.remote_action("NOTIFY")
        async def notify(self):
            self._returned.append(await self.sync.toast("hello", 42, type="success"))

        @m.remote_action("SAVE")
        async def save(self):
            self.n = 1
            await self.sync(toast="saved", type="info")

        @m.remote_action("DOWNLOAD")
        async def download(self):
            await self.sync.download("a.bin", b"\x00\x01hi\xff")

        @m.remote_action("PING")
        async def ping(self, n):
            await self.sync.send_action({"type": "PONG", "n": n})

        @m.remote_action("SEND_BLOB")
        async def send_blob(self):
            await self.sync.send_binary({"type": "BLOB", "name": "x.png"}, b"\x89PNG\x00\x01")

        @m.remote_action("UPLOAD")
        async def upload(self, data, name):
            self._returned.append((data, name))
            self.n = len(data)
            await self.sync()

    return Box


async def test_toast_download_and_send_action(make_app) -> None:
    app = await make_app(lambda m, s: box_class(m)())
    c = await app.connect("s1")
    await c.expect("_SET:BOX")

    await c.action("BOX", "NOTIFY")
    assert await c.expect("_TOAST") == {"type": "success", "message": "hello 42"}
    await c.get_strict("BOX")  # NOTIFY has returned
    assert app.obj("s1")._returned == ["hello 42"]

    await c.action("BOX", "SAVE")
    assert await c.expect("_PATCH:BOX") == [{"op": "replace", "path": "/n", "value": 1}]
    assert await c.expect("_TOAST") == {"type": "info", "message": "saved"}

    await c.action("BOX", "DOWNLOAD")
    data = await c.expect("_DOWNLOAD")
    assert data["filename"] == "a.bin"
    assert base64.b64decode(data["data"]) == b"\x00\x01hi\xff"

    await c.action("BOX", "PING", n=3)
    assert await c.expect("_ACTION:BOX") == {"type": "PONG", "n": 3}


async def test_send_binary_server_to_client(make_app) -> None:
    app = await make_app(lambda m, s: box_class(m)())
    c = await app.connect("s1")
    await c.expect("_SET:BOX")
    await c.action("BOX", "SEND_BLOB")
    assert await c.expect("_BIN_META") == {
        "type": "_ACTION:BOX",
        "metadata": {"type": "BLOB", "name": "x.png"},
    }
    assert await c.recv("the binary frame after _BIN_META") == b"\x89PNG\x00\x01"


async def test_binary_client_to_action(make_app) -> None:
    app = await make_app(lambda m, s: box_class(m)())
    c = await app.connect("s1")
    await c.expect("_SET:BOX")
    payload = bytes(range(256)) * 3
    await c.send_binary("_ACTION:BOX", {"type": "UPLOAD", "name": "f.bin"}, payload)
    assert await c.expect("_PATCH:BOX") == [{"op": "replace", "path": "/n", "value": 768}]
    ((data, name),) = app.obj("s1")._returned
    assert isinstance(data, bytes)
    assert (data, name) == (payload, "f.bin")


# ---------------------------------------------------------------------------------------------
# get_user_session, unknown events, isolation, API surface


async def test_get_user_session_handshake(make_app) -> None:
    seen: list[tuple[Any, Any]] = []

    async def endpoint(app, ws):
        await ws.accept()
        user, sess = await app.m.get_user_session(ws)
        seen.append((user, sess))
        if user is None:
            return
        await app.session_for(f"{user}:{sess}").handle_connection(ws)

    app = await make_app(build_notes, endpoint)

    c = await app.connect(None)
    assert await c.recv("_REQUEST_USER_SESSION") == {"type": "_REQUEST_USER_SESSION"}
    await c.send("_USER_SESSION", {"user": "u1", "session": "tab1"})
    await c.expect("_SET:NOTES")
    await c.action("NOTES", "ADD", note="n")
    await c.expect("_PATCH:NOTES")
    assert seen == [("u1", "tab1")]
    assert list(app.sessions) == ["u1:tab1"]

    wrong = await app.connect(None)
    assert await wrong.recv() == {"type": "_REQUEST_USER_SESSION"}
    await wrong.send("HELLO", {"user": "u1", "session": "tab1"})
    assert await wrong.expect_closed() == []

    empty = await app.connect(None)
    assert await empty.recv() == {"type": "_REQUEST_USER_SESSION"}
    await empty.send("_USER_SESSION", {"user": "", "session": "tab2"})
    assert await empty.expect_closed() == []

    assert seen[1:] == [(None, None), (None, None)]
    assert list(app.sessions) == ["u1:tab1"]


async def test_unknown_event_types_are_ignored(make_app) -> None:
    app = await make_app(build_notes)
    c = await app.connect("s1")
    await c.expect("_SET:NOTES")
    await c.send("_NO_SUCH_EVENT", {"x": 1})
    await c.send("_ACTION:NO_SUCH_KEY", {"type": "ADD", "note": "x"})
    await c.send("_PATCH:NO_SUCH_KEY", [{"op": "add", "path": "/x", "value": 1}])
    await c.send("_GET:NO_SUCH_KEY", {})
    assert await c.get_strict("NOTES") == {"title": "T", "notes": [], "total": 0}


async def test_sessions_are_isolated(make_app) -> None:
    app = await make_app(build_notes)
    a = await app.connect("a")
    b = await app.connect("b")
    await a.expect("_SET:NOTES")
    await b.expect("_SET:NOTES")
    await a.action("NOTES", "ADD", note="only a")
    await a.expect("_PATCH:NOTES")
    assert await b.get_strict("NOTES") == {"title": "T", "notes": [], "total": 0}
    assert app.obj("a").notes == ["only a"]
    assert app.obj("b").notes == []


API_069 = (
    "Session",
    "SessionState",
    "session_context",
    "Sync",
    "sync",
    "sync_all",
    "sync_only",
    "remote_action",
    "remote_task",
    "remote_task_cancel",
    "get_user_session",
)


def test_public_api(m) -> None:
    for name in API_069:
        assert hasattr(m, name), f"{m.__name__}.{name} is missing"
    assert submodule(m, "session").Session is m.Session
    assert submodule(m, "session").SessionState is m.SessionState
    assert submodule(m, "session").session_context is m.session_context
    assert submodule(m, "sync").Sync is m.Sync
    decorators = submodule(m, "decorators")
    for name in ("sync", "sync_all", "sync_only", "remote_action", "remote_task"):
        assert getattr(decorators, name) is getattr(m, name), name
    assert submodule(m, "id").get_user_session is m.get_user_session
    utils = submodule(m, "utils")
    assert callable(utils.toCamelCase) and callable(utils.nonblock_call)


@pytest.mark.tether_only(R7_HEAD_EXTRAS)
def test_public_api_extras(m) -> None:
    utils = submodule(m, "utils")
    assert m.toCamelCase is utils.toCamelCase
    assert m.nonblock_call is utils.nonblock_call
    assert callable(m.sync_key_scope)
