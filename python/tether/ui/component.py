"""`Component`, the base of every UI component, and its id generation."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from . import _client
from .events import BaseSidekickEvent, ErrorEvent

logger = logging.getLogger("tether.ui")

E = TypeVar("E", bound=BaseSidekickEvent)
#: A callback: a plain function (run in a worker thread) or an `async def` (run as a task).
Callback = Callable[[E], Awaitable[None] | None]
ErrorCallback = Callable[[ErrorEvent], Awaitable[None] | None]

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def generate_unique_id(prefix: str) -> str:
    """`<prefix>-<n>` from one process-wide counter, as sidekick-py does (`label-1`, `grid-2`)."""
    with _counter_lock:
        return f"{prefix}-{next(_counter)}"


def check_callback(callback: object, what: str) -> None:
    """Refuses a callback that is neither callable nor `None`, as sidekick-py does."""
    if callback is not None and not callable(callback):
        raise TypeError(f"The provided {what} callback must be a callable function or None.")


class Component:
    """Base class of the components. Creating one sends its `spawn` at once (queued until a UI is
    online); `remove()` removes it from the UI.

    Attributes:
        component_type: the protocol type (`"label"`, `"grid"`, ...).
        instance_id: the id used in frames; given (whitespace stripped) or generated.
    """

    def __init__(
        self,
        component_type: str,
        payload: dict[str, Any] | None = None,
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.component_type = component_type
        self._error_callback: ErrorCallback | None = None
        if instance_id is not None and isinstance(instance_id, str):
            processed = instance_id.strip()
            if not processed:
                raise ValueError(
                    f"User-provided instance_id for component type '{component_type}' "
                    "cannot be empty or consist only of whitespace."
                )
            self.instance_id = processed
        else:
            self.instance_id = generate_unique_id(component_type)

        spawn_payload = dict(payload) if payload else {}
        if parent is not None:
            if isinstance(parent, Component):
                parent_id = parent.instance_id
            elif isinstance(parent, str):
                parent_id = parent.strip()
            else:
                raise TypeError(
                    f"The 'parent' argument for component '{component_type}' "
                    f"(ID: '{self.instance_id}') must be another Sidekick Component instance, "
                    f"its string instance_id, or None. Got type: {type(parent).__name__}."
                )
            if not parent_id:
                raise ValueError(
                    f"Parent ID string for component '{component_type}' "
                    f"(ID: '{self.instance_id}') cannot be empty."
                )
            spawn_payload["parent"] = parent_id

        self._client = _client.get_client()
        self._client.register_handler(self.instance_id, self._internal_message_handler)
        try:
            self._send_command("spawn", spawn_payload)
        except BaseException:
            self._client.unregister_handler(self.instance_id)
            raise
        if on_error is not None:
            self.on_error(on_error)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance_id!r}>"

    # -- incoming --------------------------------------------------------------------------------

    def _invoke_callback(self, callback: Callable[[Any], Any] | None, event: Any) -> None:
        """Runs `callback(event)`: `async def` as a task, a plain function in a worker thread."""
        if callback is not None:
            self._client.run_callback(callback, event)

    def _internal_message_handler(self, message: dict[str, Any]) -> None:
        """Handles an `event`/`error` frame whose `src` is this component (on the I/O thread)."""
        msg_type = message.get("type")
        payload = message.get("payload")
        if msg_type == "error":
            text = "An unknown error occurred in the Sidekick UI for this component."
            if isinstance(payload, dict) and isinstance(payload.get("message"), str):
                text = payload["message"]
            logger.error(
                "Component '%s' (ID: '%s') received an error from the UI: %r",
                self.component_type,
                self.instance_id,
                text,
            )
            self._invoke_callback(
                self._error_callback,
                ErrorEvent(instance_id=self.instance_id, type="error", message=text),
            )
        elif msg_type == "event":
            logger.debug("%r ignored event %r", self, payload)

    def on_error(self, callback: ErrorCallback | None) -> None:
        """Sets (or with `None` clears) the callback for errors the UI reports about this
        component; it receives an `ErrorEvent`."""
        if callback is not None and not callable(callback):
            raise TypeError(
                "The on_error callback must be a callable function that accepts "
                "one ErrorEvent argument, or None to clear the callback."
            )
        self._error_callback = callback

    # -- outgoing --------------------------------------------------------------------------------

    def _send_command(self, msg_type: str, payload: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {
            "id": 0,
            "component": self.component_type,
            "type": msg_type,
            "target": self.instance_id,
        }
        if payload is not None:
            message["payload"] = payload
        self._client.send(message)

    def _send_update(self, payload: dict[str, Any]) -> None:
        if not isinstance(payload, dict) or "action" not in payload:
            raise ValueError(f"update payload needs an 'action': {payload!r}")
        self._send_command("update", payload)

    def remove(self) -> None:
        """Removes the component from the UI (a container with all it contains) and stops its
        callbacks."""
        self._client.unregister_handler(self.instance_id)
        self._error_callback = None
        self._reset_specific_callbacks()
        self._send_command("remove", payload=None)

    def _reset_specific_callbacks(self) -> None:
        """Hook for subclasses: forget their own callbacks on `remove()`."""
