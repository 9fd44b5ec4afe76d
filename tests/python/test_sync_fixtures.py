"""The golden ws-sync scenarios (`tests/fixtures/sync/*.json`, format in its README.md) replayed
against the engine as Python sees it, `tether._native.SyncSession`: the same inputs, the same
outputs in the same order, as `crates/tether-sync/tests/fixtures.rs` checks for the Rust API.

The client model applies server frames strictly with `jsonpatch` (as a browser store does); the
client's own `_PATCH`es are applied with the engine's lenient reading (unescaped paths), through
a second session that only stands in for the client's store.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from tether import _native

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sync"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
INPUTS = {"connect", "close", "recv", "recv_binary", "app"}
LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "error": "error"}


def client_patch(doc: Any, ops: Any) -> Any:
    """`doc` after a client's own `_PATCH` (lenient, as the engine reads it); unchanged if it
    does not apply."""
    store = _native.SyncSession(event_values=True)
    store.register_value("M", doc)
    store.handle_connect(1)
    store.handle_text(1, json.dumps({"type": "_PATCH:M", "data": ops}))
    while (item := store.poll_output()) is not None:
        if item[0] == "event" and item[1]["type"] == "patched":
            return item[1]["value"]
    return doc


class Runner:
    def __init__(self, name: str, config: dict[str, Any]) -> None:
        self.name = name
        self.session = _native.SyncSession(**config, event_values=True)
        self.pending: deque[tuple[Any, ...]] = deque()
        self.logs: list[tuple[str, str]] = []
        self.clients: dict[tuple[int, str], Any] = {}

    def poll(self) -> tuple[Any, ...] | None:
        while (item := self.session.poll_output()) is not None:
            if item[0] == "log":
                self.logs.append((item[1], item[2]))
                continue
            assert item[0] != "wait", "no connection is attached: nothing waits"
            return item
        return None

    def drain(self) -> None:
        while (item := self.poll()) is not None:
            self.pending.append(item)

    def next_output(self, step: int) -> tuple[Any, ...]:
        if self.pending:
            return self.pending.popleft()
        item = self.poll()
        assert item is not None, f"{self.name} step {step}: expected an output, got none"
        return item

    def assert_quiet(self, step: int) -> None:
        self.drain()
        assert not self.pending, f"{self.name} step {step}: unexpected outputs {list(self.pending)}"

    def client_applies(self, conn: int, frame: Any, from_server: bool) -> None:
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return
        prefix, _, key = frame["type"].partition(":")
        if not key:
            return
        slot = (conn, key)
        data = frame.get("data")
        if prefix == "_SET" and isinstance(data, dict):
            self.clients[slot] = data
        elif prefix == "_PATCH" and slot in self.clients:
            if from_server:
                self.clients[slot] = jsonpatch.apply_patch(self.clients[slot], data)
            else:
                self.clients[slot] = client_patch(self.clients[slot], data)

    def app(self, cmd: dict[str, Any]) -> None:
        s = self.session
        kind = cmd["cmd"]
        key = cmd.get("key", "")
        if kind == "register":
            s.register_value(key, cmd["value"], **cmd.get("options", {}))
        elif kind == "unregister":
            s.unregister(key)
        elif kind == "sync":
            s.sync_value(key, cmd["value"])
        elif kind == "sync_if_changed":
            s.sync_if_changed(key, cmd["revision"], cmd["value"])
        elif kind == "set":
            s.set_value(key, cmd["value"])
        elif kind == "reject":
            s.reject_value(key, cmd["value"], cmd["message"])
        elif kind == "request_state":
            s.request_state(key)
        elif kind == "send_action":
            s.send_action(key, cmd["action"])
        elif kind == "send_binary":
            s.send_binary(f"_ACTION:{key}", cmd["metadata"], bytes(cmd["data"]))
        elif kind == "send_event":
            s.send_event(cmd["event"], cmd["data"])
        elif kind == "toast":
            s.toast(cmd["kind"], cmd["message"])
        elif kind == "download":
            s.download(cmd["filename"], bytes(cmd["data"]))
        elif kind == "request_user_session":
            s.request_user_session()
        elif kind == "disconnect":
            s.disconnect(cmd.get("message"))
        elif kind == "register_event":
            s.register_event(cmd["event"])
        elif kind == "unregister_event":
            s.unregister_event(cmd["event"])
        elif kind == "action_done":
            s.action_done(cmd["action"])
        elif kind == "action_failed":
            s.action_failed(cmd["action"], cmd["error"])
        elif kind == "task_done":
            s.task_done(cmd["task"])
        elif kind == "task_cancelled":
            s.task_cancelled(cmd["task"])
        elif kind == "task_failed":
            s.task_failed(cmd["task"], cmd["error"])
        else:
            raise AssertionError(f"unknown app command {kind}")

    def step(self, i: int, kind: str, arg: Any) -> None:
        name = self.name
        if kind == "connect":
            self.session.handle_connect(arg)
        elif kind == "close":
            self.session.handle_close(arg)
        elif kind == "recv":
            text = arg["text"] if "text" in arg else json.dumps(arg["frame"], separators=(",", ":"))
            try:
                frame = json.loads(text)
            except ValueError:
                frame = None
            self.client_applies(arg["conn"], frame, from_server=False)
            self.session.handle_text(arg["conn"], text)
        elif kind == "recv_binary":
            self.session.handle_binary(arg["conn"], bytes(arg["data"]))
        elif kind == "app":
            want_error = bool(arg.get("expect_error"))
            try:
                self.app(arg)
            except (KeyError, ValueError, TypeError) as e:
                assert want_error, f"{name} step {i}: {arg} raised {e!r}"
            else:
                assert not want_error, f"{name} step {i}: {arg} was not refused"
        elif kind == "send":
            out = self.next_output(i)
            want = json.dumps(arg["frame"], separators=(",", ":"), ensure_ascii=False)
            assert out[:3] == ("text", arg["conn"], want), f"{name} step {i}: got {out}"
            self.client_applies(arg["conn"], arg["frame"], from_server=True)
        elif kind == "send_binary":
            out = self.next_output(i)
            assert out[:2] == ("binary", arg["conn"]), f"{name} step {i}: got {out}"
            assert list(out[2]) == arg["data"], f"{name} step {i}"
        elif kind == "server_close":
            out = self.next_output(i)
            want = ("close", arg["conn"], arg["code"], arg["reason"])
            assert out == want, f"{name} step {i}: got {out}"
        elif kind == "event":
            out = self.next_output(i)
            assert out[0] == "event", f"{name} step {i}: expected event {arg}, got {out}"
            got = dict(out[1])
            if isinstance(got.get("binary"), bytes):
                got["binary"] = list(got["binary"])
            assert got == arg, f"{name} step {i}"
        elif kind == "log":
            self.drain()
            level = LEVELS[arg["level"]]
            hits = [j for j, (lv, msg) in enumerate(self.logs) if lv == level]
            hits = [j for j in hits if arg["contains"] in self.logs[j][1]]
            assert hits, f"{name} step {i}: no {level} log with {arg['contains']!r}: {self.logs}"
            del self.logs[hits[0]]
        elif kind == "client_state":
            got = self.clients.get((arg["conn"], arg["key"]))
            assert got == arg["value"], f"{name} step {i}"
        else:
            raise AssertionError(f"{name} step {i}: unknown step kind {kind}")


def test_every_scenario_is_found() -> None:
    assert len(NAMES) >= 12, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_scenario(name: str) -> None:
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    r = Runner(name, doc.get("config", {}))
    prev_input = False
    for i, step in enumerate(doc["steps"]):
        ((kind, arg),) = step.items()
        is_input = kind in INPUTS
        # An app step may react to an event before the rest is polled (no quiet check).
        if is_input and not prev_input and kind != "app":
            r.assert_quiet(i)
        prev_input = is_input
        r.step(i, kind, arg)
    r.assert_quiet(len(doc["steps"]))
