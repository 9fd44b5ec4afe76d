"""Lifecycle: a process that imports tether, starts a server, awaits Rust futures and exits
must exit 0 every time (pyo3-async-runtimes crashes at exit when a task outlives the interpreter), and
`python -m tether serve` drains and exits 0 on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import tether
from conftest import split, tcp_exchange

RUNS = 50

# Import → start → await Rust futures → exit, with no explicit close(): the atexit hook does it.
SCRIPT = textwrap.dedent(
    """
    import asyncio
    import tether

    async def main():
        server = tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="off", shutdown_grace=1)
        r, w = await asyncio.open_connection(*server.tcp_addr.rsplit(":", 1))
        w.write(b"HELLO main:exit\\n")
        await w.drain()
        assert await r.readline() == b"OK HELLO main:exit\\n"
        await asyncio.gather(*(tether._native.sleep(0.001) for _ in range(50)))
        await tether._native.sleep(0)
        pending = tether._native.sleep(10)  # still running at exit
        second = tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="off")  # left open
        await server.aclose()
        w.close()
        return pending, second

    asyncio.run(main())
    """
)


def _run_once(_: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )


def test_import_start_await_exit_50_times() -> None:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        results = list(pool.map(_run_once, range(RUNS)))
    failed = [(r.returncode, r.stderr[-2000:]) for r in results if r.returncode != 0]
    assert not failed, f"{len(failed)}/{RUNS} runs did not exit 0: {failed[:3]}"


async def _serve_in_subprocess() -> tuple[asyncio.subprocess.Process, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tether",
        "serve",
        "--http",
        "127.0.0.1:0",
        "--tcp",
        "127.0.0.1:0",
        "--relay",
        "127.0.0.1:0",
        "--shutdown-grace",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    http = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
    relay = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
    tcp = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
    assert http[:2] == ["listening", "http"], http
    assert relay[:2] == ["listening", "relay"], relay
    assert tcp[:2] == ["listening", "tcp"], tcp
    return proc, http[2], tcp[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_python_m_tether_serve_drains_on_signal(sig: signal.Signals) -> None:
    proc, _http, tcp = await _serve_in_subprocess()
    try:
        reader, writer = await asyncio.open_connection(*split(tcp))
        writer.write(b"HELLO main:erin\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"OK HELLO main:erin\n"
        assert await tcp_exchange(tcp, ["HELLO main:frank"], 1) == ["OK HELLO main:frank"]
        proc.send_signal(sig)
        lines = []  # presence pushes (frank's JOINED/LEFT) may come first; BYE then EOF
        while line := await asyncio.wait_for(reader.readline(), 10):
            lines.append(line.decode().rstrip("\n"))
        assert lines[-1:] == ["BYE server shutting down"], lines
        writer.close()
        code = await asyncio.wait_for(proc.wait(), 15)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
        assert code == 0, err
        assert f"{sig.name}: shutting down" in err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_python_m_tether_bad_flag_exits_2() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tether", "serve", "--http", "nope", "--tcp", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert r.returncode == 2, r.stderr
    assert "invalid http address" in r.stderr


def test_close_before_exit_in_process() -> None:
    async def run() -> None:
        srv = tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="off")
        await tether._native.sleep(0.001)
        await srv.aclose()

    asyncio.run(run())
    tether.close()
    assert not tether._native.runtime_alive()
