"""The user callbacks and tasks of one client: `async def` callbacks and tasks run on the I/O
loop, plain `def` callbacks in worker threads (a serial one for the global handler), and the
reader pauses while too many are pending."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from ._settings import _settings
from .exceptions import SidekickDisconnectedError

logger = logging.getLogger("tether.ui")

# The reader stops reading (backpressure) while this many callbacks are pending.
_MAX_PENDING_CALLBACKS = 1024

T = TypeVar("T")


def is_async_callable(func: object) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class LoopOwner(Protocol):
    """What the callbacks need from their client: its lock, its I/O loop and whether it closed."""

    _lock: threading.Lock
    _loop: asyncio.AbstractEventLoop | None

    @property
    def closed(self) -> bool: ...

    def ensure_loop(self) -> asyncio.AbstractEventLoop: ...

    def _on_loop_thread(self) -> bool: ...

    def _call_soon(self, func: Callable[..., Any], *args: Any) -> None: ...


class Callbacks:
    """One client's callbacks and tasks (the pending count is guarded by the client's lock)."""

    def __init__(self, owner: LoopOwner) -> None:
        self._owner = owner
        # asyncio.Event binds to a loop on first use (Python >= 3.10): the I/O loop's.
        self._room = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._global_executor: concurrent.futures.ThreadPoolExecutor | None = None

    async def slot(self) -> None:
        """Waits (on the I/O loop) until fewer than the maximum of callbacks are pending."""
        while self._pending >= _MAX_PENDING_CALLBACKS:
            self._room.clear()
            logger.debug("callbacks backlog full; pausing the reader")
            await self._room.wait()

    async def close(self) -> None:
        """Cancels the tasks (waiting up to 1 s for them) and stops the worker threads."""
        tasks = [task for task in self._tasks if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=1.0)
        for executor in (self._executor, self._global_executor):
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)

    def _get_executor(self, serial: bool) -> concurrent.futures.ThreadPoolExecutor:
        if serial:
            if self._global_executor is None:
                self._global_executor = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix="tether-ui-global"
                )
            return self._global_executor
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                _settings.callback_workers, thread_name_prefix="tether-ui-callback"
            )
        return self._executor

    def run(self, callback: Callable[..., Any], *args: Any) -> None:
        """Runs a user callback: `async def` as a task on the I/O loop, a plain `def` in a
        worker thread, so that a blocking callback never stalls the I/O."""
        if is_async_callable(callback):
            self.create_task(self._guard(callback(*args), callback))
        else:
            self.submit(callback, args, serial=False)

    def submit(self, callback: Callable[..., Any], args: tuple[Any, ...], serial: bool) -> None:
        """Runs a plain callback in a worker thread (`serial`: the global handler's one)."""
        owner = self._owner
        with owner._lock:
            if owner.closed:
                return
            self._pending += 1
        try:
            self._get_executor(serial).submit(self._call_sync, callback, args)
        except RuntimeError:  # executor shut down: the client is closing
            self._finished()

    def _call_sync(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                self.create_task(self._guard(result, callback))
        except Exception:
            logger.exception("callback %r raised", callback)
        finally:
            self._owner._call_soon(self._finished)

    def _finished(self) -> None:
        owner = self._owner
        with owner._lock:
            self._pending -= 1
            room = self._pending < _MAX_PENDING_CALLBACKS
        if room and owner._loop is not None and owner._on_loop_thread():
            self._room.set()

    async def _guard(self, awaitable: Any, callback: object) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("async callback %r raised", callback)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("tether.ui task %r failed", task, exc_info=task.exception())

    def create_task(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Starts `coro` as a task on the I/O loop, from any thread."""
        owner = self._owner
        loop = owner.ensure_loop()
        if owner._on_loop_thread():
            task = loop.create_task(coro)
            self._track(task)
            return task
        ref: concurrent.futures.Future[asyncio.Task[T]] = concurrent.futures.Future()

        def make() -> None:
            try:
                task = loop.create_task(coro)
            except BaseException as exc:
                ref.set_exception(exc)
                return
            self._track(task)
            ref.set_result(task)

        try:
            loop.call_soon_threadsafe(make)
        except RuntimeError as exc:
            coro.close()
            raise SidekickDisconnectedError(
                "tether.ui is shut down.", reason="its event loop is closed"
            ) from exc
        return ref.result(timeout=5.0)

    async def interval(self, callback: Callable[[], Any], seconds: float) -> None:
        """Calls `callback` every `seconds` until cancelled; a failing call is logged."""
        is_async = is_async_callable(callback)
        loop = asyncio.get_running_loop()
        name = getattr(callback, "__name__", repr(callback))
        while True:
            await asyncio.sleep(seconds)
            try:
                if is_async:
                    await callback()
                else:
                    try:
                        running = loop.run_in_executor(self._get_executor(False), callback)
                    except RuntimeError:  # the executor is shut down: so is tether.ui
                        return
                    result = await running
                    if inspect.isawaitable(result):
                        await result
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("interval callback %s raised", name)
