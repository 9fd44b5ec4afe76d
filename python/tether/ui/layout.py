"""Row and Column: containers laying their children out horizontally or vertically."""

from __future__ import annotations

from typing import ClassVar

from .component import Component, ErrorCallback

__all__ = ["Column", "Row"]


class _Container(Component):
    _kind: ClassVar[str]  # the component type on the wire

    def __init__(
        self,
        *children: Component,
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        for index, child in enumerate(children):
            if not isinstance(child, Component):
                raise TypeError(
                    f"Invalid child type in {type(self).__name__} constructor at index {index}: "
                    f"expected a Sidekick component (e.g., Button, Label), "
                    f"but got {type(child).__name__}."
                )
        super().__init__(self._kind, {}, instance_id, parent, on_error)
        for child in children:
            self.add_child(child)

    def add_child(self, child_component: Component) -> None:
        """Moves an existing component into this container (appended after its children): an
        update on the child, `{"action": "changeParent", "options": {"parent": <this id>}}`."""
        if not isinstance(child_component, Component):
            raise TypeError(
                f"Invalid child type for {type(self).__name__}.add_child(): expected a Sidekick "
                f"component instance (e.g., Button, Label), but got "
                f"{type(child_component).__name__}."
            )
        child_component._send_update(
            {"action": "changeParent", "options": {"parent": self.instance_id}}
        )


class Row(_Container):
    """Lays its children out left to right. `Row(a, b)` moves existing components into it."""

    _kind = "row"


class Column(_Container):
    """Lays its children out top to bottom. `Column(a, b)` moves existing components into it."""

    _kind = "column"
