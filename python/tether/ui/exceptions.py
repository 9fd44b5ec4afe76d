"""The exceptions of `tether.ui`: sidekick-py 0.0.7's hierarchy, under `tether.TetherError`.

```
TetherError
└── SidekickError
    ├── SidekickQueueFullError          (tether.ui only: the outbox bound was hit)
    └── SidekickConnectionError
        ├── SidekickConnectionRefusedError
        ├── SidekickTimeoutError
        └── SidekickDisconnectedError
```
"""

from __future__ import annotations

from .._native import TetherError

__all__ = [
    "SidekickConnectionError",
    "SidekickConnectionRefusedError",
    "SidekickDisconnectedError",
    "SidekickError",
    "SidekickQueueFullError",
    "SidekickTimeoutError",
]


class SidekickError(TetherError):
    """Base class of every error `tether.ui` raises on purpose."""


class SidekickConnectionError(SidekickError):
    """Something is wrong with the connection to the relay or the UI."""

    def __init__(self, message: str, original_exception: BaseException | None = None) -> None:
        super().__init__(message)
        self.original_exception = original_exception

    def __str__(self) -> str:
        text = super().__str__()
        if self.original_exception is not None:
            cause = self.original_exception
            text += f". Underlying issue: {type(cause).__name__}: {cause}"
        return text


class SidekickConnectionRefusedError(SidekickConnectionError):
    """The relay could not be reached (for the whole reconnect window, see `configure`)."""

    def __init__(
        self,
        message: str,
        url: str | None = None,
        original_exception: BaseException | None = None,
    ) -> None:
        super().__init__(message, original_exception=original_exception)
        self.url = url


class SidekickTimeoutError(SidekickConnectionError):
    """A wait ran out, e.g. `wait_for_connection()` while no UI came online."""

    def __init__(
        self,
        message: str,
        timeout_seconds: float | None = None,
        original_exception: BaseException | None = None,
    ) -> None:
        super().__init__(message, original_exception=original_exception)
        self.timeout_seconds = timeout_seconds


class SidekickDisconnectedError(SidekickConnectionError):
    """The connection is gone for good: `shutdown()` ran, or reconnecting failed for the whole
    reconnect window, or the relay refused our frames (close codes 1003, 1008, 1009)."""

    def __init__(
        self,
        message: str = "Connection to the Sidekick service was lost.",
        reason: str | None = None,
        original_exception: BaseException | None = None,
    ) -> None:
        full = message if not reason else f"{message} Reason: {reason}"
        super().__init__(full, original_exception=original_exception)
        self.reason = reason


class SidekickQueueFullError(SidekickError):
    """A frame did not fit in the outbox (frames not yet written to the relay).

    The outbox holds everything sent before a UI is online and while reconnecting; it is bounded
    by `max_queue_bytes` (16 MiB by default, see `tether.ui.configure`). Nothing is dropped: the
    call that would exceed the bound raises this instead, and the frame is not queued.
    """

    def __init__(self, message: str, limit: int, queued_bytes: int, frame_bytes: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.queued_bytes = queued_bytes
        self.frame_bytes = frame_bytes
