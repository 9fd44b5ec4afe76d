"""Exec endpoints of the server embedded in this Python process (`tether.serve`): the process is
not made a child subreaper, a descendant that escaped its command's process group and session is
still stopped with its connection (found by its `TETHER_EXEC_CONN` mark), and the host's own
`subprocess` children keep their exit statuses while exec processes come and go."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import tether
from conftest import EPHEMERAL
from websockets.asyncio.client import ClientConnection, connect

TIMEOUT = 5
PR_GET_CHILD_SUBREAPER = 37

# The reproduction, with its own sleep so that no other test's process is taken for it.
CONFIG = """
exec_kill_grace = 0.3

[[exec]]
name = "esc"
argv = ["sh", "-c", "(setsid sh -c 'trap \\"\\" TERM; sleep 309') & echo started; sleep 300"]

[[exec]]
name = "churn"
argv = ["sh", "-c", "sleep 0.05 & (setsid sleep 0.1 &) ; echo started"]
"""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tether.Server]:
    config = tmp_path / "exec.toml"
    config.write_text(CONFIG)
    async with tether.serve(**EPHEMERAL, config=str(config), shutdown_grace=2) as srv:
        yield srv


def stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) of `pid`, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19])


def marked(argv: list[str]) -> list[tuple[int, int]]:
    """(pid, start) of the live processes with `argv` carrying a mark of this process."""
    needle = f"TETHER_EXEC_CONN={os.getpid()}.".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        st = stat(pid)
        if (
            st is not None
            and st[0] != "Z"
            and [c.decode(errors="replace") for c in cmd] == argv
            and any(v.startswith(needle) for v in env)
        ):
            found.append((pid, st[1]))
    return found


def below_me(argv: list[str]) -> list[tuple[int, int]]:
    """(pid, start) of the live processes with `argv` that descend from this process."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            parent[int(entry)] = int(raw[raw.rindex(b")") + 2 :].split()[1])
    found = []
    for pid in parent:
        p = pid
        while p > 1 and p != os.getpid():
            p = parent.get(p, 0)
        if p != os.getpid() or pid == p:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        st = stat(pid)
        if st is not None and st[0] != "Z" and [c.decode(errors="replace") for c in cmd] == argv:
            found.append((pid, st[1]))
    return found


def running(proc: tuple[int, int]) -> bool:
    st = stat(proc[0])
    return st is not None and st[1] == proc[1] and st[0] != "Z"


async def until(what: str, cond: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def started(server: tether.Server, name: str) -> ClientConnection:
    ws = await connect(f"ws://{server.http_addr}/ws/exec/{name}")
    assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)) == {"info": "send {}"}
    await ws.send("{}")
    assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "started\n"
    return ws


def is_subreaper() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    assert libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
    return flag.value != 0


async def test_embedded_server_is_no_subreaper_yet_escaped_descendants_go(
    server: tether.Server,
) -> None:
    assert not is_subreaper(), "the host process must not adopt orphans"
    ws = await started(server, "esc")
    escaped: list[tuple[int, int]] = []

    def found() -> bool:
        escaped[:] = below_me(["sleep", "309"])
        return len(escaped) == 1

    await until("the escaped sleep 309", found)
    assert marked(["sleep", "309"]) == escaped, "it carries its connection's mark"
    await ws.close()
    # It ignores SIGTERM and left the group and the session: the mark finds it, SIGKILL ends it.
    await until("the escaped tree killed", lambda: not any(map(running, escaped)))
    await until("nothing marked left", lambda: not marked(["sleep", "309"]))


async def test_host_subprocesses_keep_their_exit_status(server: tether.Server) -> None:
    async def churn() -> None:
        for _ in range(10):
            ws = await started(server, "churn")
            await ws.close()

    async def host_children() -> list[int | None]:
        codes: list[int | None] = []
        for i in range(20):
            proc = await asyncio.create_subprocess_exec("sh", "-c", f"exit {i % 5 + 3}")
            codes.append(await proc.wait())
            done = await asyncio.to_thread(
                subprocess.run, ["sh", "-c", "sleep 0.01; exit 9"], check=False
            )
            codes.append(done.returncode)
        return codes

    _, codes = await asyncio.gather(churn(), host_children())
    expected: list[int | None] = []
    for i in range(20):
        expected += [i % 5 + 3, 9]
    assert codes == expected
