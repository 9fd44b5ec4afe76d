"""The native half of `tether.sync`'s state (`tether._native.SyncSession`, the tether-sync engine
plus the walk of Python values): the diff it makes from Python values (plain and pydantic), the
atomic client patches it applies, and the errors it raises. `Snap` drives one key of a connected
session the way `tether.sync.Sync` does (`set` for a full state, `sync` for a patch).

Randomized cases use a fixed seed, so a failure reproduces; `jsonpatch` (python-json-patch, the
library ws-sync uses) is the oracle that applies our patches.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonpatch
import pytest
from pydantic import BaseModel, Field, field_serializer
from tether import _native
from tether.sync._types import walkable_model

SEED = 20261122


def parts(state: dict[str, Any]) -> list[tuple[str, Any]]:
    return list(state.items())


def frame(text: str | None) -> Any:
    assert text is not None
    return json.loads(text)


class Snap:
    """One key `K` of a connected engine session; frames come back as text."""

    def __init__(self, model_check: Any = None) -> None:
        self.engine = _native.SyncSession(model_check=model_check)
        self.engine.register_value("K", {}, pull_state=True)
        self.engine.handle_connect(1)
        self.drain()

    def drain(self) -> list[Any]:
        out = []
        while (item := self.engine.poll_output()) is not None:
            if item[0] != "log":
                out.append(item)
        return out

    def texts(self) -> list[str]:
        return [item[2] for item in self.drain() if item[0] == "text"]

    def set_frame(self, event: str, parts: list[tuple[Any, ...]]) -> str:
        assert event == "_SET:K"
        self.engine.set("K", parts)
        (text,) = self.texts()
        return text

    def patch_frame(self, event: str, parts: list[tuple[Any, ...]]) -> str | None:
        assert event == "_PATCH:K"
        sent = self.engine.sync("K", parts)
        texts = self.texts()
        assert len(texts) == int(sent), texts
        return texts[0] if texts else None

    def apply_patch(self, ops: Any) -> list[str]:
        """A client `_PATCH:K`: the top-level keys it touched; ValueError with the toast's text
        when the engine refused it."""
        self.engine.handle_text(1, json.dumps({"type": "_PATCH:K", "data": ops}))
        out = self.drain()
        events = [item[1] for item in out if item[0] == "event"]
        if events:
            (ev,) = events
            assert ev["type"] == "patched", ev
            return ev["keys"]
        (toast,) = [json.loads(item[2]) for item in out if item[0] == "text"]
        assert toast["type"] == "_TOAST", toast
        raise ValueError(toast["data"]["message"])

    def get(self, key: str) -> Any:
        return self.engine.field("K", key)

    def to_python(self) -> Any:
        return self.engine.state("K")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-(2**40), 2**40)
    if kind == 3:
        return rng.choice([0.5, -1.25, 1e300, 3.0])
    if kind == 4:
        return rng.choice(["", "a", "ü/~x", "a/b", "~1", "日本"])
    if kind in (5, 6):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ["a", "b", "c/d", "e~f", "", "ü"]
    return {k: random_value(rng, depth + 1) for k in rng.sample(keys, rng.randrange(4))}


def mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A copy of `value` with a few random edits (insertions, removals, replacements)."""
    if isinstance(value, list) and value and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        op = rng.randrange(3)
        if op == 0:
            out.insert(i, random_value(rng, depth + 1))
        elif op == 1:
            del out[i]
        else:
            out[i] = mutate(rng, out[i], depth + 1)
        return out
    if isinstance(value, dict) and value and rng.random() < 0.7:
        out = dict(value)
        k = rng.choice(list(out))
        op = rng.randrange(3)
        if op == 0:
            del out[k]
        elif op == 1:
            out[k + "x"] = random_value(rng, depth + 1)
        else:
            out[k] = mutate(rng, out[k], depth + 1)
        return out
    return random_value(rng, depth)


def test_random_diffs_apply_to_the_new_state() -> None:
    rng = random.Random(SEED)
    for _ in range(400):
        old = {"s": random_value(rng), "t": random_value(rng)}
        snap = Snap()
        assert frame(snap.set_frame("_SET:K", parts(old))) == {"type": "_SET:K", "data": old}
        new = {"s": mutate(rng, old["s"]), "t": mutate(rng, old["t"])}
        text = snap.patch_frame("_PATCH:K", parts(new))
        if new == old and json.dumps(new) == json.dumps(old):
            assert text is None
            continue
        if text is None:  # equal as Python values but not as JSON (1 vs 1.0, True vs 1): fine
            assert json.loads(json.dumps(new)) == json.loads(json.dumps(old))
            continue
        f = frame(text)
        assert f["type"] == "_PATCH:K"
        patched = jsonpatch.apply_patch(copy.deepcopy(old), f["data"])
        assert patched == new
        assert snap.to_python() == new
        assert snap.patch_frame("_PATCH:K", parts(new)) is None, "a second sync sends nothing"


