"""Label, Markdown, Button, Textbox, Console and Grid (sidekick-py 0.0.7's API and frames)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from .component import Callback, Component, ErrorCallback, check_callback
from .events import ButtonClickEvent, ConsoleSubmitEvent, GridClickEvent, TextboxSubmitEvent

logger = logging.getLogger("tether.ui")

__all__ = ["Button", "Console", "Grid", "Label", "Markdown", "Textbox"]


class _Text(Component):
    """A component that shows one text, set with `.text = ...` (`setText`)."""

    _kind: ClassVar[str]  # the component type on the wire

    def __init__(
        self,
        text: str = "",
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self._text = str(text)
        super().__init__(self._kind, {"text": self._text}, instance_id, parent, on_error)

    @property
    def text(self) -> str:
        """The text shown; setting it sends `setText`."""
        return self._text

    @text.setter
    def text(self, new_text: str) -> None:
        self._text = str(new_text)
        self._send_update({"action": "setText", "options": {"text": self._text}})


class Label(_Text):
    """Plain text. `label.text = "..."` updates it."""

    _kind = "label"


class Markdown(_Text):
    """Markdown, rendered (and sanitized) by the UI. `md.text = "..."` updates it."""

    _kind = "markdown"


class Button(Component):
    """A button; `on_click(cb)`, `@button.click` or `on_click=` get a `ButtonClickEvent`."""

    def __init__(
        self,
        text: str = "",
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_click: Callback[ButtonClickEvent] | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self._text = str(text)
        self._click_callback: Callback[ButtonClickEvent] | None = None
        super().__init__("button", {"text": self._text}, instance_id, parent, on_error)
        if on_click is not None:
            self.on_click(on_click)

    @property
    def text(self) -> str:
        """The button's label; setting it sends `setText`."""
        return self._text

    @text.setter
    def text(self, new_text: str) -> None:
        self._text = str(new_text)
        self._send_update({"action": "setText", "options": {"text": self._text}})

    def on_click(self, callback: Callback[ButtonClickEvent] | None) -> None:
        """Sets (or clears, with `None`) the click callback."""
        check_callback(callback, "on_click")
        self._click_callback = callback

    def click(self, func: Callback[ButtonClickEvent]) -> Callback[ButtonClickEvent]:
        """Decorator form of `on_click`."""
        self.on_click(func)
        return func

    def _internal_message_handler(self, message: dict[str, Any]) -> None:
        payload = message.get("payload")
        if (
            message.get("type") == "event"
            and isinstance(payload, dict)
            and payload.get("event") == "click"
        ):
            self._invoke_callback(
                self._click_callback, ButtonClickEvent(instance_id=self.instance_id, type="click")
            )
        else:
            super()._internal_message_handler(message)

    def _reset_specific_callbacks(self) -> None:
        self._click_callback = None


