"""tether.ui has sidekick-py 0.0.7's public API: names, signatures, events, exceptions."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest
import tether
from tether import ui

SIDEKICK_ALL = [
    "__version__", "logger", "set_url", "activate_connection", "wait_for_connection",
    "clear_all", "register_global_message_handler", "run_forever", "run_forever_async",
    "shutdown", "submit_interval", "submit_task", "ObservableValue", "BaseSidekickEvent",
    "ButtonClickEvent", "GridClickEvent", "CanvasClickEvent", "TextboxSubmitEvent",
    "ConsoleSubmitEvent", "ErrorEvent", "Button", "Canvas", "Console", "Grid", "Label",
    "Markdown", "Textbox", "Viz", "Row", "Column", "SidekickError", "SidekickConnectionError",
    "SidekickConnectionRefusedError", "SidekickTimeoutError", "SidekickDisconnectedError",
]  # fmt: skip


def test_every_sidekick_name_is_there() -> None:
    missing = [name for name in SIDEKICK_ALL if not hasattr(ui, name)]
    assert missing == []
    assert set(SIDEKICK_ALL) <= set(ui.__all__)
    # that SIDEKICK_ALL is stock sidekick-py's __all__: test_signatures_match_sidekick_py


def test_exceptions_keep_the_hierarchy_under_tether_error() -> None:
    assert issubclass(ui.SidekickError, tether.TetherError)
    for name in ("Refused", "Timeout", "Disconnected"):
        cls = getattr(ui, f"Sidekick{'Connection' if name == 'Refused' else ''}{name}Error")
        assert issubclass(cls, ui.SidekickConnectionError)
    assert issubclass(ui.SidekickQueueFullError, ui.SidekickError)
    err = ui.SidekickDisconnectedError(reason="why")
    assert err.reason == "why" and str(err).endswith("Reason: why")
    assert ui.SidekickConnectionRefusedError("x", url="ws://h").url == "ws://h"
    assert ui.SidekickTimeoutError("t", timeout_seconds=2).timeout_seconds == 2


def test_events_are_the_same_dataclasses() -> None:
    fields = {
        cls: [f.name for f in dataclasses.fields(getattr(ui, cls))]
        for cls in (
            "BaseSidekickEvent", "ButtonClickEvent", "GridClickEvent", "CanvasClickEvent",
            "TextboxSubmitEvent", "ConsoleSubmitEvent", "ErrorEvent",
        )
    }  # fmt: skip
    assert fields["GridClickEvent"] == ["instance_id", "type", "x", "y"]
    assert fields["ErrorEvent"] == ["instance_id", "type", "message"]
    assert issubclass(ui.ButtonClickEvent, ui.BaseSidekickEvent)
    # the same fields as stock sidekick-py's dataclasses: test_signatures_match_sidekick_py


# Describes a module's public API as JSON, run here for tether.ui and in the stock sidekick-py's
# own venv for sidekick (it pins websockets 13.1, so it cannot share this one).
DESCRIBE = """
import dataclasses, inspect, json, sys, importlib
mod = importlib.import_module(sys.argv[1])
names = json.loads(sys.argv[2])

def params(f):
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, repr(p.default)] for p in sig.parameters.values()]

out = {"__all__": sorted(getattr(mod, "__all__", [])), "api": {}, "fields": {}}
for name in names:
    obj = getattr(mod, name, None)
    if inspect.isfunction(obj):
        out["api"][name] = params(obj)
    elif inspect.isclass(obj) and not issubclass(obj, BaseException):
        if dataclasses.is_dataclass(obj):
            out["fields"][name] = [f.name for f in dataclasses.fields(obj)]
        else:
            out["api"][name] = params(obj)
        for attr in dir(obj):
            if not attr.startswith("_") and callable(getattr(obj, attr)):
                out["api"][name + "." + attr] = params(getattr(obj, attr))
print(json.dumps(out))
"""


def describe(python: str, module: str) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-c", DESCRIBE, module, json.dumps(SIDEKICK_ALL)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def test_signatures_match_sidekick_py(stock_python: str) -> None:
    theirs = describe(stock_python, "sidekick")
    ours = describe(sys.executable, "tether.ui")
    assert set(theirs["__all__"]) == set(SIDEKICK_ALL)
    assert set(SIDEKICK_ALL) <= set(ours["__all__"])
    assert ours["fields"] == theirs["fields"], "event dataclasses differ"
    extras = {"set_url": ["session"]}  # tether.ui additions (keyword-only, optional)
    mismatches = []
    for name, stock in theirs["api"].items():
        if name not in ours["api"]:
            mismatches.append((name, "missing"))
            continue
        mine = [p for p in ours["api"][name] or [] if p[0] not in extras.get(name, [])]
        if mine != (stock or []):
            mismatches.append((name, stock, ours["api"][name]))
    assert mismatches == []


def test_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.ui import _settings

    monkeypatch.setattr(_settings, "_user_url", None)
    monkeypatch.setattr(_settings, "_user_session", None)
    monkeypatch.delenv("TETHER_UI_URL", raising=False)
    assert _settings.resolve_url() == "ws://127.0.0.1:5163"
    monkeypatch.setenv("TETHER_UI_URL", "ws://h:1/x?session=env")
    assert _settings.resolve_url() == "ws://h:1/x?session=env"
    ui.set_url(None, session="mine")
    assert _settings.resolve_url() == "ws://h:1/x?session=mine"
    ui.set_url("wss://relay.example/ui?a=1", session="mine")
    assert _settings.resolve_url() == "wss://relay.example/ui?a=1&session=mine"
    ui.set_url("ws://127.0.0.1:9/")
    assert _settings.resolve_url() == "ws://127.0.0.1:9/"
    monkeypatch.setenv("TETHER_UI_URL", "http://wrong")
    ui.set_url(None)
    with pytest.raises(ValueError, match="TETHER_UI_URL"):
        _settings.resolve_url()
    with pytest.raises(ValueError):
        ui.set_url("ws://x", session=" ")