def test_one_insert_in_a_long_list_is_one_op() -> None:
    items = [{"id": i, "tags": ["a"]} for i in range(1000)]
    snap = Snap()
    snap.set_frame("_SET:K", [("items", items)])
    items.insert(500, {"id": -1, "tags": []})
    ops = frame(snap.patch_frame("_PATCH:K", [("items", items)]))["data"]
    assert ops == [{"op": "add", "path": "/items/500", "value": {"id": -1, "tags": []}}]


def test_keys_and_numbers_at_the_fast_paths_edges() -> None:
    # Many dicts share their key objects (the walk remembers a key's UTF-8 by object); one
    # renames a key to another of the same length, one gets an equal key that is another object,
    # and numbers sit at the edges of the one-call int comparison (i64, u64, beyond, bool, float).
    items = [{"id": i, "név": "é" * (i % 20), "n": 2**63 - 1 - i} for i in range(300)]
    snap = Snap()
    snap.set_frame("_SET:K", [("items", items)])
    assert snap.patch_frame("_PATCH:K", [("items", items)]) is None
    old = json.loads(json.dumps(items))
    items[10] = {"ix": 10, "név": items[10]["név"], "n": items[10]["n"]}  # same length, renamed
    items[11] = {
        str(bytearray(b"id"), "ascii"): 11,
        "név": items[11]["név"],
        "n": items[11]["n"],
    }  # equal
    items[12]["n"] = 2**63  # beyond i64, within u64
    items[13]["n"] = True  # a bool is not the number 1
    items[14]["id"] = 14.0  # a float prints differently from the int
    items[15]["név"] = "é" * 14 + "ee"  # as many characters, not as many bytes
    ops = frame(snap.patch_frame("_PATCH:K", [("items", items)]))["data"]
    assert not any(op["path"].startswith("/items/11") for op in ops), ops
    for op in (
        {"op": "replace", "path": "/items/12/n", "value": 2**63},
        {"op": "replace", "path": "/items/13/n", "value": True},
        {"op": "replace", "path": "/items/14/id", "value": 14.0},
        {"op": "replace", "path": "/items/15/név", "value": "é" * 14 + "ee"},
    ):
        assert op in ops, ops
    new = json.loads(json.dumps(items))
    assert jsonpatch.apply_patch({"items": old}, ops) == {"items": new}
    assert snap.to_python()["items"] == new
    assert snap.patch_frame("_PATCH:K", [("items", items)]) is None
    items[12]["n"] = 2**64  # beyond u64: refused, naming where
    with pytest.raises(ValueError, match="/items/12/n"):
        snap.patch_frame("_PATCH:K", [("items", items)])


class Item(BaseModel):
    id: int
    text: str
    tags: list[str] = Field(default_factory=list)


class Shouting(BaseModel):
    text: str

    @field_serializer("text")
    def loud(self, v: str) -> str:
        return v.upper()


def typed(value: Any, ta: Any) -> tuple[Any, Any]:
    return value, lambda v: ta.dump_json(v)


def test_pydantic_models_are_walked_and_dumped_the_same() -> None:
    from pydantic import TypeAdapter

    ta = TypeAdapter(list[Item])
    items = [Item(id=i, text=f"t{i}", tags=["x"]) for i in range(50)]
    snap = Snap(walkable_model)
    set_ = frame(snap.set_frame("_SET:K", [("items", *typed(items, ta))]))
    assert set_["data"]["items"] == json.loads(ta.dump_json(items))
    assert snap.patch_frame("_PATCH:K", [("items", *typed(items, ta))]) is None
    items[7].text = "changed"
    items[9].tags.append("y")
    ops = frame(snap.patch_frame("_PATCH:K", [("items", *typed(items, ta))]))["data"]
    assert ops == [
        {"op": "replace", "path": "/items/7/text", "value": "changed"},
        {"op": "add", "path": "/items/9/tags/1", "value": "y"},
    ]
    assert snap.to_python()["items"] == json.loads(ta.dump_json(items))


def test_models_the_walk_cannot_read_are_dumped() -> None:
    from datetime import datetime, timezone

    from pydantic import TypeAdapter

    assert walkable_model(Item)
    assert not walkable_model(Shouting)
    ta = TypeAdapter(list[Shouting])
    values = [Shouting(text="hi")]
    snap = Snap(walkable_model)
    assert frame(snap.set_frame("_SET:K", [("v", *typed(values, ta))]))["data"] == {
        "v": [{"text": "HI"}]
    }
    assert snap.patch_frame("_PATCH:K", [("v", *typed(values, ta))]) is None
    values[0].text = "yo"
    ops = frame(snap.patch_frame("_PATCH:K", [("v", *typed(values, ta))]))["data"]
    assert ops == [{"op": "replace", "path": "/v/0/text", "value": "YO"}]

    when = TypeAdapter(datetime)
    t = datetime(2026, 11, 22, tzinfo=timezone.utc)
    assert frame(snap.set_frame("_SET:K", [("t", *typed(t, when))]))["data"] == {
        "t": "2026-11-22T00:00:00Z"
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "/x is the float NaN"),
        ({"a": [1, {2: 3}]}, "/x/a/1 has a key of type int"),
        ({"a": object()}, "/x/a is a object, which is not JSON"),
        (2**70, "int beyond 64 bits"),
    ],
)
def test_values_that_are_not_json_are_refused_with_the_path(value: Any, message: str) -> None:
    snap = Snap()
    with pytest.raises((TypeError, ValueError), match=message.replace("/", "/")):
        snap.set_frame("_SET:K", [("x", value)])


