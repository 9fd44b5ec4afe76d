"""Decorators with ws-sync's names: `@sync_all(...)`/`@sync_only(...)`/`@sync(...)` on
`__init__` (or on a class) create `self.sync`; `@remote_action`, `@remote_task` and
`@remote_task_cancel` expose methods. Keys may be omitted (class or method name), and the bare
forms (`@remote_action` without parentheses) work, as in ws-sync 0.8."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from types import EllipsisType
from typing import Any, TypeVar

from . import _types
from .sync import Sync

__all__ = ["remote_action", "remote_task", "remote_task_cancel", "sync", "sync_all", "sync_only"]

F = TypeVar("F", bound=Callable[..., Any])


def _attach(obj: Any, options: dict[str, Any]) -> None:
    """Creates `obj.sync`, replacing one a decorated parent `__init__` made moments ago."""
    old = obj.__dict__.get("sync") if hasattr(obj, "__dict__") else None
    if isinstance(old, Sync):
        old.close()
    object.__setattr__(obj, "sync", Sync(obj, **options))


def _decorate(target: Any, options: dict[str, Any]) -> Any:
    if isinstance(target, type):
        cls = target
        if _types.is_model_class(cls):
            post = cls.model_post_init

            def model_post_init(self: Any, context: Any, /) -> None:
                post(self, context)
                if type(self)._tether_sync_options is options:
                    _attach(self, options)

            cls.model_post_init = model_post_init  # type: ignore[method-assign]
        else:
            init = cls.__init__

            @functools.wraps(init)
            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                init(self, *args, **kwargs)
                if type(self)._tether_sync_options is options:
                    _attach(self, options)

            cls.__init__ = __init__  # type: ignore[misc]
        cls._tether_sync_options = options  # type: ignore[attr-defined]
        return cls

    init_func = target

    @functools.wraps(init_func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        init_func(self, *args, **kwargs)
        _attach(self, options)

    return wrapper


def sync(
    key: str | Callable[..., Any] | None = None,
    sync_all: bool = False,
    include: dict[str, str | EllipsisType] | list[str] | None = None,
    exclude: list[str] | None = None,
    toCamelCase: bool = False,
    send_on_init: bool = True,
    expose_running_tasks: bool = False,
    logger: logging.Logger | None = None,
) -> Any:
    """Decorates `__init__` (or a class) so that each instance gets `self.sync = Sync(...)`."""
    if callable(key):  # bare @sync
        return _decorate(key, {"key": None, "sync_all": sync_all})
    options = {
        "key": key,
        "sync_all": sync_all,
        "include": include,
        "exclude": exclude,
        "toCamelCase": toCamelCase,
        "send_on_init": send_on_init,
        "expose_running_tasks": expose_running_tasks,
        "logger": logger,
    }
    return lambda target: _decorate(target, options)


def sync_all(
    key: str | Callable[..., Any] | None = None,
    include: dict[str, str | EllipsisType] | list[str] | None = None,
    exclude: list[str] | None = None,
    toCamelCase: bool = False,
    send_on_init: bool = True,
    expose_running_tasks: bool = False,
    logger: logging.Logger | None = None,
) -> Any:
    """Like `sync`, syncing every public, non-callable attribute (minus `exclude`)."""
    if callable(key):
        return _decorate(key, {"key": None, "sync_all": True})
    return sync(
        key,
        sync_all=True,
        include=include,
        exclude=exclude,
        toCamelCase=toCamelCase,
        send_on_init=send_on_init,
        expose_running_tasks=expose_running_tasks,
        logger=logger,
    )


def sync_only(
    _key: str | None = None,
    _toCamelCase: bool = False,
    _send_on_init: bool = True,
    _expose_running_tasks: bool = False,
    _logger: logging.Logger | None = None,
    **sync_attributes: str | EllipsisType,
) -> Any:
    """Like `sync`, syncing only the keyword-named attributes (value: frontend name or `...`)."""
    return sync(
        _key,
        sync_all=False,
        include=sync_attributes,
        exclude=[],
        toCamelCase=_toCamelCase,
        send_on_init=_send_on_init,
        expose_running_tasks=_expose_running_tasks,
        logger=_logger,
    )


def _marker(mark: str, key: str | Callable[..., Any] | None, extra: Callable[[Any, str], None]):
    def apply(func: F, name: str | None) -> F:
        remote = name or func.__name__
        setattr(func, mark, remote)
        extra(func, remote)
        return func

    if callable(key):
        return apply(key, None)  # bare form
    return lambda func: apply(func, key)


def remote_action(key: str | Callable[..., Any] | None = None) -> Any:
    """Exposes a method as an action (`_ACTION`); actions of one session run one at a time."""
    return _marker("remote_action", key, lambda f, n: None)


def remote_task_cancel(key: str | Callable[..., Any] | None = None) -> Any:
    """Exposes a method as the cancel handler of task `key` (awaited inside the cancelled task)."""
    return _marker("remote_task_cancel", key, lambda f, n: None)


def _task_extra(func: Any, name: str) -> None:
    func.cancel = remote_task_cancel(name)


def remote_task(key: str | Callable[..., Any] | None = None) -> Any:
    """Exposes a method as a task (`_TASK_START`/`_TASK_CANCEL`): concurrent, cancellable, one
    running instance per name. `@my_task.cancel` marks its cancel handler."""
    return _marker("remote_task", key, _task_extra)
