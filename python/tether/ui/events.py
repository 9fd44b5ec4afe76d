"""Event objects passed to component callbacks (the dataclasses of sidekick-py 0.0.7)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BaseSidekickEvent",
    "ButtonClickEvent",
    "CanvasClickEvent",
    "ConsoleSubmitEvent",
    "ErrorEvent",
    "GridClickEvent",
    "TextboxSubmitEvent",
]


@dataclass
class BaseSidekickEvent:
    """Base of every event: the component's `instance_id` and the event `type`
    (`"click"`, `"submit"` or `"error"`)."""

    instance_id: str
    type: str


@dataclass
class ButtonClickEvent(BaseSidekickEvent):
    """A `Button` was clicked."""


@dataclass
class GridClickEvent(BaseSidekickEvent):
    """A `Grid` cell was clicked: `x` is the column, `y` the row, both 0-based."""

    x: int
    y: int


@dataclass
class CanvasClickEvent(BaseSidekickEvent):
    """A `Canvas` was clicked at pixel (`x`, `y`) from its top-left corner."""

    x: int
    y: int


@dataclass
class TextboxSubmitEvent(BaseSidekickEvent):
    """A `Textbox` value was submitted (Enter or blur)."""

    value: str


@dataclass
class ConsoleSubmitEvent(BaseSidekickEvent):
    """A line was submitted from a `Console`'s input."""

    value: str


@dataclass
class ErrorEvent(BaseSidekickEvent):
    """The UI reported an error about a component (`message`)."""

    message: str
