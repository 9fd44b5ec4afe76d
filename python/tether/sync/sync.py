"""`Sync`: one object's attributes mirrored into a frontend under a key, with remote actions
and tasks — ws-sync's `Sync` over the Rust engine (`Session.engine`): this module reads and
assigns attributes, validates with pydantic and runs the handlers; diffs, frames, dispatch and
task bookkeeping are the engine's."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from types import EllipsisType
from typing import Any, Literal

from . import _types
from .errors import NoSessionError, SyncValidationError
from .session import Session, session_context
from .utils import nonblock_call
from .utils import toCamelCase as camel_case

__all__ = [
    "Sync",
    "ToastType",
    "action_event",
    "download_event",
    "get_current_sync_key_prefix",
    "get_event",
    "patch_event",
    "set_event",
    "sync_key_scope",
    "task_cancel_event",
    "task_start_event",
    "toast_event",
]

ToastType = Literal["default", "message", "info", "success", "warning", "error"]

_LEVELS = {"message": logging.INFO, "info": logging.INFO, "success": logging.INFO}
_LEVELS |= {"warning": logging.WARNING, "error": logging.ERROR}


def set_event(key: str) -> str:
    """The event that carries a whole state."""
    return f"_SET:{key}"


def get_event(key: str) -> str:
    """The event that asks for the whole state."""
    return f"_GET:{key}"


def patch_event(key: str) -> str:
    """The event that carries a JSON Patch."""
    return f"_PATCH:{key}"


def action_event(key: str) -> str:
    """The event that carries an action."""
    return f"_ACTION:{key}"


def task_start_event(key: str) -> str:
    """The event that starts a task."""
    return f"_TASK_START:{key}"


def task_cancel_event(key: str) -> str:
    """The event that cancels a task."""
    return f"_TASK_CANCEL:{key}"


def toast_event() -> str:
    """The event that shows a toast."""
    return "_TOAST"


def download_event() -> str:
    """The event that downloads a file."""
    return "_DOWNLOAD"


# ----- key scopes (ws-sync 0.8's sync_key_scope) -----

_key_prefix: ContextVar[tuple[str, ...]] = ContextVar("tether_sync_key_prefix", default=())


@contextlib.contextmanager
def sync_key_scope(prefix: str | None) -> Iterator[None]:
    """Prefixes the keys of `Sync`s created inside as `prefix/KEY` (nested: `a/b/KEY`)."""
    token = _key_prefix.set((*_key_prefix.get(), prefix) if prefix else _key_prefix.get())
    try:
        yield
    finally:
        _key_prefix.reset(token)


def get_current_sync_key_prefix() -> str:
    """The prefix `sync_key_scope` blocks apply here (`""` outside any)."""
    return "/".join(_key_prefix.get())


def _scoped(key: str) -> str:
    prefix = get_current_sync_key_prefix()
    return f"{prefix}/{key}" if prefix else key


def _static(cls: type, name: str) -> Any:
    try:
        return inspect.getattr_static(cls, name)
    except AttributeError:
        return None


def _marked(cls: type, mark: str) -> Iterator[tuple[str, str]]:
    """`(attribute, remote name)` of the methods carrying `mark`, without calling properties."""
    for name in dir(cls):
        raw = _static(cls, name)
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        remote = getattr(raw, mark, None) if callable(raw) else None
        if isinstance(remote, str):
            yield name, remote


class Sync:
    """Registers an object's attributes to be synced with the frontend under `key`.

    The object's state is sent whole (`_SET`) on every connection and as JSON Patch (`_PATCH`)
    on `await sync()`; actions and tasks from the frontend reach the decorated methods.
    """

    @classmethod
    def all(
        cls,
        obj: object,
        key: str | None = None,
        include: dict[str, str | EllipsisType] | list[str] | None = None,
        exclude: list[str] | None = None,
        toCamelCase: bool = False,
        send_on_init: bool = True,
        expose_running_tasks: bool = False,
        logger: logging.Logger | None = None,
        actions: dict[str, Callable[..., Any]] | None = None,
        tasks: dict[str, Callable[..., Any]] | None = None,
        task_cancels: dict[str, Callable[..., Any]] | None = None,
    ) -> Sync:
        """Syncs every public, non-callable attribute (minus `exclude`)."""
        return cls(
            obj,
            key,
            sync_all=True,
            include=include,
            exclude=exclude,
            toCamelCase=toCamelCase,
            send_on_init=send_on_init,
            expose_running_tasks=expose_running_tasks,
            logger=logger,
            actions=actions,
            tasks=tasks,
            task_cancels=task_cancels,
        )

    @classmethod
    def only(
        cls,
        _obj: object,
        _key: str | None = None,
        _toCamelCase: bool = False,
        _send_on_init: bool = True,
        _expose_running_tasks: bool = False,
        _logger: logging.Logger | None = None,
        _actions: dict[str, Callable[..., Any]] | None = None,
        _tasks: dict[str, Callable[..., Any]] | None = None,
        _task_cancels: dict[str, Callable[..., Any]] | None = None,
        **sync_attributes: str | EllipsisType,
    ) -> Sync:
        """Syncs only the keyword-named attributes (value: frontend name, or `...`)."""
        return cls(
            _obj,
            _key,
            sync_all=False,
            include=sync_attributes,
            exclude=[],
            toCamelCase=_toCamelCase,
            send_on_init=_send_on_init,
            expose_running_tasks=_expose_running_tasks,
            logger=_logger,
            actions=_actions,
            tasks=_tasks,
            task_cancels=_task_cancels,
        )

    def __init__(
        self,
        obj: object,
        key: str | None = None,
        sync_all: bool = False,
        include: dict[str, str | EllipsisType] | list[str] | None = None,
        exclude: list[str] | None = None,
        toCamelCase: bool = False,
        send_on_init: bool = True,
        expose_running_tasks: bool = False,
        logger: logging.Logger | None = None,
        actions: dict[str, Callable[..., Any]] | None = None,
        tasks: dict[str, Callable[..., Any]] | None = None,
        task_cancels: dict[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.obj = obj
        self.key = _scoped(key if key is not None else type(obj).__name__)
        self.camelize = bool(toCamelCase)
        self.casing_func: Callable[[str], str] | None = camel_case if self.camelize else None
        self.send_on_init = send_on_init
        self.task_exposure = self.casing("running_tasks") if expose_running_tasks else None
        self.logger = logger or logging.getLogger("tether.sync")
        try:
            self.session: Session = session_context.get()
        except LookupError:
            raise NoSessionError(
                f"no session for Sync {self.key!r}: create synced objects inside "
                "`with session:` or inside a handler"
            ) from None

        if isinstance(include, list):
            include = dict.fromkeys(include, ...)
        include = dict(include or {})
        exclude = list(exclude or [])
        if not include.keys().isdisjoint(exclude):
            both = sorted(set(include) & set(exclude))
            raise ValueError(f"attribute(s) both included and excluded: {', '.join(both)}")

        # ----- attributes -----
        self.sync_attributes: dict[str, str] = {}
        if sync_all:
            names = _types.model_attributes(obj) if _types.is_model(obj) else dir(obj)
            for name in names:
                if name in exclude or name.startswith("_") or name == "sync":
                    continue
                if not _types.is_model(obj):
                    try:
                        value = getattr(obj, name)
                    except AttributeError:
                        continue
                    if callable(value) or isinstance(value, Sync):
                        continue
                self.sync_attributes[name] = self.casing(name)
        for name, front in include.items():
            self.sync_attributes[name] = self.casing(name) if front is ... else str(front)
        missing = [a for a in [*self.sync_attributes, *exclude] if not hasattr(obj, a)]
        if missing:
            raise AttributeError(
                f"Sync {self.key!r}: {type(obj).__name__} has no attribute(s) {', '.join(missing)}"
            )
        self.key_to_attr = {k: a for a, k in self.sync_attributes.items()}
        self.type_adapters: dict[str, Any] = _types.adapters_for(obj, list(self.sync_attributes))

        # ----- actions and tasks -----
        cls = type(obj)
        self._actions: dict[str, Callable[..., Any]] = dict(actions or {})
        self._tasks: dict[str, Callable[..., Any]] = dict(tasks or {})
        self._task_cancels: dict[str, Callable[..., Any]] = dict(task_cancels or {})
        for attr, name in _marked(cls, "remote_action"):
            self._actions[name] = getattr(obj, attr)
        for attr, name in _marked(cls, "remote_task"):
            self._tasks[name] = getattr(obj, attr)
        for attr, name in _marked(cls, "remote_task_cancel"):
            self._task_cancels[name] = getattr(obj, attr)
        self._validators: dict[tuple[str, str], _types.ParamsValidator] = {}
        self.running_tasks: dict[str, asyncio.Task[Any]] = {}
        self._task_ids: dict[str, int] = {}  # task name → the engine's id
        self._unstarted: dict[str, Any] = {}  # task name → its coroutine, until it runs

        # ws-sync's public handler attributes
        self.actions = self._handle_action
        self.tasks = self._start_task_frame
        self.task_cancels = self._cancel_task_frame

        # ----- state -----
        self._dumps = {
            attr: functools.partial(ta.dump_json, warnings=False)
            for attr, ta in self.type_adapters.items()
        }
        self._last_sync: float | None = None
        self._trailing: asyncio.TimerHandle | None = None
        self._closed = False
        self._register()

    # ----- high level -----

    async def sync(self, if_since_last: float | None = None) -> None:
        """Sends what changed since the last sync as one `_PATCH` (nothing if nothing did).

        `if_since_last`: skip if the last patch went out less than that many seconds ago; a
        skipped sync is sent once the interval has passed, so the last change is never lost.
        Raises `TypeError`/`ValueError` when an attribute is not JSON (say which and where).
        """
        session = self.session
        engine = session.engine
        if not engine.is_connected:
            return
        now = time.monotonic()
        if if_since_last and self._last_sync is not None:
            wait = self._last_sync + if_since_last - now
            if wait > 0:
                self._schedule_trailing(wait)
                return
        try:
            sent = engine.sync(self.key, self._parts())
        finally:
            if engine.has_output():
                await session.flush()
        if sent:
            self._last_sync = now

    def _schedule_trailing(self, delay: float) -> None:
        if self._trailing is not None:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._trailing = None
            if not self._closed:
                loop.create_task(self.sync())

        self._trailing = loop.call_later(delay, fire)

    async def __call__(
        self,
        if_since_last: float | None = None,
        toast: str | None = None,
        type: ToastType = "default",
    ) -> None:
        """`await obj.sync()`: syncs, then sends `toast` if given."""
        await self.sync(if_since_last=if_since_last)
        if toast:
            await self.toast(toast, type=type)

    async def send_action(self, action: dict[str, Any]) -> None:
        """Sends an action to the frontend (`{"type": name, ...}`)."""
        if self.session.engine.send_action(self.key, action):
            await self.session.flush()

    async def send_binary(self, metadata: dict[str, Any], data: bytes) -> None:
        """Sends bytes with metadata to the frontend's action handler (`_BIN_META`)."""
        await self.session.send_binary(action_event(self.key), metadata, data)

    async def toast(
        self,
        *messages: Any,
        type: ToastType = "default",
        logger: logging.Logger | None = None,
    ) -> str:
        """Shows a toast in the frontend; returns the text (messages joined by spaces)."""
        text = " ".join(str(m) for m in messages)
        (logger or self.logger).log(_LEVELS.get(type, logging.DEBUG), text)
        if self.session.engine.toast(type, text):
            await self.session.flush()
        return text

    async def download(self, filename: str, binary: bytes) -> None:
        """Makes the frontend download `binary` as `filename` (base64 in a `_DOWNLOAD`)."""
        if self.session.engine.download(filename, bytes(binary)):
            await self.session.flush()

    def observe(self, obj: object, **sync_attributes: str | EllipsisType) -> None:
        """Not supported (an empty stub in ws-sync): create another `Sync` instead."""
        raise NotImplementedError("Sync.observe is not supported; create another Sync instead")

    def close(self) -> None:
        """Stops syncing: the key is forgotten by the session (running tasks keep running)."""
        if self._closed:
            return
        self._closed = True
        if self._trailing is not None:
            self._trailing.cancel()
            self._trailing = None
        if self.session._syncs.get(self.key) is self:
            del self.session._syncs[self.key]
            with contextlib.suppress(KeyError):
                self.session.engine.unregister(self.key)

    @property
    def state_snapshot(self) -> dict[str, Any]:
        """What the frontend was last sent (a fresh copy)."""
        state = self.session.engine.state(self.key)
        return state if isinstance(state, dict) else {}

    def casing(self, attr: str) -> str:
        """The frontend name of an attribute (camelCase when asked for)."""
        return camel_case(attr) if self.camelize else attr

    # ----- state -----

    def _parts(self) -> list[tuple[Any, ...]]:
        """The state, one `(key, value, dump_json or None)` per attribute: the native side walks
        the value and calls `dump_json` only for what it cannot read. The running tasks are the
        engine's."""
        obj, dumps = self.obj, self._dumps
        return [
            (key, getattr(obj, attr), dumps.get(attr)) for attr, key in self.sync_attributes.items()
        ]

    def _send_state(self, _: Any = None) -> None:
        """Answers the engine's `state_wanted`: the full state from the attributes, as `_SET`."""
        try:
            self.session.engine.set(self.key, self._parts())
        except Exception as e:
            self.logger.error("Could not send the state of %s", self.key, exc_info=e)
            self.session.engine.toast(
                "error", f"server error: could not serialize the state of {self.key}"
            )

    def _value(self, attr: str, value: Any) -> Any:
        adapter = self.type_adapters.get(attr)
        if adapter is None:
            return value
        try:
            return _types.validate(adapter, value)
        except SyncValidationError as e:
            raise SyncValidationError(f"{self.sync_attributes[attr]}: {e}") from None

    def _accept(self, keys: list[str]) -> None:
        """Validates the client's new value of each touched frontend key and assigns them all, or
        none: on an unknown key or a bad value the engine corrects the client (`reject`)."""
        engine = self.session.engine
        values: dict[str, Any] = {}
        try:
            for key in keys:
                attr = self.key_to_attr.get(key)
                if attr is None:
                    raise SyncValidationError(f"{self.key}: unknown key {key!r}")
                try:
                    raw = engine.field(self.key, key)
                except KeyError:
                    raise SyncValidationError(f"{self.key}: {key!r} was removed") from None
                values[attr] = self._value(attr, raw)
        except SyncValidationError as e:
            self.logger.warning("%s", e)
            try:
                engine.reject(self.key, self._parts(), str(e))
            except Exception as err:
                self.logger.error("Could not send the state of %s", self.key, exc_info=err)
            return
        for attr, value in values.items():
            with contextlib.suppress(AttributeError):  # read-only property
                setattr(self.obj, attr, value)

    def _client_set(self, keys: list[str]) -> None:
        state = self.session.engine.state(self.key)
        if not isinstance(state, dict):
            self.session.engine.reject(
                self.key, self._parts(), f"{set_event(self.key)} expects an object"
            )
            return
        self._accept(keys)

    def _client_patch(self, keys: list[str]) -> None:
        state = self.session.engine.state(self.key)
        if not isinstance(state, dict):
            self.session.engine.reject(
                self.key, self._parts(), f"{self.key}: the state must stay an object"
            )
            return
        self._accept(keys)

    # ----- actions and tasks -----

    def _params(self, kind: str, name: str, handler: Callable[..., Any], args: dict[str, Any]):
        v = self._validators.get((kind, name))
        if v is None:
            title = f"{type(self.obj).__name__}{kind}{name.title().replace('_', '')}"
            v = _types.ParamsValidator(handler, title, self.casing_func)
            self._validators[(kind, name)] = v
        try:
            return v(args)
        except SyncValidationError as e:
            raise SyncValidationError(f"{kind.lower()} {name!r}: {e}") from None

    @staticmethod
    def _args(ev: dict[str, Any]) -> dict[str, Any]:
        args = dict(ev["args"])
        if ev.get("binary") is not None:
            args["data"] = ev["binary"]
        return args

    def _prepare(
        self, kind: str, handlers: dict[str, Callable[..., Any]], ev: dict[str, Any]
    ) -> tuple[Callable[..., Any], dict[str, Any]] | str:
        """The handler of an action or task the engine released, with its validated keyword
        arguments; or, when there is none or the arguments do not fit, why (logged)."""
        name = ev["name"]
        try:
            handler = handlers.get(name)
            if handler is None:
                raise SyncValidationError(f"{self.key!r} has no {kind.lower()} {name!r}")
            return handler, self._params(kind, name, handler, self._args(ev))
        except Exception as e:
            self.logger.warning("%s %s of %s: %s", kind.lower(), name, self.key, e)
            return self._failure(e)

    @staticmethod
    def _failure(e: BaseException) -> str:
        return str(e) if isinstance(e, SyncValidationError) else f"{type(e).__name__}: {e}"

    def _run_action(self, ev: dict[str, Any]) -> None:
        """The engine released one action: run it as a task, report how it ended."""
        session, action, name = self.session, ev["action"], ev["name"]
        prepared = self._prepare("Action", self._actions, ev)
        if isinstance(prepared, str):
            session.engine.action_failed(action, prepared)
            return
        handler, kwargs = prepared

        async def run() -> None:
            with session:
                try:
                    await nonblock_call(handler, **kwargs)
                except Exception as e:
                    self.logger.error("action %s of %s failed", name, self.key, exc_info=e)
                    session.engine.action_failed(action, self._failure(e))
                except BaseException:
                    session.engine.action_failed(action, "cancelled")
                    raise
                else:
                    session.engine.action_done(action)
                await session.flush()

        session.action_task = asyncio.get_running_loop().create_task(run())

    def _start_task(self, ev: dict[str, Any]) -> None:
        """The engine started a task: validate, then run it concurrently."""
        session, task, name = self.session, ev["task"], ev["name"]
        prepared = self._prepare("Task", self._tasks, ev)
        if isinstance(prepared, str):
            session.engine.task_failed(task, prepared)
            return
        factory, kwargs = prepared
        with session:
            body = nonblock_call(factory, **kwargs)
            self._unstarted[name] = body
            self._task_ids[name] = task
            self.running_tasks[name] = asyncio.get_running_loop().create_task(
                self._run_task(name, task, body)
            )

    async def _run_task(self, name: str, task: int, body: Any) -> None:
        self._unstarted.pop(name, None)
        me = asyncio.current_task()
        engine = self.session.engine
        try:
            await body
        except asyncio.CancelledError:
            self.logger.info("Task %s cancelled", name)
            try:
                if (on_cancel := self._task_cancels.get(name)) is not None:
                    await nonblock_call(on_cancel)
            finally:
                self._forget_task(name, me)
                with contextlib.suppress(Exception):
                    engine.task_cancelled(task)
                    await self.session.flush()
            raise
        except Exception as e:
            self.logger.error("task %s of %s failed", name, self.key, exc_info=e)
            self._forget_task(name, me)
            with contextlib.suppress(Exception):
                engine.task_failed(task, self._failure(e))
        else:
            self._forget_task(name, me)
            with contextlib.suppress(Exception):
                engine.task_done(task)
        with contextlib.suppress(Exception):
            await self.session.flush()

    def _forget_task(self, name: str, me: Any) -> None:
        if self.running_tasks.get(name) is me:
            del self.running_tasks[name]
            self._task_ids.pop(name, None)

    def _cancel_task(self, ev: dict[str, Any]) -> None:
        name, task = ev["name"], ev["task"]
        running = self.running_tasks.get(name)
        if running is None:
            self.session.engine.task_cancelled(task)
            return
        running.cancel()
        body = self._unstarted.pop(name, None)
        if body is None:
            return  # running: its own CancelledError handling reports back
        # Cancelled before its first step: the wrapper never runs, so clean up here.
        body.close()
        del self.running_tasks[name]
        self._task_ids.pop(name, None)
        session = self.session

        async def cancelled() -> None:
            with session:
                try:
                    if (on_cancel := self._task_cancels.get(name)) is not None:
                        await nonblock_call(on_cancel)
                finally:
                    session.engine.task_cancelled(task)
                    await session.flush()

        asyncio.get_running_loop().create_task(cancelled())

    # ws-sync's handler attributes, for code that calls them directly with a frame's data

    async def _handle_action(self, action: Any) -> None:
        name, args = self._named(action_event(self.key), action)
        handler = self._actions.get(name)
        if handler is None:
            raise SyncValidationError(f"{self.key!r} has no action {name!r}")
        await nonblock_call(handler, **self._params("Action", name, handler, args))

    async def _start_task_frame(self, data: Any) -> None:
        name, args = self._named(task_start_event(self.key), data)
        self.session.engine.handle_text(
            self.session.engine.connection or 0,
            json.dumps({"type": task_start_event(self.key), "data": {"type": name, **args}}),
        )
        await self.session.flush()

    async def _cancel_task_frame(self, data: Any) -> None:
        name, _ = self._named(task_cancel_event(self.key), data)
        self.session.engine.handle_text(
            self.session.engine.connection or 0,
            json.dumps({"type": task_cancel_event(self.key), "data": {"type": name}}),
        )
        await self.session.flush()

    @staticmethod
    def _named(event: str, data: Any) -> tuple[str, dict[str, Any]]:
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise SyncValidationError(f'{event} expects {{"type": name, ...}}')
        args = dict(data)
        return args.pop("type"), args

    # ----- registration -----

    def _register(self) -> None:
        session = self.session
        previous = session._syncs.get(self.key)
        if previous is not None and previous is not self:
            self.logger.warning("Key %r is synced twice in one session; the new one wins", self.key)
            previous.close()
        session._syncs[self.key] = self
        options = {
            "send_on_init": self.send_on_init,
            "expose_running_tasks": self.task_exposure is not None,
            "running_tasks_key": self.task_exposure or "running_tasks",
            "pull_state": True,
        }
        try:
            session.engine.register(self.key, self._parts(), **options)
        except (TypeError, ValueError):
            # not JSON yet: the first full state (connect, `_GET`) reports it
            session.engine.register_value(self.key, {}, **options)

    def __repr__(self) -> str:
        return f"<tether.sync.Sync {self.key!r} of {type(self.obj).__name__}>"
