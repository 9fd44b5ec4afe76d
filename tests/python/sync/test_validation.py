"""Pydantic validation in tether.sync (ws-sync 0.6.9 has none): typed attributes on incoming
_SET/_PATCH (coercion; invalid → error toast, attribute unchanged, a correcting _SET), pydantic
models/dataclasses/TypedDicts as attribute types, BaseModel objects, action/task parameters.

No ``from __future__ import annotations`` here: the classes are local and their annotations must
stay real objects for the server to read them.
"""

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field, PrivateAttr
from typing_extensions import TypedDict

pytestmark = pytest.mark.pydantic


class Item(BaseModel):
    name: str
    qty: int = 1


@dataclass
class Point:
    x: int
    y: int


class Where(TypedDict):
    lat: float
    lng: float


async def expect_rejected(c, key: str) -> str:
    """An invalid update: an error toast and a correcting ``_SET:KEY``, in either order."""
    got = await c.expect_frames(["_TOAST", f"_SET:{key}"])
    assert got["_TOAST"]["type"] == "error", got
    return got["_TOAST"]["message"]


# ---------------------------------------------------------------------------------------------
# typed attributes


async def test_plain_class_annotations_coerce_and_reject(make_app) -> None:
    def build(m, session):
        class Counter:
            count: int
            ratio: float
            tags: list[str]

            def __init__(self) -> None:
                self.count = 0
                self.ratio = 0.5
                self.tags = []
                self.sync = m.Sync.all(self, "COUNTER")

        return Counter()

    app = await make_app(build)
    c = await app.connect("s1")
    obj = app.obj("s1")
    assert await c.expect("_SET:COUNTER") == {"count": 0, "ratio": 0.5, "tags": []}

    await c.send("_SET:COUNTER", {"count": "5", "ratio": "1.5", "tags": ["a", "b"]})
    assert await c.get("COUNTER") == {"count": 5, "ratio": 1.5, "tags": ["a", "b"]}
    assert (obj.count, obj.ratio, obj.tags) == (5, 1.5, ["a", "b"])
    assert type(obj.count) is int and type(obj.ratio) is float

    await c.send("_PATCH:COUNTER", [{"op": "replace", "path": "/count", "value": "7"}])
    assert (await c.get("COUNTER"))["count"] == 7
    assert obj.count == 7 and type(obj.count) is int

    # invalid: toast, attribute unchanged, the client is corrected with the full state
    await c.send("_PATCH:COUNTER", [{"op": "replace", "path": "/count", "value": "abc"}])
    message = await expect_rejected(c, "COUNTER")
    assert "count" in message, message
    assert obj.count == 7
    assert c.state["COUNTER"] == {"count": 7, "ratio": 1.5, "tags": ["a", "b"]}

    await c.send("_PATCH:COUNTER", [{"op": "add", "path": "/tags/-", "value": {"no": "str"}}])
    await expect_rejected(c, "COUNTER")
    assert obj.tags == ["a", "b"]
    assert c.state["COUNTER"]["tags"] == ["a", "b"]

    await c.send("_SET:COUNTER", {"count": 1, "ratio": "not a number", "tags": []})
    await expect_rejected(c, "COUNTER")
    assert obj.ratio == 1.5
    assert c.state["COUNTER"] == {"count": obj.count, "ratio": 1.5, "tags": obj.tags}


async def test_model_dataclass_and_typeddict_attributes(make_app) -> None:
    def build(m, session):
        class Cart:
            item: Item
            items: list[Item]
            origin: Point
            where: Where

            def __init__(self) -> None:
                self.item = Item(name="a")
                self.items = []
                self.origin = Point(0, 0)
                self.where = {"lat": 1.0, "lng": 2.0}
                self.sync = m.Sync.all(self, "CART")

            @m.remote_action("MORE")
            async def more(self):
                self.item.qty += 1
                await self.sync()

        return Cart()

    app = await make_app(build)
    c = await app.connect("s1")
    obj = app.obj("s1")
    # models and dataclasses go out as JSON
    assert await c.expect("_SET:CART") == {
        "item": {"name": "a", "qty": 1},
        "items": [],
        "origin": {"x": 0, "y": 0},
        "where": {"lat": 1.0, "lng": 2.0},
    }

    await c.send("_PATCH:CART", [{"op": "replace", "path": "/item/qty", "value": "3"}])
    await c.send("_PATCH:CART", [{"op": "replace", "path": "/origin", "value": {"x": "1", "y": 2}}])
    await c.send("_PATCH:CART", [{"op": "replace", "path": "/where/lat", "value": "5"}])
    await c.get("CART")
    assert isinstance(obj.item, Item) and obj.item == Item(name="a", qty=3)
    assert isinstance(obj.origin, Point) and obj.origin == Point(1, 2)
    assert obj.where == {"lat": 5.0, "lng": 2.0}

    state = dict(c.state["CART"], items=[{"name": "b", "qty": "2"}])
    await c.send("_SET:CART", state)
    assert (await c.get("CART"))["items"] == [{"name": "b", "qty": 2}]
    assert obj.items == [Item(name="b", qty=2)]
    assert all(isinstance(i, Item) for i in obj.items)

    await c.action("CART", "MORE")
    await c.wait_state("CART", lambda s: s["item"]["qty"] == 4, "MORE synced")

    await c.send("_PATCH:CART", [{"op": "replace", "path": "/item/qty", "value": "many"}])
    await expect_rejected(c, "CART")
    assert obj.item == Item(name="a", qty=4)
    assert c.state["CART"]["item"] == {"name": "a", "qty": 4}

    await c.send("_PATCH:CART", [{"op": "remove", "path": "/origin/y"}])
    await expect_rejected(c, "CART")
    assert obj.origin == Point(1, 2)
    assert c.state["CART"]["origin"] == {"x": 1, "y": 2}


