"""The frames tether.ui sends, against the captured sidekick-py 0.0.7 trace, against stock
sidekick-py 0.0.7 run through the same relay, and per component method (sidekick-py 0.0.7's payloads)."""

from __future__ import annotations

import copy
import json
import math
import threading
from typing import Any

import pytest

from .conftest import HERE, FakeUI, is_, run_script

TRACE = HERE.parents[1] / "fixtures" / "ui" / "sidekick-trace-0.0.7.jsonl"

NESTED_APPEND = {
    "id": 0,
    "component": "viz",
    "type": "update",
    "target": "viz",
    "payload": {
        "action": "append",
        "variableName": "nested",
        "options": {
            "path": ["inner", 1],
            "valueRepresentation": {
                "id": "<id>",
                "type": "int",
                "observableTracked": False,
                "value": 2,
            },
            "length": 2,
        },
    },
}


def mask(frame: dict[str, Any]) -> dict[str, Any]:
    """Drops what differs between runs: peer ids, timestamps, Viz node ids (id() based)."""
    frame = copy.deepcopy(frame)
    payload = frame.get("payload")
    if frame.get("component") == "system" and isinstance(payload, dict):
        payload["peerId"] = "<peer>"
        payload["timestamp"] = 0

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("id"), str):
                node["id"] = "<id>"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if frame.get("component") == "viz" and isinstance(payload, dict):
        walk(payload.get("options"))
    return frame


def trace_frames() -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in TRACE.read_text().splitlines() if line.strip()]
    return [mask(f) for f in lines if not any(k.startswith("_") for k in f)]


def hero_frames(ui: FakeUI) -> list[dict[str, Any]]:
    return [mask(f) for f in ui.hero_frames()]


def run_hero(which: str, url: str, *extra: str, python: str | None = None) -> str:
    """Runs hero_all.py with `which` client: tether.ui here, stock sidekick-py in `python`."""
    done = run_script(HERE / "hero_all.py", which, url, *extra, python=python)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("which", ["tether", "sidekick"])
def test_the_trace_script_sends_the_traced_frames(
    which: str, make_ui: Any, session_url: str, request: pytest.FixtureRequest
) -> None:
    python = request.getfixturevalue("stock_python") if which == "sidekick" else None
    ui = make_ui()
    run_hero(which, session_url, python=python)
    ui.wait_for(is_("system", "announce", status="offline"), what="hero offline")
    sent = hero_frames(ui)
    expected = trace_frames()
    assert len(expected) == 61
    if which == "tether":
        # The one intended difference: the nested ObservableValue's append reaches the Viz.
        at = next(
            i
            for i, f in enumerate(expected)
            if f.get("payload", {}).get("variableName") == "nested"
        )
        expected.insert(at + 1, NESTED_APPEND)
    assert sent == expected


def test_same_frames_and_events_as_stock_sidekick_py(
    relay: Any, session_id: str, stock_python: str
) -> None:
    runs = {}
    for which in ("sidekick", "tether"):
        url = f"{relay.url}/?session={session_id}-{which}"
        ui = FakeUI(url)
        out: dict[str, str] = {}

        python = stock_python if which == "sidekick" else None

        def hero_run(
            url: str = url, which: str = which, out: dict[str, str] = out, python: Any = python
        ) -> None:
            out["stdout"] = run_hero(which, url, "--events", python=python)

        hero = threading.Thread(target=hero_run)
        hero.start()
        try:
            ui.wait_for(_text("ready"), timeout=30, what="lab = ready")
            ui.event("button", "btn", {"event": "click"})
            ui.wait_for(_append("clicked btn click\n"))
            ui.event("textbox", "tb", {"event": "submit", "value": "typed"})
            ui.wait_for(_append("tb typed typed\n"))
            ui.event("console", "con", {"event": "submit", "value": "line"})
            ui.wait_for(_append("con line\n"))
            ui.event("grid", "g", {"event": "click", "x": 1, "y": 0})
            ui.wait_for(is_("grid", "update", target="g", action="setColor"))
            ui.event("grid", "g", {"event": "click", "x": 1.0, "y": 0})  # not an int: ignored
            ui.event("canvas", "cv", {"event": "click", "x": 7, "y": 8})
            ui.wait_for(is_("canvas", "update", target="cv", action="drawCircle"))
            ui.event("canvas", "cv", {"message": "Error processing action"}, kind="error")
            ui.wait_for(_append("error cv Error processing action\n"))
            ui.event("button", "done", {"event": "click"})
            ui.wait_for(is_("system", "announce", status="offline"), what="hero offline")
        finally:
            hero.join(60)
            ui.close()
        assert "run_forever returned" in out.get("stdout", "")
        runs[which] = hero_frames(ui)
    stock, ours = runs["sidekick"], runs["tether"]
    assert len(stock) == 69
    assert NESTED_APPEND in ours
    ours.remove(NESTED_APPEND)
    assert ours == stock


def _text(text: str) -> Any:
    return lambda f: (
        is_("label", "update", target="lab", action="setText")(f)
        and f["payload"]["options"]["text"] == text
    )


def _append(text: str) -> Any:
    return lambda f: (
        is_("console", "update", target="con", action="append")(f)
        and f["payload"]["options"]["text"] == text
    )


# --- per component, in process ------------------------------------------------------------------


def updates(ui: FakeUI, target: str) -> list[dict[str, Any]]:
    return [f["payload"] for f in ui.hero_frames() if f.get("target") == target]