def test_cycles_are_refused_not_overflowed() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nests deeper"):
        Snap().set_frame("_SET:K", [("x", loop)])


def test_client_patches_are_atomic_and_lenient() -> None:
    snap = Snap()
    snap.set_frame("_SET:K", [("a/b", 1), ("list", [1, 2]), ("n", 0)])
    assert snap.apply_patch([{"op": "replace", "path": "/a/b", "value": 2}]) == ["a/b"]
    assert snap.get("a/b") == 2
    before = snap.to_python()
    with pytest.raises(ValueError, match="could not apply"):
        snap.apply_patch(
            [
                {"op": "replace", "path": "/n", "value": 5},
                {"op": "remove", "path": "/list/9"},
            ]
        )
    assert snap.to_python() == before, "a failing patch changes nothing"
    with pytest.raises(ValueError, match="JSON Patch operations"):
        snap.apply_patch([{"op": "jump", "path": "/n"}])
    assert snap.to_python() == before
    assert snap.apply_patch([{"op": "replace", "path": "/", "value": {"n": 1}}]) == ["n"]
    # A root replace with a non-object reaches no key; tether.sync then corrects the client
    # with a full `_SET` (tests/python/sync: test_bad_state_update_becomes_a_toast).
    assert snap.apply_patch([{"op": "replace", "path": "", "value": [1]}]) == []


def test_random_garbage_patches_never_crash() -> None:
    rng = random.Random(SEED)
    snap = Snap()
    snap.set_frame("_SET:K", [("a", {"b": [1, 2, 3]}), ("c", "x")])
    for _ in range(2000):
        op = {
            "op": rng.choice(["add", "remove", "replace", "move", "copy", "test", "x", 3]),
            "path": rng.choice(["", "/", "/a", "/a/b/1", "/a/b/-", "/c/d", "/zz", "a", 7]),
        }
        if rng.random() < 0.7:
            op["value"] = random_value(rng)
        if rng.random() < 0.3:
            op["from"] = rng.choice(["/a", "/c", "/a/b/0", "/nope"])
        try:
            snap.apply_patch([op])
        except (TypeError, ValueError):
            pass
        snap.to_python()  # still readable (a root replace may make it any JSON value)
    assert frame(snap.set_frame("_SET:K", [("a", 1)]))["data"] == {"a": 1}, "still answers"


def test_frames_come_from_the_engine_codec() -> None:
    snap = Snap()
    assert snap.engine.toast("info", "ü")
    assert snap.engine.send_event("_X", {"a": [1, None]})
    assert snap.texts() == [
        '{"type":"_TOAST","data":{"type":"info","message":"ü"}}',
        '{"type":"_X","data":{"a":[1,null]}}',
    ]
    assert _native.SYNC_REQUEST_USER_SESSION == '{"type":"_REQUEST_USER_SESSION"}'
    assert _native.sync_disconnect_frame("bye") == '{"type":"_DISCONNECT","data":"bye"}'
    with pytest.raises(ValueError, match="the float inf"):
        snap.engine.send_event("_X", float("inf"))
    with pytest.raises(ValueError, match="unknown toast type"):
        snap.engine.toast("loud", "x")


def test_without_pydantic_values_stay_plain_json() -> None:
    """pydantic is optional: with it unavailable, annotations are ignored and values are JSON."""
    import subprocess
    import sys

    script = """
import asyncio, json, sys
sys.modules["pydantic"] = None  # import pydantic now raises ImportError
from tether.sync import Session, Sync, remote_action
from tether.sync._types import HAVE_PYDANTIC
assert not HAVE_PYDANTIC

class Counter:
    count: int
    def __init__(self):
        self.count = 0
        self.sync = Sync.all(self, "C")
    @remote_action("ADD")
    async def add(self, n: int):
        self.count += n
        await self.sync()

class WS:
    sent = []
    async def send_text(self, t): self.sent.append(json.loads(t))

async def main():
    s = Session()
    with s:
        c = Counter()
    await s.new_connection(WS())
    s.engine.handle_text(s.engine.connection, '{"type":"_SET:C","data":{"count":"5"}}')
    await s.flush()
    assert c.count == "5", c.count  # no validation: taken as sent
    c.count = 1
    await c.sync._handle_action({"type": "ADD", "n": 2})
    assert WS.sent[-1] == {"type": "_PATCH:C", "data": [{"op": "replace", "path": "/count", "value": 3}]}
    print("ok")

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
