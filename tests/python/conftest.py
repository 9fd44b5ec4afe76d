"""Shared helpers: a server on ephemeral ports, line/HTTP clients over asyncio streams, and
`require_peer` for the real peers the suites compare against."""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator
from types import ModuleType
from typing import NoReturn

import pytest
import tether


def missing_peer(reason: str) -> NoReturn:
    """A real peer (jsrun, ws-sync, stock sidekick-py, ...) is not there: a skip on a developer's
    machine, a failure when `CI` is set, so CI can never pass by not running the comparison."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: a missing peer is a failure)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_peer(module: str, hint: str = "pip install '.[test]'") -> ModuleType:
    """Imports `module` (a real peer, or the optional part of tether a file tests), or calls
    `missing_peer` with how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing_peer(f"{module} is not installed ({exc}); {hint}")


EPHEMERAL = {"http": "127.0.0.1:0", "tcp": "127.0.0.1:0", "relay": "127.0.0.1:0"}


def split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


@pytest.fixture
async def server() -> AsyncIterator[tether.Server]:
    async with tether.serve(**EPHEMERAL, shutdown_grace=1) as srv:
        yield srv


async def tcp_exchange(addr: str, lines: list[str], replies: int) -> list[str]:
    """Sends `lines` to the rooms TCP door and reads `replies` lines back."""
    reader, writer = await asyncio.open_connection(*split(addr))
    try:
        for line in lines:
            writer.write(line.encode() + b"\n")
        await writer.drain()
        return [
            (await asyncio.wait_for(reader.readline(), 5)).decode().rstrip("\r\n")
            for _ in range(replies)
        ]
    finally:
        writer.close()


async def http_get(addr: str, path: str) -> tuple[int, str]:
    """A minimal HTTP/1.1 GET; returns (status, body)."""
    reader, writer = await asyncio.open_connection(*split(addr))
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace")
