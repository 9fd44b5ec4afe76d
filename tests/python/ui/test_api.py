"""tether.ui has sidekick-py 0.0.7's public API: names, signatures, events, exceptions."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from typing import Any

import pytest
import tether
from tether import ui

HAVE_SIDEKICK = importlib.util.find_spec("sidekick") is not None

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
    if HAVE_SIDEKICK:
        import sidekick

        assert set(sidekick.__all__) == set(SIDEKICK_ALL)


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
    if HAVE_SIDEKICK:
        import sidekick

        for cls, names in fields.items():
            assert names == [f.name for f in dataclasses.fields(getattr(sidekick, cls))], cls


def _public(obj: Any) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in dir(obj) if not n.startswith("_")}


def _params(func: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]


@pytest.mark.skipif(not HAVE_SIDEKICK, reason="sidekick-py 0.0.7 is not installed")
def test_signatures_match_sidekick_py() -> None:
    import sidekick

    extras = {"set_url": ["session"]}  # tether.ui additions (keyword-only, optional)
    mismatches = []
    for name in SIDEKICK_ALL:
        theirs, ours = getattr(sidekick, name), getattr(ui, name)
        if inspect.isfunction(theirs):
            mine = [p for p in _params(ours) if p[0] not in extras.get(name, [])]
            if mine != _params(theirs):
                mismatches.append((name, _params(theirs), _params(ours)))
        elif inspect.isclass(theirs) and not issubclass(theirs, BaseException):
            if not dataclasses.is_dataclass(theirs) and _params(theirs) != _params(ours):
                mismatches.append((name, _params(theirs), _params(ours)))
            for attr, value in _public(theirs).items():
                if not hasattr(ours, attr):
                    mismatches.append((f"{name}.{attr}", "missing", None))
                elif callable(value) and _params(value) != _params(getattr(ours, attr)):
                    mismatches.append(
                        (f"{name}.{attr}", _params(value), _params(getattr(ours, attr)))
                    )
    assert mismatches == []


def test_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    from tether.ui import _client

    monkeypatch.setattr(_client, "_user_url", None)
    monkeypatch.setattr(_client, "_user_session", None)
    monkeypatch.delenv("TETHER_UI_URL", raising=False)
    assert _client.resolve_url() == "ws://127.0.0.1:5163"
    monkeypatch.setenv("TETHER_UI_URL", "ws://h:1/x?session=env")
    assert _client.resolve_url() == "ws://h:1/x?session=env"
    ui.set_url(None, session="mine")
    assert _client.resolve_url() == "ws://h:1/x?session=mine"
    ui.set_url("wss://relay.example/ui?a=1", session="mine")
    assert _client.resolve_url() == "wss://relay.example/ui?a=1&session=mine"
    ui.set_url("ws://127.0.0.1:9/")
    assert _client.resolve_url() == "ws://127.0.0.1:9/"
    monkeypatch.setenv("TETHER_UI_URL", "http://wrong")
    ui.set_url(None)
    with pytest.raises(ValueError, match="TETHER_UI_URL"):
        _client.resolve_url()
    with pytest.raises(ValueError):
        ui.set_url("ws://x", session=" ")