async def test_pydantic_model_object(make_app) -> None:
    def build(m, session):
        class Profile(BaseModel):
            name: str = "ann"
            age: int = 30
            _sync: Any = PrivateAttr(default=None)

            @m.remote_action("BIRTHDAY")
            async def birthday(self):
                self.age += 1
                await self._sync()

        profile = Profile()
        profile._sync = m.Sync.all(profile, "PROFILE")
        return profile

    app = await make_app(build)
    c = await app.connect("s1")
    profile = app.obj("s1")
    assert await c.expect("_SET:PROFILE") == {"name": "ann", "age": 30}

    await c.send("_PATCH:PROFILE", [{"op": "replace", "path": "/age", "value": "31"}])
    assert await c.get("PROFILE") == {"name": "ann", "age": 31}
    assert profile.age == 31 and type(profile.age) is int

    await c.action("PROFILE", "BIRTHDAY")
    await c.wait_state("PROFILE", lambda s: s["age"] == 32, "BIRTHDAY synced")

    await c.send("_PATCH:PROFILE", [{"op": "replace", "path": "/age", "value": "old"}])
    await expect_rejected(c, "PROFILE")
    assert profile.age == 32
    assert c.state["PROFILE"] == {"name": "ann", "age": 32}

    await c.send("_SET:PROFILE", {"name": "bob", "age": "33"})
    assert await c.get("PROFILE") == {"name": "bob", "age": 33}
    assert (profile.name, profile.age) == ("bob", 33)


# ---------------------------------------------------------------------------------------------
# action and task parameters


def build_shop(m, session):
    class Shop:
        @m.sync_all("SHOP", toCamelCase=True)
        def __init__(self) -> None:
            self.total = 0
            self.last_label = ""
            self._calls: list[tuple] = []

        @m.remote_action("BUY")
        async def buy(self, qty: Annotated[int, Field(gt=0)], note: str = "none"):
            self._calls.append(("BUY", qty, note))
            self.total += qty
            await self.sync()

        @m.remote_action("LABEL")
        async def label(self, new_label: str = Field(default="x", max_length=5)):
            self._calls.append(("LABEL", new_label))
            self.last_label = new_label
            await self.sync()

        @m.remote_action("ADD_ITEM")
        async def add_item(self, item: Item, where: Point):
            self._calls.append(("ADD_ITEM", item, where))

        @m.remote_task("FILL")
        async def fill(self, n: int):
            self._calls.append(("FILL", n))
            self.total += n
            await self.sync()

    return Shop()


async def test_action_params_are_validated(make_app) -> None:
    app = await make_app(build_shop)
    c = await app.connect("s1")
    obj = app.obj("s1")
    assert await c.expect("_SET:SHOP") == {"total": 0, "lastLabel": ""}

    # coerced, default applied, extra keys ignored
    await c.action("SHOP", "BUY", qty="3", junk=True)
    assert await c.expect("_PATCH:SHOP") == [{"op": "replace", "path": "/total", "value": 3}]
    assert obj._calls == [("BUY", 3, "none")]
    assert type(obj._calls[0][1]) is int

    for bad in ({"qty": 0}, {"qty": "x"}, {}, {"qty": 1, "note": ["no"]}):
        await c.action("SHOP", "BUY", **bad)
        message = await c.expect_toast("error")
        assert names_action(message, "BUY"), message
    assert obj._calls == [("BUY", 3, "none")], "the handler ran despite invalid parameters"
    assert await c.get_strict("SHOP") == {"total": 3, "lastLabel": ""}

    await c.action("SHOP", "ADD_ITEM", item={"name": "n", "qty": "2"}, where={"x": 1, "y": "2"})
    await c.get_strict("SHOP")
    assert obj._calls[-1] == ("ADD_ITEM", Item(name="n", qty=2), Point(1, 2))


def names_action(message: str, name: str) -> bool:
    return name in message or "_ACTION:" in message


async def test_action_params_camel_case_aliases_and_field_defaults(make_app) -> None:
    app = await make_app(build_shop)
    c = await app.connect("s1")
    obj = app.obj("s1")
    await c.expect("_SET:SHOP")

    await c.action("SHOP", "LABEL", newLabel="abc")  # the camelCase alias
    await c.wait_state("SHOP", lambda s: s["lastLabel"] == "abc", "LABEL by alias")
    await c.action("SHOP", "LABEL", new_label="de")  # the Python name
    await c.wait_state("SHOP", lambda s: s["lastLabel"] == "de", "LABEL by name")
    await c.action("SHOP", "LABEL")  # the Field default
    await c.wait_state("SHOP", lambda s: s["lastLabel"] == "x", "LABEL default")
    assert obj._calls == [("LABEL", "abc"), ("LABEL", "de"), ("LABEL", "x")]

    await c.action("SHOP", "LABEL", newLabel="too long")  # max_length=5
    await c.expect_toast("error")
    assert obj._calls[-1] == ("LABEL", "x")
    assert (await c.get_strict("SHOP"))["lastLabel"] == "x"


async def test_task_params_are_validated(make_app) -> None:
    app = await make_app(build_shop)
    c = await app.connect("s1")
    obj = app.obj("s1")
    await c.expect("_SET:SHOP")

    await c.start_task("SHOP", "FILL", n="many")
    message = await c.expect_toast("error")
    assert "FILL" in message or "_TASK_START:" in message, message
    await c.get_strict("SHOP")
    assert obj._calls == []

    await c.start_task("SHOP", "FILL", n="2")
    await c.wait_state("SHOP", lambda s: s["total"] == 2, "FILL to run")
    assert obj._calls == [("FILL", 2)]
