"""UI events reach the callbacks: plain functions in worker threads, `async def` as tasks on the
I/O loop; a blocking callback stalls neither the I/O nor the other callbacks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .conftest import is_


class Calls:
    def __init__(self) -> None:
        self.items: list[tuple[Any, str]] = []
        self.cond = threading.Condition()

    def add(self, event: Any) -> None:
        with self.cond:
            self.items.append((event, threading.current_thread().name))
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[Any, str]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, timeout), self.items
            return list(self.items)


def test_every_event_reaches_its_callback(tui: Any, make_ui: Any) -> None:
    # One callback thread: callbacks run in the order their frames came, so the marker's running
    # means every earlier frame was handled (or ignored).
    tui.configure(callback_workers=1)
    calls = Calls()
    end = threading.Event()
    tui.Button("end", instance_id="e-end", on_click=lambda _e: end.set())
    btn = tui.Button("b", instance_id="e-btn", on_click=calls.add)
    tb = tui.Textbox(instance_id="e-tb", on_submit=calls.add)
    con = tui.Console(show_input=True, instance_id="e-con")
    con.on_submit(calls.add)
    grid = tui.Grid(3, 3, instance_id="e-grid")
    grid.click(calls.add)
    cv = tui.Canvas(10, 10, instance_id="e-cv")

    @cv.click
    async def clicked(event: Any) -> None:
        calls.add(event)

    btn.on_error(calls.add)
    ui = make_ui()
    tui.wait_for_connection(10)
    ui.event("button", "e-btn", {"event": "click"})
    ui.event("textbox", "e-tb", {"event": "submit", "value": "hello"})
    ui.event("console", "e-con", {"event": "submit", "value": "line"})
    ui.event("console", "e-con", {"event": "submit", "value": 3})  # not a string: ignored
    ui.event("grid", "e-grid", {"event": "click", "x": 2, "y": 1})
    ui.event("grid", "e-grid", {"event": "click", "x": 2.0, "y": 1})  # not ints: ignored
    ui.event("canvas", "e-cv", {"event": "click", "x": 4, "y": 5})
    ui.event("button", "e-btn", {"message": "bad"}, kind="error")
    ui.event("button", "nobody", {"event": "click"})  # unknown src: ignored
    ui.event("button", "e-end", {"event": "click"})  # the marker: after all of the above
    got = calls.wait(6)
    assert end.wait(10)
    events = sorted((repr(e) for e, _ in calls.items))
    assert events == sorted(
        [
            "ButtonClickEvent(instance_id='e-btn', type='click')",
            "TextboxSubmitEvent(instance_id='e-tb', type='submit', value='hello')",
            "ConsoleSubmitEvent(instance_id='e-con', type='submit', value='line')",
            "GridClickEvent(instance_id='e-grid', type='click', x=2, y=1)",
            "CanvasClickEvent(instance_id='e-cv', type='click', x=4, y=5)",
            "ErrorEvent(instance_id='e-btn', type='error', message='bad')",
        ]
    )
    threads = {type(e).__name__: name for e, name in got}
    assert threads["CanvasClickEvent"] == "tether-ui-io"  # async def: a task on the I/O loop
    for kind in ("ButtonClickEvent", "TextboxSubmitEvent", "GridClickEvent", "ErrorEvent"):
        assert threads[kind].startswith("tether-ui-callback"), threads
    assert tb.value == "hello"  # a submit stores the value


def test_a_blocking_callback_stalls_neither_io_nor_other_callbacks(tui: Any, make_ui: Any) -> None:
    release = threading.Event()
    entered = threading.Event()
    fast = Calls()

    def slow(event: Any) -> None:
        entered.set()
        release.wait(20)  # a blocking callback (sidekick-py would freeze all its I/O here)

    tui.Button("slow", instance_id="slow", on_click=slow)
    tui.Button("fast", instance_id="fast", on_click=fast.add)
    label = tui.Label("x", instance_id="lbl")
    ui = make_ui()
    tui.wait_for_connection(10)
    try:
        ui.event("button", "slow", {"event": "click"})
        assert entered.wait(10)
        ui.event("button", "fast", {"event": "click"})  # incoming traffic still handled
        fast.wait(1)
        label.text = "still flowing"  # outgoing traffic too
        ui.wait_for(
            lambda f: f.get("payload", {}).get("options", {}).get("text") == "still flowing"
        )
        assert not release.is_set()
    finally:
        release.set()


def test_async_callbacks_and_submitted_tasks_run_on_the_loop(tui: Any, make_ui: Any) -> None:
    done = threading.Event()
    seen: dict[str, Any] = {}

    async def work() -> str:
        await asyncio.sleep(0.01)
        seen["thread"] = threading.current_thread().name
        done.set()
        return "ok"

    task = tui.submit_task(work())
    assert isinstance(task, asyncio.Task)
    assert done.wait(10)
    assert seen["thread"] == "tether-ui-io"

    ticks = Calls()
    state = {"n": 0}

    def tick() -> None:
        state["n"] += 1
        if state["n"] == 2:
            raise RuntimeError("an interval error is logged, the interval goes on")
        ticks.add(None)

    interval = tui.submit_interval(tick, 0.01)
    got = ticks.wait(3)
    assert all(name.startswith("tether-ui-callback") for _, name in got)

    async def async_tick() -> None:
        ticks.add("async")

    async_interval = tui.submit_interval(async_tick, 0.01)
    ticks.wait(len(got) + 3)
    for t in (interval, async_interval):
        t.get_loop().call_soon_threadsafe(t.cancel)


def test_global_handler_sees_every_frame_in_order(tui: Any, make_ui: Any) -> None:
    seen = Calls()
    tui.register_global_message_handler(seen.add)
    tui.Button("b", instance_id="g-btn")
    ui = make_ui()
    tui.wait_for_connection(10)
    for n in range(20):
        ui.event("button", "g-btn", {"event": "click", "n": n})
    got = seen.wait(21)  # the UI's announce, then the 20 events in order
    frames = [e for e, _ in got if e.get("type") == "event"]
    assert [f["payload"]["n"] for f in frames] == list(range(20))
    assert {name for _, name in got} == {"tether-ui-global_0"}
    tui.register_global_message_handler(None)


def test_removed_component_gets_no_more_events(tui: Any, make_ui: Any) -> None:
    tui.configure(callback_workers=1)  # callbacks in frame order: the second click is the marker
    calls = Calls()
    btn = tui.Button("b", instance_id="r-btn", on_click=calls.add)
    other = tui.Button("o", instance_id="r-other", on_click=calls.add)
    ui = make_ui()
    tui.wait_for_connection(10)
    btn.remove()
    ui.wait_for(is_("button", "remove", target="r-btn"))
    ui.event("button", "r-btn", {"event": "click"})
    ui.event("button", "r-other", {"event": "click"})
    got = calls.wait(1)
    assert [e.instance_id for e, _ in calls.items] == ["r-other"]
    assert got and other.instance_id == "r-other"
