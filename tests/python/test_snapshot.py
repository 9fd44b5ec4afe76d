"""`tether._native.Snapshot`, the native half of `tether.sync`: the diff it makes from Python
values (plain and pydantic), the atomic client patches it applies, and the errors it raises.

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
        snap = _native.Snapshot()
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
    snap = _native.Snapshot()
    snap.set_frame("_SET:K", [("items", items)])
    items.insert(500, {"id": -1, "tags": []})
    ops = frame(snap.patch_frame("_PATCH:K", [("items", items)]))["data"]
    assert ops == [{"op": "add", "path": "/items/500", "value": {"id": -1, "tags": []}}]


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
    snap = _native.Snapshot(walkable_model)
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
    snap = _native.Snapshot(walkable_model)
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
    snap = _native.Snapshot()
    with pytest.raises((TypeError, ValueError), match=message.replace("/", "/")):
        snap.set_frame("_SET:K", [("x", value)])


def test_cycles_are_refused_not_overflowed() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nests deeper"):
        _native.Snapshot().set_frame("_SET:K", [("x", loop)])


def test_client_patches_are_atomic_and_lenient() -> None:
    snap = _native.Snapshot()
    snap.set_frame("_SET:K", [("a/b", 1), ("list", [1, 2]), ("n", 0)])
    assert snap.apply_patch([{"op": "replace", "path": "/a/b", "value": 2}]) == ["a/b"]
    assert snap.get("a/b") == 2
    before = snap.to_python()
    with pytest.raises(ValueError, match="cannot apply"):
        snap.apply_patch(
            [
                {"op": "replace", "path": "/n", "value": 5},
                {"op": "remove", "path": "/list/9"},
            ]
        )
    assert snap.to_python() == before, "a failing patch changes nothing"
    with pytest.raises(ValueError, match="must stay an object"):
        snap.apply_patch([{"op": "replace", "path": "", "value": [1]}])
    with pytest.raises(ValueError, match="not a JSON Patch"):
        snap.apply_patch([{"op": "jump", "path": "/n"}])
    assert snap.to_python() == before
    assert snap.apply_patch([{"op": "replace", "path": "/", "value": {"n": 1}}]) == ["n"]


def test_random_garbage_patches_never_crash() -> None:
    rng = random.Random(SEED)
    snap = _native.Snapshot()
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
        assert isinstance(snap.to_python(), dict)


def test_encode_frame() -> None:
    assert _native.encode_frame("_TOAST", {"type": "info", "message": "ü"}) == (
        '{"type":"_TOAST","data":{"type":"info","message":"ü"}}'
    )
    assert _native.encode_frame("_REQUEST_USER_SESSION", omit_data=True) == (
        '{"type":"_REQUEST_USER_SESSION"}'
    )
    with pytest.raises(ValueError, match="the float inf"):
        _native.encode_frame("_X", float("inf"))


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
    s.ws = WS()
    with s:
        c = Counter()
    await c.sync._set_state({"count": "5"})  # no validation: taken as sent
    assert c.count == "5", c.count
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