class Textbox(Component):
    """A single-line input. A submit (Enter or blur in the UI) stores the value in `.value`
    and calls the submit callback with a `TextboxSubmitEvent`."""

    def __init__(
        self,
        value: str = "",
        placeholder: str = "",
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_submit: Callback[TextboxSubmitEvent] | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self._value = str(value)
        self._placeholder = str(placeholder)
        self._submit_callback: Callback[TextboxSubmitEvent] | None = None
        payload: dict[str, Any] = {}
        if self._value:
            payload["value"] = self._value
        if self._placeholder:
            payload["placeholder"] = self._placeholder
        super().__init__("textbox", payload, instance_id, parent, on_error)
        if on_submit is not None:
            self.on_submit(on_submit)

    @property
    def value(self) -> str:
        """The last value set here or submitted from the UI; setting it sends `setValue`."""
        return self._value

    @value.setter
    def value(self, new_value: str) -> None:
        self._value = str(new_value)
        self._send_update({"action": "setValue", "options": {"value": self._value}})

    @property
    def placeholder(self) -> str:
        """The hint shown while empty; setting it sends `setPlaceholder`."""
        return self._placeholder

    @placeholder.setter
    def placeholder(self, new_placeholder: str) -> None:
        self._placeholder = str(new_placeholder)
        self._send_update(
            {"action": "setPlaceholder", "options": {"placeholder": self._placeholder}}
        )

    def on_submit(self, callback: Callback[TextboxSubmitEvent] | None) -> None:
        """Sets (or clears, with `None`) the submit callback."""
        check_callback(callback, "on_submit")
        self._submit_callback = callback

    def submit(self, func: Callback[TextboxSubmitEvent]) -> Callback[TextboxSubmitEvent]:
        """Decorator form of `on_submit`."""
        self.on_submit(func)
        return func

    def _internal_message_handler(self, message: dict[str, Any]) -> None:
        payload = message.get("payload")
        if (
            message.get("type") == "event"
            and isinstance(payload, dict)
            and payload.get("event") == "submit"
        ):
            self._value = str(payload.get("value", ""))
            self._invoke_callback(
                self._submit_callback,
                TextboxSubmitEvent(instance_id=self.instance_id, type="submit", value=self._value),
            )
            return
        super()._internal_message_handler(message)

    def _reset_specific_callbacks(self) -> None:
        self._submit_callback = None


class Console(Component):
    """A scrolling text area with `print()` and `clear()`, and with `show_input=True` an input
    line whose submissions reach the submit callback as `ConsoleSubmitEvent`s."""

    def __init__(
        self,
        text: str = "",
        show_input: bool = False,
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_submit: Callback[ConsoleSubmitEvent] | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        payload: dict[str, Any] = {"showInput": bool(show_input)}
        if text:
            payload["text"] = str(text)
        self._submit_callback: Callback[ConsoleSubmitEvent] | None = None
        super().__init__("console", payload, instance_id, parent, on_error)
        if on_submit is not None:
            self.on_submit(on_submit)

    def print(self, *args: Any, sep: str = " ", end: str = "\n") -> None:
        """Appends `sep.join(map(str, args)) + end`, like the built-in `print`."""
        self._send_update({"action": "append", "options": {"text": sep.join(map(str, args)) + end}})

    def clear(self) -> None:
        """Removes all the text."""
        self._send_update({"action": "clear"})

    def on_submit(self, callback: Callback[ConsoleSubmitEvent] | None) -> None:
        """Sets (or clears, with `None`) the submit callback."""
        check_callback(callback, "on_submit")
        self._submit_callback = callback

    def submit(self, func: Callback[ConsoleSubmitEvent]) -> Callback[ConsoleSubmitEvent]:
        """Decorator form of `on_submit`."""
        self.on_submit(func)
        return func

    def _internal_message_handler(self, message: dict[str, Any]) -> None:
        payload = message.get("payload")
        if (
            message.get("type") == "event"
            and isinstance(payload, dict)
            and payload.get("event") == "submit"
        ):
            value = payload.get("value")
            if isinstance(value, str):
                self._invoke_callback(
                    self._submit_callback,
                    ConsoleSubmitEvent(instance_id=self.instance_id, type="submit", value=value),
                )
            else:
                logger.warning("%r: submit event with a non-string value: %r", self, payload)
            return
        super()._internal_message_handler(message)

    def _reset_specific_callbacks(self) -> None:
        self._submit_callback = None


class Grid(Component):
    """A grid of `num_columns` × `num_rows` cells with colours and text; clicks reach the click
    callback as `GridClickEvent(x=column, y=row)`."""

    def __init__(
        self,
        num_columns: int,
        num_rows: int,
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_click: Callback[GridClickEvent] | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        if not isinstance(num_columns, int) or num_columns <= 0:
            raise ValueError("Grid num_columns must be a positive integer.")
        if not isinstance(num_rows, int) or num_rows <= 0:
            raise ValueError("Grid num_rows must be a positive integer.")
        self._num_columns = num_columns
        self._num_rows = num_rows
        self._click_callback: Callback[GridClickEvent] | None = None
        super().__init__(
            "grid", {"numColumns": num_columns, "numRows": num_rows}, instance_id, parent, on_error
        )
        if on_click is not None:
            self.on_click(on_click)

    @property
    def num_columns(self) -> int:
        """Number of columns (read-only)."""
        return self._num_columns

    @property
    def num_rows(self) -> int:
        """Number of rows (read-only)."""
        return self._num_rows

    def _check(self, x: int, y: int) -> None:
        if not 0 <= x < self.num_columns:
            raise IndexError(
                f"Grid '{self.instance_id}': Column index x={x} is out of bounds "
                f"(must be 0 <= x < {self.num_columns})."
            )
        if not 0 <= y < self.num_rows:
            raise IndexError(
                f"Grid '{self.instance_id}': Row index y={y} is out of bounds "
                f"(must be 0 <= y < {self.num_rows})."
            )

    def set_color(self, x: int, y: int, color: str | None) -> None:
        """Sets cell (x, y)'s background to a CSS colour; `None` restores the default."""
        self._check(x, y)
        self._send_update({"action": "setColor", "options": {"x": x, "y": y, "color": color}})

    def set_text(self, x: int, y: int, text: str | None) -> None:
        """Sets cell (x, y)'s text (`str()` of it); `None` or `""` clears it."""
        self._check(x, y)
        text_to_send = str(text) if text is not None else None
        self._send_update({"action": "setText", "options": {"x": x, "y": y, "text": text_to_send}})

    def clear_cell(self, x: int, y: int) -> None:
        """Clears cell (x, y)'s colour and text."""
        self._check(x, y)
        self._send_update({"action": "clearCell", "options": {"x": x, "y": y}})

    def clear(self) -> None:
        """Clears every cell."""
        self._send_update({"action": "clear"})

    def on_click(self, callback: Callback[GridClickEvent] | None) -> None:
        """Sets (or clears, with `None`) the click callback."""
        check_callback(callback, "on_click")
        self._click_callback = callback

    def click(self, func: Callback[GridClickEvent]) -> Callback[GridClickEvent]:
        """Decorator form of `on_click`."""
        self.on_click(func)
        return func

    def _internal_message_handler(self, message: dict[str, Any]) -> None:
        payload = message.get("payload")
        if (
            message.get("type") == "event"
            and isinstance(payload, dict)
            and payload.get("event") == "click"
        ):
            x, y = payload.get("x"), payload.get("y")
            if isinstance(x, int) and isinstance(y, int):
                self._invoke_callback(
                    self._click_callback,
                    GridClickEvent(instance_id=self.instance_id, type="click", x=x, y=y),
                )
            else:
                logger.warning("%r: click event with invalid coordinates: %r", self, payload)
            return
        super()._internal_message_handler(message)

    def _reset_specific_callbacks(self) -> None:
        self._click_callback = None