def test_component_frames(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    tui.wait_for_connection(10)
    tb = tui.Textbox(instance_id=" tb2 ")  # stripped; empty value and placeholder are omitted
    tui.Console(text="start", instance_id="con2")
    col = tui.Column(instance_id="c2")
    a = tui.Label("a", instance_id="a", parent=col)
    b = tui.Label("b", instance_id="b", parent="c2")
    row = tui.Row(a, b, instance_id="r2", parent=col)
    auto = tui.Button()
    cv = tui.Canvas(20, 10, instance_id="cv2")
    for _ in range(2):  # the second block reuses buffer 1: no second createBuffer
        with cv.buffer() as buf:
            buf.draw_line(0, 0, 1, 1, "red", 3)
            buf.draw_circle(1, 1, 2.9, fill_color="red", line_width=0)
            buf.draw_ellipse(1, 1, 3.7, 2.2)
            buf.draw_text(0, 0, 5)
    with pytest.raises(RuntimeError), cv.buffer() as buf:  # no drawBuffer after an exception
        buf.draw_rect(0, 0, 1, 1)
        raise RuntimeError("boom")
    tb.remove()
    ui.wait_for(is_("textbox", "remove", target="tb2"))

    frames = ui.hero_frames()
    assert {
        "id": 0,
        "component": "textbox",
        "type": "spawn",
        "target": "tb2",
        "payload": {},
    } in frames
    assert {"id": 0, "component": "textbox", "type": "remove", "target": "tb2"} in frames
    assert updates(ui, "con2") == [{"showInput": False, "text": "start"}]
    assert updates(ui, "a") == [
        {"text": "a", "parent": "c2"},
        {"action": "changeParent", "options": {"parent": "r2"}},
    ]
    assert updates(ui, "b")[0] == {"text": "b", "parent": "c2"}
    assert updates(ui, "r2") == [{"parent": "c2"}]
    assert row.instance_id == "r2"
    assert auto.instance_id.startswith("button-") and auto.instance_id[7:].isdigit()
    assert updates(ui, auto.instance_id) == [{"text": ""}]
    assert [p["action"] for p in updates(ui, "cv2")[1:]] == [
        "createBuffer",
        *["clear", "drawLine", "drawCircle", "drawEllipse", "drawText", "drawBuffer"] * 2,
        "clear",
        "drawRect",
    ]
    drawn = updates(ui, "cv2")
    assert drawn[3]["options"] == {
        "bufferId": 1,
        "x1": 0,
        "y1": 0,
        "x2": 1,
        "y2": 1,
        "lineColor": "red",
        "lineWidth": 3,
    }
    assert drawn[4]["options"] == {
        "bufferId": 1,
        "cx": 1,
        "cy": 1,
        "radius": 2,
        "fillColor": "red",
        "lineWidth": 0,
    }
    assert drawn[5]["options"] == {"bufferId": 1, "cx": 1, "cy": 1, "radiusX": 3, "radiusY": 2}
    assert drawn[6]["options"] == {"bufferId": 1, "x": 0, "y": 0, "text": "5"}
    assert drawn[7]["options"] == {"sourceBufferId": 1, "targetBufferId": 0}


def test_argument_checks_match_sidekick_py(tui: Any) -> None:
    g = tui.Grid(2, 2)
    with pytest.raises(IndexError):
        g.set_color(2, 0, "red")
    with pytest.raises(IndexError):
        g.set_text(0, -1, "x")
    with pytest.raises(ValueError):
        tui.Grid(0, 1)
    with pytest.raises(ValueError):
        tui.Canvas(10, 0)
    cv = tui.Canvas(10, 10)
    with pytest.raises(ValueError):
        cv.draw_line(0, 0, 1, 1, line_width=0)  # lines need a positive width
    with pytest.raises(ValueError):
        cv.draw_polyline([(0, 0)])
    with pytest.raises(ValueError):
        cv.draw_polygon([(0, 0), (1, 1)])
    with pytest.raises(TypeError):
        cv.draw_polygon([(0, 0), (1, 1), ("x", 0)])
    with pytest.raises(ValueError):
        cv.draw_text(0, 0, "t", text_size=0)
    with pytest.raises(ValueError):
        cv.draw_circle(0, 0, 0)
    with pytest.raises(ValueError):
        tui.Label("x", instance_id="   ")
    with pytest.raises(TypeError):
        tui.Label("x", parent=3)
    with pytest.raises(TypeError):
        tui.Row("not a component")
    with pytest.raises(TypeError):
        tui.Button("x", on_click=3)
    with pytest.raises(ValueError):
        tui.set_url("http://example.com")
    with pytest.raises(ValueError):
        tui.Viz().show("", 1)
    with pytest.raises(TypeError):
        tui.submit_interval(3, 1)
    with pytest.raises(ValueError):
        tui.submit_interval(lambda: None, 0)


def test_no_bare_nan_or_infinity(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    cv = tui.Canvas(10, 10, instance_id="nan-cv")
    viz = tui.Viz(instance_id="nan-viz")
    cv.draw_line(float("nan"), 0, float("inf"), -math.inf)
    viz.show("x", [float("nan"), math.inf, -math.inf, 1.5])
    ui.wait_for(is_("viz", "update", target="nan-viz"))
    line = next(r for r in ui.raw if '"drawLine"' in r)
    shown = next(r for r in ui.raw if '"variableName": "x"' in r)
    for raw in (line, shown):
        assert "NaN" not in raw and "Infinity" not in raw
        json.loads(raw, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert json.loads(line)["payload"]["options"] == {
        "bufferId": 0,
        "x1": None,
        "y1": 0,
        "x2": None,
        "y2": None,
    }
    values = json.loads(shown)["payload"]["options"]["valueRepresentation"]["value"]
    assert [(v["type"], v["value"]) for v in values] == [
        ("float", "nan"),
        ("float", "inf"),
        ("float", "-inf"),
        ("float", 1.5),
    ]
