"""Viz with ObservableValues: nested observables reach the Viz with their full path, and paths
follow the structure as it changes."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import FakeUI


class Point:
    def __init__(self, tag: Any) -> None:
        self.tag = tag


def viz_updates(ui: FakeUI, name: str) -> list[dict[str, Any]]:
    return [
        f["payload"]
        for f in ui.hero_frames()
        if f.get("component") == "viz" and f["payload"].get("variableName") == name
    ]


def compact(payload: dict[str, Any]) -> tuple[Any, ...]:
    options = payload["options"]
    rep = options.get("valueRepresentation") or {}
    return (payload["action"], options.get("path"), rep.get("value"), options.get("length"))


def sync(ui: FakeUI, tui: Any, viz: Any, marker: str) -> None:
    viz.show(marker, 0)
    ui.wait_for(lambda f: f.get("payload", {}).get("variableName") == marker)


def test_nested_observables_reach_the_viz_with_their_path(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    viz = tui.Viz(instance_id="nv")
    inner = tui.ObservableValue([1])
    deep = tui.ObservableValue({"k": 1})
    point = Point(tui.ObservableValue("a"))
    root = tui.ObservableValue({"inner": inner, "rows": [deep], "point": point})
    viz.show("root", root)
    inner.append(2)
    inner[0] = 5
    deep["k"] = 2
    point.tag.set("b")
    sync(ui, tui, viz, "m1")
    sent = [compact(p) for p in viz_updates(ui, "root")[1:]]
    assert sent == [
        ("append", ["inner", 1], 2, 2),
        ("setitem", ["inner", 0], 5, None),
        ("setitem", ["rows", 0, "k"], 2, None),
        ("setitem", ["point", "tag"], "b", None),  # a nested set() replaces it in its container
    ]
    nested_set = viz_updates(ui, "root")[-1]["options"]
    assert nested_set["valueRepresentation"]["observableTracked"] is True
    assert "keyRepresentation" not in nested_set  # an attribute, not a dict key
    inner.set([9])
    sync(ui, tui, viz, "m2")
    replaced = viz_updates(ui, "root")[-1]["options"]
    assert replaced["path"] == ["inner"]
    assert replaced["keyRepresentation"]["value"] == "inner"  # in a dict: the key's node


def test_paths_follow_structural_changes(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    viz = tui.Viz(instance_id="pv")
    a, b = tui.ObservableValue([]), tui.ObservableValue([])
    rows = tui.ObservableValue([a])
    viz.show("rows", rows)
    rows.insert(0, b)  # a moves from [0] to [1]; b is tracked from now on
    a.append("x")
    b.append("y")
    popped = rows.pop(1)  # a leaves the tree: its changes no longer reach the Viz
    popped.append("gone")
    b.append("z")
    sync(ui, tui, viz, "m")
    sent = [compact(p) for p in viz_updates(ui, "rows")[1:]]
    assert sent == [
        ("insert", [0], [], 1 + 1),
        ("append", [1, 0], "x", 1),
        ("append", [0, 0], "y", 1),
        ("pop", [1], "None", 1),
        ("append", [0, 1], "z", 2),
    ]


def test_observables_in_a_plain_value_and_shared_ones(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    viz = tui.Viz(instance_id="sv")
    shared = tui.ObservableValue([0])
    viz.show("plain", {"a": shared, "b": [shared]})  # not an observable at the root
    shared.append(1)
    sync(ui, tui, viz, "m")
    paths = sorted(p["options"]["path"] for p in viz_updates(ui, "plain")[1:])
    assert paths == [["a", 1], ["b", 0, 1]]


def test_reshow_and_remove_stop_updates(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    viz = tui.Viz(instance_id="rv")
    first, second = tui.ObservableValue([1]), tui.ObservableValue([2])
    viz.show("v", first)
    viz.show("v", second)
    first.append("old")  # no longer shown
    second.append("new")
    viz.remove_variable("v")
    second.append("removed")
    sync(ui, tui, viz, "m")
    sent = [compact(p) for p in viz_updates(ui, "v")]
    assert [s[0] for s in sent] == ["set", "set", "append", "removeVariable"]
    assert sent[2][2] == "new"


def test_root_set_and_clear_resend_the_whole_value(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    viz = tui.Viz(instance_id="cv")
    num = tui.ObservableValue(1)
    viz.show("num", num)
    num.set(2)
    num.set(num.get())  # the same object: no notification
    items = tui.ObservableValue({"a": 1})
    viz.show("items", items)
    items.clear()
    sync(ui, tui, viz, "m")
    assert [p["options"] for p in viz_updates(ui, "num")][1:] == [
        {
            "path": [],
            "valueRepresentation": {
                "id": num._obs_value_id,
                "type": "int",
                "observableTracked": True,
                "value": 2,
            },
            "length": None,
        }
    ]
    cleared = viz_updates(ui, "items")[-1]
    assert compact(cleared) == ("set", [], [], 0)


def test_observable_value_delegates_like_sidekick_py() -> None:
    from tether.ui import ObservableValue

    obs = ObservableValue([3, 1, 2])
    seen: list[dict[str, Any]] = []
    unsubscribe = obs.subscribe(seen.append)
    assert len(obs) == 3 and 1 in obs and list(obs) == [3, 1, 2] and obs[0] == 3
    assert obs == [3, 1, 2] and obs == ObservableValue([3, 1, 2]) and str(obs) == "[3, 1, 2]"
    obs.sort()  # delegated: no notification
    assert obs.get() == [1, 2, 3] and seen == []
    obs.remove(42)  # absent: nothing
    obs.append(4)
    assert seen == [
        {"type": "append", "path": [3], "value": 4, "length": 4, "key": None, "old_value": None}
    ]
    unsubscribe()
    obs.append(5)
    assert len(seen) == 1
    with pytest.raises(TypeError):
        ObservableValue(1).append(2)
    with pytest.raises(TypeError):
        hash(obs)
