"""Helpers with ws-sync's names: `nonblock_call` and the 0.6.9 `toCamelCase`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("tether.sync")

__all__ = ["is_async_callable", "nonblock_call", "toCamelCase", "uncapitalize"]


def is_async_callable(func: Any) -> bool:
    """Whether calling `func` returns a coroutine (coroutine functions, bound or wrapped)."""
    while isinstance(func, functools.partial):
        func = func.func
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - objects with an async __call__
    )


async def nonblock_call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Calls `func` without blocking the event loop.

    Coroutine functions are awaited; plain functions run in a worker thread (as ws-sync does),
    and an awaitable they return (a sync wrapper around a coroutine) is awaited here.
    """
    if is_async_callable(func):
        return await func(*args, **kwargs)
    result = await asyncio.to_thread(func, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def toCamelCase(snake_case: str) -> str:
    """ws-sync 0.6.9's casing, kept exactly so frontends see the same keys.

    `hello_world` → `helloWorld`, `user_id` → `userId`, `text` → `text`
    (and, as in 0.6.9, `alreadyCamel` → `alreadycamel`, `value_2x` → `value2X`).
    """
    return uncapitalize(snake_case.title().replace("_", ""))


def uncapitalize(s: str) -> str:
    """Lower-cases the first character."""
    return s[:1].lower() + s[1:]
