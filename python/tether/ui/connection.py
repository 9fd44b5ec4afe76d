"""The module functions of `tether.ui` (sidekick-py 0.0.7's `sidekick.connection` API)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from . import _client
from ._settings import DEFAULT_CONNECTION_WAIT, configure, set_url

logger = logging.getLogger("tether.ui")

T = TypeVar("T")

__all__ = [
    "activate_connection",
    "clear_all",
    "configure",
    "register_global_message_handler",
    "run_forever",
    "run_forever_async",
    "set_url",
    "shutdown",
    "submit_interval",
    "submit_task",
    "wait_for_connection",
    "wait_for_connection_async",
]


def activate_connection() -> None:
    """Starts connecting in the background (non-blocking). Creating a component does it too."""
    _client.get_client().activate()


def wait_for_connection(timeout: float | None = None) -> None:
    """Blocks until a UI is online and the queued frames are on their way.

    `timeout` defaults to 180 s. Raises `SidekickTimeoutError` when it runs out (the client keeps
    trying in the background), the client's error if the connection is gone for good
    (`SidekickConnectionRefusedError`, `SidekickDisconnectedError`), and `RuntimeError` when
    called from tether.ui's own I/O thread (use `wait_for_connection_async` there).
    """
    wait = DEFAULT_CONNECTION_WAIT if timeout is None else timeout
    _client.client_to_wait_on().wait_active(wait)


async def wait_for_connection_async(timeout: float | None = None) -> None:
    """`wait_for_connection` for asyncio code: awaits without blocking the running loop."""
    wait = DEFAULT_CONNECTION_WAIT if timeout is None else timeout
    await _client.client_to_wait_on().wait_active_async(wait)


def clear_all() -> None:
    """Removes every component from the UI (`global/clearAll`, queued like any frame)."""
    _client.get_client().send({"id": 0, "component": "global", "type": "clearAll"})


def register_global_message_handler(
    handler: Callable[[dict[str, Any]], Any] | None,
) -> None:
    """`handler(message)` sees every frame received (as a dict), in order, on a dedicated
    thread; `None` removes it."""
    _client.get_client().set_global_handler(handler)


def shutdown(wait: bool = False) -> None:
    """Delivers what is queued (at most 5 s), sends the offline announce and closes. With
    `wait=True`, blocks until the I/O thread has stopped. The next component or call starts a new
    client; components created before keep raising `SidekickDisconnectedError`."""
    client = _client.current_client()
    if client is not None:
        client.shutdown(wait=wait)


def run_forever() -> None:
    """Keeps the script alive to handle UI events until the connection ends.

    Returns after `shutdown()` (e.g. from a callback) or Ctrl+C (which shuts down). Raises the
    error when the connection is gone for good: `SidekickConnectionRefusedError` if the relay
    could never be reached, `SidekickDisconnectedError` if it was lost and reconnecting failed
    for `reconnect_timeout` (30 s by default, see `configure`). While the relay is connected it
    waits, however long, for a UI to come online.
    """
    client = _client.client_to_wait_on()
    client.activate()
    try:
        client.wait_closed()
    except KeyboardInterrupt:
        logger.info("KeyboardInterrupt in run_forever: shutting down")
        client.shutdown(wait=True)
        return
    if client.error is not None:
        raise client.error


async def run_forever_async() -> None:
    """`run_forever` for asyncio code: awaits until the connection ends (same rules). Cancelling
    it shuts the client down."""
    client = _client.client_to_wait_on()
    client.activate()
    try:
        await client.wait_closed_async()
    except asyncio.CancelledError:
        client.shutdown()
        raise
    if client.error is not None:
        raise client.error


def submit_task(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Runs `coro` as a task on tether.ui's event loop (cancelled by `shutdown()`)."""
    return _client.get_client().create_task(coro)


def submit_interval(callback: Callable[[], Any], interval: float) -> asyncio.Task[None]:
    """Calls `callback()` every `interval` seconds until `shutdown()` (or `task.cancel()`).

    An `async def` callback runs on the event loop; a plain one in a worker thread (so a slow
    frame does not stall the I/O). An exception is logged and the interval goes on.
    """
    if not callable(callback):
        raise TypeError(
            "The first argument to submit_interval must be a callable function or coroutine."
        )
    if not isinstance(interval, (int, float)) or interval <= 0:
        raise ValueError("The interval must be a positive number.")
    client = _client.get_client()
    return client.create_task(client.interval(callback, float(interval)))
