"""Features of ws-sync HEAD that 0.6.9 lacks and tether.sync has: default keys (class name),
bare @remote_action / @remote_task (method name), sync_key_scope key prefixes."""

from __future__ import annotations

import asyncio

import pytest

from .harness import R7_HEAD_EXTRAS

pytestmark = pytest.mark.tether_only(R7_HEAD_EXTRAS)


def todo_class(m):
    class Todo:
        @m.sync_all(expose_running_tasks=True)
        def __init__(self) -> None:
            self.items: list[str] = []
            self._log: list[str] = []

        @m.remote_action
        async def add_item(self, text):
            self.items.append(text)
            await self.sync()

        @m.remote_action()
        async def clear_items(self):
            self.items = []
            await self.sync()

        @m.remote_task
        async def crunch(self):
            self._log.append("crunch start")
            await asyncio.Event().wait()

        @crunch.cancel
        async def stop_crunch(self):
            self._log.append("cancel handler")

    return Todo


async def test_default_key_and_bare_decorators(make_app) -> None:
    app = await make_app(lambda m, s: todo_class(m)())
    c = await app.connect("s1")
    assert await c.expect("_SET:Todo") == {"items": [], "running_tasks": []}

    await c.action("Todo", "add_item", text="x")  # the method name, not camel-cased
    await c.expect("_PATCH:Todo")
    assert c.state["Todo"]["items"] == ["x"]
    await c.action("Todo", "clear_items")
    await c.expect("_PATCH:Todo")
    assert c.state["Todo"]["items"] == []

    await c.start_task("Todo", "crunch")
    await c.wait_state("Todo", lambda s: s["running_tasks"] == ["crunch"], "crunch running")
    await c.cancel_task("Todo", "crunch")
    await c.wait_state("Todo", lambda s: s["running_tasks"] == [], "crunch cancelled")
    obj = app.obj("s1")
    await app.until(lambda: len(obj._log) == 2, "the cancel handler to have run")
    assert obj._log == ["crunch start", "cancel handler"]


async def test_default_key_of_sync_only(make_app) -> None:
    def build(m, session):
        class Gauge:
            @m.sync_only(level=..., _toCamelCase=True)
            def __init__(self) -> None:
                self.level = 3
                self.unsynced = "x"

        return Gauge()

    app = await make_app(build)
    c = await app.connect("s1")
    assert await c.expect("_SET:Gauge") == {"level": 3}


async def test_sync_key_scope_prefixes_keys(make_app) -> None:
    class Plain:
        def __init__(self, v) -> None:
            self.v = v

    def build(m, session):
        keep = []
        with m.sync_key_scope("p"):
            a = Plain(1)
            keep.append(m.Sync.all(a, "A"))
            with m.sync_key_scope("q"):
                b = Plain(2)
                keep.append(m.Sync.all(b, "B"))
            todo = todo_class(m)()
        outside = Plain(3)
        keep.append(m.Sync.all(outside, "C"))
        return {"todo": todo, "keep": keep, "a": a}

    app = await make_app(build)
    c = await app.connect("s1")
    assert await c.expect("_SET:p/A") == {"v": 1}
    assert await c.expect("_SET:p/q/B") == {"v": 2}
    assert await c.expect("_SET:p/Todo") == {"items": [], "running_tasks": []}
    assert await c.expect("_SET:C") == {"v": 3}

    await c.action("p/Todo", "add_item", text="scoped")
    await c.expect("_PATCH:p/Todo")
    assert c.state["p/Todo"]["items"] == ["scoped"]
    await c.send("_PATCH:p/A", [{"op": "replace", "path": "/v", "value": 10}])
    assert await c.get_strict("p/A") == {"v": 10}
    assert app.obj("s1")["a"].v == 10
