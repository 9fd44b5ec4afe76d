"""The default runtime behind the module-level `eval`, `eval_async`, `bind_function` and
`bind_object`: one per asyncio Task, or per thread outside asyncio."""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._runtime import Runtime


class _Slot:
    __slots__ = ("owner", "runtime")

    def __init__(self, owner: object, runtime: Runtime) -> None:
        self.owner = owner
        self.runtime = runtime


_default: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar(
    "tether_js_default_runtime", default=None
)
_all_defaults: list[Runtime] = []
_defaults_lock = threading.Lock()


def _owner() -> object:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return task if task is not None else threading.current_thread()


def get_default_runtime() -> Runtime:
    """The calling Task's (or thread's) runtime, created on first use."""
    owner = _owner()
    slot = _default.get()
    if slot is not None and slot.owner is owner and not slot.runtime.is_closed():
        return slot.runtime
    rt = Runtime()
    _default.set(_Slot(owner, rt))
    with _defaults_lock:
        _all_defaults[:] = [r for r in _all_defaults if not r.is_closed()]
        _all_defaults.append(rt)
    if isinstance(owner, asyncio.Task):
        owner.add_done_callback(lambda _t: rt.close())
    return rt


def close_default_runtime() -> None:
    """Closes the calling context's default runtime (RuntimeError from a context that does not
    own it)."""
    slot = _default.get()
    if slot is None:
        return
    if slot.owner is not _owner():
        raise RuntimeError("Default runtime can only be closed from its owner context.")
    slot.runtime.close()
    _default.set(None)


def eval(code: str) -> Any:
    """`get_default_runtime().eval(code)`."""
    return get_default_runtime().eval(code)


def eval_async(code: str, **kwargs: Any) -> Awaitable[Any]:
    """`get_default_runtime().eval_async(code, **kwargs)`."""
    return get_default_runtime().eval_async(code, **kwargs)


def bind_function(name: str, handler: Callable[..., Any]) -> None:
    """`get_default_runtime().bind_function(name, handler)`."""
    get_default_runtime().bind_function(name, handler)


def bind_object(name: str, obj: Mapping[str, Any]) -> None:
    """`get_default_runtime().bind_object(name, obj)`."""
    get_default_runtime().bind_object(name, obj)


@atexit.register
def _close_all() -> None:
    with _defaults_lock:
        runtimes = list(_all_defaults)
        _all_defaults.clear()
    for rt in runtimes:
        rt.close()
