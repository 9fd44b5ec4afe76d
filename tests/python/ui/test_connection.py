"""The outbox bound, reconnecting without clearAll, and the end of the connection: shutdown's
offline announce, and `run_forever()` returning or raising instead of hanging."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import pytest

from .conftest import FakeUI, free_port, is_, run_script


def hero_announces(ui: FakeUI, status: str) -> list[dict[str, Any]]:
    return [
        f
        for f in ui.frames
        if is_("system", "announce", status=status)(f) and f["payload"]["role"] == "hero"
    ]


def test_queued_frames_are_all_delivered_when_a_ui_connects(tui: Any, make_ui: Any) -> None:
    grid = tui.Grid(50, 40, instance_id="q-grid")
    for n in range(1500):  # sidekick-py keeps only the last 1000 (and loses the spawn)
        grid.set_color(n % 50, n // 50, f"#{n:06x}")
    ui = make_ui()
    tui.wait_for_connection(10)
    ui.wait_count(is_("grid", "update", target="q-grid"), 1500)
    frames = ui.hero_frames()
    kinds = [(f["component"], f["type"]) for f in frames]
    assert kinds[:3] == [("system", "announce"), ("global", "clearAll"), ("grid", "spawn")]
    colors = [f["payload"]["options"]["color"] for f in frames[3:]]
    assert colors == [f"#{n:06x}" for n in range(1500)]


def test_the_outbox_bound_raises_instead_of_dropping(tui: Any, make_ui: Any) -> None:
    tui.configure(max_queue_bytes=4000)
    label = tui.Label("start", instance_id="q-lbl")
    sent = 0
    with pytest.raises(tui.SidekickQueueFullError) as info:
        for sent in range(1000):
            label.text = f"text {sent}"
    error = info.value
    assert isinstance(error, tui.SidekickError) and error.limit == 4000
    assert error.queued_bytes + error.frame_bytes > 4000
    assert "max_queue_bytes" in str(error)
    ui = make_ui()
    tui.wait_for_connection(10)
    label.text = "after"
    ui.wait_for(lambda f: f.get("payload", {}).get("options", {}).get("text") == "after")
    texts = [f["payload"]["options"]["text"] for f in ui.hero_frames() if f["type"] == "update"]
    assert texts == [f"text {n}" for n in range(sent)] + ["after"]  # nothing lost, in order


def test_a_frame_over_the_relay_limit_raises(tui: Any) -> None:
    label = tui.Label(instance_id="big")
    with pytest.raises(tui.SidekickError, match="frame limit"):
        label.text = "x" * (1024 * 1024)


def test_reconnects_without_clear_all_and_delivers_what_was_queued(
    tui: Any, make_ui: Any, proxy: Any, session_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether.ui")
    ui = make_ui()
    tui.set_url(f"{proxy.url}/?session={session_id}")
    label = tui.Label("one", instance_id="rc-lbl")
    tui.wait_for_connection(10)
    ui.wait_for(is_("label", "spawn", target="rc-lbl"))
    proxy.refuse()
    proxy.cut()
    ui.wait_for(is_("system", "announce", status="offline"), what="synthesized hero offline")
    label.text = "while down"  # queued, not dropped

    def failed_attempts() -> int:
        return sum("cannot reach the tether relay" in r.getMessage() for r in caplog.records)

    deadline = time.monotonic() + 10  # a few failed attempts (backoff) before the relay is back
    while failed_attempts() < 2:
        assert time.monotonic() < deadline, f"{failed_attempts()} failed attempts logged"
        time.sleep(0.02)
    proxy.accept()
    ui.wait_for(lambda f: f.get("payload", {}).get("options", {}).get("text") == "while down")
    label.text = "after"
    ui.wait_for(lambda f: f.get("payload", {}).get("options", {}).get("text") == "after")
    frames = ui.hero_frames()
    assert [f["type"] for f in frames if f["component"] == "global"] == ["clearAll"]  # once
    online = hero_announces(ui, "online")
    assert len(online) == 2 and online[0]["payload"]["peerId"] == online[1]["payload"]["peerId"]
    # The relay's replay log restores a UI opened now.
    late = make_ui()
    late.wait_for(lambda f: f.get("payload", {}).get("options", {}).get("text") == "after")
    label_frames = [f for f in late.hero_frames() if f["component"] == "label"]
    assert label_frames[0]["type"] == "spawn"  # (the log may fold the setTexts)


def test_run_forever_raises_when_the_connection_is_gone_for_good(
    tui: Any, make_ui: Any, proxy: Any, session_id: str
) -> None:
    tui.configure(reconnect_timeout=1.0)
    make_ui()
    tui.set_url(f"{proxy.url}/?session={session_id}")
    label = tui.Label("x", instance_id="gone")
    tui.wait_for_connection(10)
    proxy.refuse()
    proxy.cut()
    started = time.monotonic()
    with pytest.raises(tui.SidekickDisconnectedError) as info:
        tui.run_forever()
    assert time.monotonic() - started < 10
    assert "could not reconnect within 1 s" in str(info.value)
    with pytest.raises(tui.SidekickDisconnectedError):
        label.text = "later"  # the connection is gone for good: the call says so
    with pytest.raises(tui.SidekickDisconnectedError):
        tui.wait_for_connection(1)


def test_run_forever_raises_when_the_relay_cannot_be_reached(
    tui: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    tui.configure(reconnect_timeout=0.5)
    url = f"ws://127.0.0.1:{free_port()}"
    tui.set_url(url)
    tui.Label("x")
    with pytest.raises(tui.SidekickConnectionRefusedError) as info:
        tui.run_forever()
    assert info.value.url == url
    assert isinstance(info.value, tui.SidekickConnectionError)
    assert "1 frame(s) (95 bytes) were never delivered" in capsys.readouterr().err


def test_wait_for_connection_times_out_and_the_client_keeps_waiting(tui: Any, make_ui: Any) -> None:
    label = tui.Label("early", instance_id="w-lbl")
    with pytest.raises(tui.SidekickTimeoutError, match="no UI came online"):
        tui.wait_for_connection(0.5)
    ui = make_ui()
    tui.wait_for_connection(10)
    ui.wait_for(is_("label", "spawn", target="w-lbl"))
    assert label.text == "early"


def test_shutdown_announces_offline_and_run_forever_returns(tui: Any, make_ui: Any) -> None:
    ui = make_ui()

    def stop(_: Any) -> None:
        tui.shutdown()

    button = tui.Button("stop", instance_id="s-btn", on_click=stop)
    tui.wait_for_connection(10)
    ui.event("button", "s-btn", {"event": "click"})
    tui.run_forever()  # returns once shutdown() ran in the callback
    offline = ui.wait_for(is_("system", "announce", status="offline"))
    assert offline["payload"]["role"] == "hero" and offline["payload"]["version"] == "0.0.7"
    assert list(offline["payload"]) == ["peerId", "role", "status", "version", "timestamp"]
    # The hero's own announce (Python's separators), not one the relay synthesized.
    assert [r for r in ui.raw if '"status": "offline"' in r and '"role": "hero"' in r]
    with pytest.raises(tui.SidekickDisconnectedError, match="shut down"):
        button.text = "after shutdown"
    # The next component starts a new client: a new peer id, a clearAll again.
    again = tui.Label("again", instance_id="s-again")
    tui.wait_for_connection(10)
    ui.wait_for(is_("label", "spawn", target="s-again"))
    online = hero_announces(ui, "online")
    assert len(online) == 2 and online[0]["payload"]["peerId"] != online[1]["payload"]["peerId"]
    assert [f["component"] for f in ui.hero_frames()].count("global") == 2
    assert again.text == "again"


async def test_the_asyncio_api(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    label = tui.Label("async", instance_id="a-lbl")
    await tui.wait_for_connection_async(10)
    runner = asyncio.ensure_future(tui.run_forever_async())
    # The marker: a frame sent after run_forever_async started reaches the UI; it is still running.
    label.text = "running"
    await asyncio.to_thread(
        ui.wait_for, lambda f: f.get("payload", {}).get("options", {}).get("text") == "running"
    )
    assert not runner.done()
    tui.shutdown()
    await asyncio.wait_for(runner, 10)
    await asyncio.to_thread(ui.wait_for, is_("system", "announce", status="offline"))


def test_a_script_without_run_forever_still_reaches_the_relay(
    make_ui: Any, session_url: str, tmp_path: Any
) -> None:
    script = tmp_path / "exit_script.py"
    script.write_text(
        "import sys\nfrom tether import ui\nui.set_url(sys.argv[1])\n"
        "ui.Label('drawn then exited', instance_id='exit-lbl')\n"
    )
    # No UI yet: the relay's replay log keeps it.
    done = run_script(script, session_url)
    assert done.returncode == 0, done.stderr
    assert "never delivered" not in done.stderr
    ui = make_ui()
    ui.wait_for(is_("label", "spawn", target="exit-lbl"))
    # Nothing reachable: the loss is reported, not silent.
    done = run_script(script, f"ws://127.0.0.1:{free_port()}")
    assert "1 frame(s)" in done.stderr and "never delivered" in done.stderr


def test_non_json_and_binary_frames_from_the_relay_are_ignored(tui: Any, make_ui: Any) -> None:
    ui = make_ui()
    seen = threading.Event()
    tui.Button("b", instance_id="j-btn", on_click=lambda e: seen.set())
    tui.wait_for_connection(10)
    ui.ws.send("not json {")
    ui.ws.send(json.dumps([1, 2]))
    ui.ws.send(
        '{"id": 0, "component": "button", "type": "event", "src": "j-btn", '
        '"payload": {"event": "click", "x": NaN}}'
    )
    assert seen.wait(10)


def test_ctrl_c_in_run_forever_shuts_down_cleanly(
    make_ui: Any, session_url: str, tmp_path: Any
) -> None:
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "forever.py"
    script.write_text(
        "import sys\nfrom tether import ui\nui.set_url(sys.argv[1])\n"
        "ui.Label('waiting', instance_id='int-lbl')\nui.run_forever()\nprint('returned')\n"
    )
    ui = make_ui()
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, str(script), session_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ui.wait_for(is_("label", "spawn", target="int-lbl"), timeout=20)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "returned" in out
    offline = ui.wait_for(is_("system", "announce", status="offline"))
    assert offline["payload"]["role"] == "hero"
    assert [r for r in ui.raw if '"status": "offline"' in r and '"role": "hero"' in r]
