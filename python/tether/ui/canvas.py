"""Canvas: a 2D drawing surface with offscreen buffers (`with canvas.buffer() as b:`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Literal

from .component import Callback, Component, ErrorCallback, check_callback
from .events import CanvasClickEvent

__all__ = ["Canvas"]

PointList = Sequence[Sequence[float]]


def _points(points: Any, minimum: int, method: str) -> list[dict[str, int]]:
    if not isinstance(points, list) or len(points) < minimum:
        word = "two" if minimum == 2 else "three"
        raise ValueError(f"{method} requires a list of at least {word} (x, y) point tuples.")
    try:
        return [{"x": int(p[0]), "y": int(p[1])} for p in points]
    except (TypeError, IndexError, ValueError) as exc:
        raise TypeError(
            f"Invalid data format in 'points' list for {method}. Expected a list of (x, y) "
            f"tuples or lists containing numbers. Original error: {exc}"
        ) from exc


def _styled(
    options: dict[str, Any],
    method: str,
    fill_color: str | None,
    line_color: str | None,
    line_width: int | None,
    *,
    positive: bool,
) -> None:
    """Adds the given style options (in sidekick's key order) to a draw call's options.

    `line_width` must be a positive int for lines and polylines (`positive`), and may be 0 for
    the filled shapes; anything else is a `ValueError` naming `method`.
    """
    if fill_color is not None:
        options["fillColor"] = fill_color
    if line_color is not None:
        options["lineColor"] = line_color
    if line_width is not None:
        if isinstance(line_width, int) and (line_width > 0 if positive else line_width >= 0):
            options["lineWidth"] = line_width
        else:
            kind = "positive" if positive else "non-negative"
            raise ValueError(f"line_width for {method} must be a {kind} integer if provided.")


class _CanvasBufferProxy:
    """What `with canvas.buffer() as buf:` yields: the draw methods, on an offscreen buffer."""

    def __init__(self, canvas: Canvas, buffer_id: int) -> None:
        if not isinstance(buffer_id, int) or buffer_id <= 0:
            raise ValueError("_CanvasBufferProxy requires a positive integer offscreen buffer ID.")
        self._canvas = canvas
        self._buffer_id = buffer_id

    def clear(self) -> None:
        self._canvas.clear(buffer_id=self._buffer_id)

    def draw_line(
        self,
        x1: int,
        y1: int,
        x2: int,
        y2: int,
        line_color: str | None = None,
        line_width: int | None = None,
    ) -> None:
        self._canvas.draw_line(x1, y1, x2, y2, line_color, line_width, buffer_id=self._buffer_id)

    def draw_rect(
        self,
        x: int,
        y: int,
        width: int,
        height: int,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
    ) -> None:
        self._canvas.draw_rect(
            x, y, width, height, fill_color, line_color, line_width, buffer_id=self._buffer_id
        )

    def draw_circle(
        self,
        cx: int,
        cy: int,
        radius: int,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
    ) -> None:
        self._canvas.draw_circle(
            cx, cy, radius, fill_color, line_color, line_width, buffer_id=self._buffer_id
        )

    def draw_polyline(
        self, points: PointList, line_color: str | None = None, line_width: int | None = None
    ) -> None:
        self._canvas.draw_polyline(points, line_color, line_width, buffer_id=self._buffer_id)

    def draw_polygon(
        self,
        points: PointList,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
    ) -> None:
        self._canvas.draw_polygon(
            points, fill_color, line_color, line_width, buffer_id=self._buffer_id
        )

    def draw_ellipse(
        self,
        cx: int,
        cy: int,
        radius_x: int,
        radius_y: int,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
    ) -> None:
        self._canvas.draw_ellipse(
            cx,
            cy,
            radius_x,
            radius_y,
            fill_color,
            line_color,
            line_width,
            buffer_id=self._buffer_id,
        )

    def draw_text(
        self,
        x: int,
        y: int,
        text: str,
        text_color: str | None = None,
        text_size: int | None = None,
    ) -> None:
        self._canvas.draw_text(x, y, text, text_color, text_size, buffer_id=self._buffer_id)


class _CanvasBufferContextManager:
    """`canvas.buffer()`: takes a pooled buffer id (sending `createBuffer` the first time an id
    is used), clears it on entry, and on a normal exit draws it onto the visible canvas."""

    def __init__(self, canvas: Canvas) -> None:
        self._canvas = canvas
        self._buffer_id: int | None = None

    def __enter__(self) -> _CanvasBufferProxy:
        self._buffer_id = self._canvas._acquire_buffer_id()
        proxy = _CanvasBufferProxy(self._canvas, self._buffer_id)
        proxy.clear()
        return proxy

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> Literal[False]:
        buffer_id, self._buffer_id = self._buffer_id, None
        if buffer_id is None:
            return False
        try:
            if exc_type is None:
                self._canvas._send_draw_buffer(buffer_id, self._canvas.ONSCREEN_BUFFER_ID)
        finally:
            self._canvas._release_buffer_id(buffer_id)
        return False


class Canvas(Component):
    """A `width` × `height` pixel drawing surface, origin at the top-left. Every draw method
    takes `buffer_id` (default: the visible canvas, `ONSCREEN_BUFFER_ID = 0`); clicks reach
    the click callback as `CanvasClickEvent(x, y)`."""

    ONSCREEN_BUFFER_ID = 0

    def __init__(
        self,
        width: int,
        height: int,
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_click: Callback[CanvasClickEvent] | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        if not isinstance(width, int) or width <= 0:
            raise ValueError("Canvas width must be a positive integer.")
        if not isinstance(height, int) or height <= 0:
            raise ValueError("Canvas height must be a positive integer.")
        self._width = width
        self._height = height
        self._click_callback: Callback[CanvasClickEvent] | None = None
        self._buffer_pool: dict[int, bool] = {}  # id -> in use
        self._next_buffer_id = 1
        self._buffer_lock = threading.Lock()
        super().__init__(
            "canvas", {"width": width, "height": height}, instance_id, parent, on_error
        )
        if on_click is not None:
            self.on_click(on_click)

    @property
    def width(self) -> int:
        """Width in pixels (read-only)."""
        return self._width

    @property
    def height(self) -> int:
        """Height in pixels (read-only)."""
        return self._height

    # -- events ----------------------------------------------------------------------------------

    def on_click(self, callback: Callback[CanvasClickEvent] | None) -> None:
        """Sets (or clears, with `None`) the click callback."""
        check_callback(callback, "on_click")
        self._click_callback = callback

    def click(self, func: Callback[CanvasClickEvent]) -> Callback[CanvasClickEvent]:
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
                    CanvasClickEvent(instance_id=self.instance_id, type="click", x=x, y=y),
                )
            return
        super()._internal_message_handler(message)

    def _reset_specific_callbacks(self) -> None:
        self._click_callback = None

    # -- buffers ---------------------------------------------------------------------------------

    def buffer(self) -> _CanvasBufferContextManager:
        """Double buffering: `with canvas.buffer() as b:` draws on a hidden buffer, shown at
        once when the block ends normally (nothing is shown if it raises)."""
        return _CanvasBufferContextManager(self)

    def _acquire_buffer_id(self) -> int:
        with self._buffer_lock:
            for buffer_id, in_use in self._buffer_pool.items():
                if not in_use:
                    self._buffer_pool[buffer_id] = True
                    return buffer_id
            new_id = self._next_buffer_id
            self._send_canvas_update("createBuffer", {"bufferId": new_id})
            self._next_buffer_id += 1
            self._buffer_pool[new_id] = True
            return new_id

    def _release_buffer_id(self, buffer_id: int) -> None:
        with self._buffer_lock:
            if buffer_id in self._buffer_pool:
                self._buffer_pool[buffer_id] = False

    def _send_draw_buffer(self, source_buffer_id: int, target_buffer_id: int) -> None:
        self._send_canvas_update(
            "drawBuffer", {"sourceBufferId": source_buffer_id, "targetBufferId": target_buffer_id}
        )

    def _send_canvas_update(self, action: str, options: dict[str, Any]) -> None:
        self._send_update({"action": action, "options": options})

    def _target(self, buffer_id: int | None) -> int:
        return buffer_id if buffer_id is not None else self.ONSCREEN_BUFFER_ID

    # -- drawing ---------------------------------------------------------------------------------

    def clear(self, buffer_id: int | None = None) -> None:
        """Clears the visible canvas (or buffer `buffer_id`)."""
        self._send_canvas_update("clear", {"bufferId": self._target(buffer_id)})

    def draw_line(
        self,
        x1: int,
        y1: int,
        x2: int,
        y2: int,
        line_color: str | None = None,
        line_width: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """A line from (x1, y1) to (x2, y2); `line_width` must be a positive int."""
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "x1": x1,
            "y1": y1,
            "x2": x2,
            "y2": y2,
        }
        _styled(options, "draw_line", None, line_color, line_width, positive=True)
        self._send_canvas_update("drawLine", options)

    def draw_rect(
        self,
        x: int,
        y: int,
        width: int,
        height: int,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """A rectangle with its top-left corner at (x, y); filled if `fill_color` is given."""
        if width < 0:
            raise ValueError("Rectangle width cannot be negative.")
        if height < 0:
            raise ValueError("Rectangle height cannot be negative.")
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "x": x,
            "y": y,
            "width": width,
            "height": height,
        }
        _styled(options, "draw_rect", fill_color, line_color, line_width, positive=False)
        self._send_canvas_update("drawRect", options)

    def draw_circle(
        self,
        cx: int,
        cy: int,
        radius: int,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """A circle centred on (cx, cy); `radius` is truncated to an int."""
        if not isinstance(radius, (int, float)) or radius <= 0:
            raise ValueError("Circle radius must be a positive number.")
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "cx": cx,
            "cy": cy,
            "radius": int(radius),
        }
        _styled(options, "draw_circle", fill_color, line_color, line_width, positive=False)
        self._send_canvas_update("drawCircle", options)

    def draw_polyline(
        self,
        points: PointList,
        line_color: str | None = None,
        line_width: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """Connected segments through a list of at least two (x, y) points."""
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "points": _points(points, 2, "draw_polyline"),
        }
        _styled(options, "draw_polyline", None, line_color, line_width, positive=True)
        self._send_canvas_update("drawPolyline", options)

    def draw_polygon(
        self,
        points: PointList,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """A closed polygon through a list of at least three (x, y) points."""
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "points": _points(points, 3, "draw_polygon"),
        }
        _styled(options, "draw_polygon", fill_color, line_color, line_width, positive=False)
        self._send_canvas_update("drawPolygon", options)

    def draw_ellipse(
        self,
        cx: int,
        cy: int,
        radius_x: int,
        radius_y: int,
        fill_color: str | None = None,
        line_color: str | None = None,
        line_width: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """An ellipse centred on (cx, cy); the radii are truncated to ints."""
        if not isinstance(radius_x, (int, float)) or radius_x <= 0:
            raise ValueError("Ellipse radius_x must be a positive number.")
        if not isinstance(radius_y, (int, float)) or radius_y <= 0:
            raise ValueError("Ellipse radius_y must be a positive number.")
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "cx": cx,
            "cy": cy,
            "radiusX": int(radius_x),
            "radiusY": int(radius_y),
        }
        _styled(options, "draw_ellipse", fill_color, line_color, line_width, positive=False)
        self._send_canvas_update("drawEllipse", options)

    def draw_text(
        self,
        x: int,
        y: int,
        text: str,
        text_color: str | None = None,
        text_size: int | None = None,
        buffer_id: int | None = None,
    ) -> None:
        """`str(text)` at (x, y); `text_size` (pixels) must be a positive int."""
        options: dict[str, Any] = {
            "bufferId": self._target(buffer_id),
            "x": x,
            "y": y,
            "text": str(text),
        }
        if text_color is not None:
            options["textColor"] = text_color
        if text_size is not None:
            if isinstance(text_size, int) and text_size > 0:
                options["textSize"] = text_size
            else:
                raise ValueError("text_size for draw_text must be a positive integer if provided.")
        self._send_canvas_update("drawText", options)

    def remove(self) -> None:
        """Destroys the offscreen buffers (`destroyBuffer` each), then removes the canvas."""
        with self._buffer_lock:
            for buffer_id in [b for b in self._buffer_pool if b != self.ONSCREEN_BUFFER_ID]:
                self._send_canvas_update("destroyBuffer", {"bufferId": buffer_id})
            self._buffer_pool.clear()
            self._next_buffer_id = 1
        super().remove()
