"""`ObservableValue`: a wrapper that tells its subscribers (a `Viz`) what changed.

The same wrapper as sidekick-py 0.0.7: mutations made through it (`append`, `insert`, `pop`,
`remove`, `obs[k] = v`, `del obs[k]`, `update`, `add`, `discard`, `clear`, `set`) notify every
subscriber with `{type, path, value, key, old_value, length}`; everything else is delegated to the
wrapped value without notifying (so mutating `obs.get()` directly sends nothing).

Unlike sidekick-py, an `ObservableValue` nested anywhere inside a value shown in a `Viz` (in a
list, a dict value, an object attribute, or another `ObservableValue`) is tracked too: its changes
reach the `Viz` with the full path from the variable's root.
"""

from __future__ import annotations

import collections.abc
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .exceptions import SidekickError

logger = logging.getLogger("tether.ui")

SubscriptionCallback = Callable[[dict[str, Any]], None]
UnsubscribeFunction = Callable[[], None]

__all__ = ["ObservableValue", "SubscriptionCallback", "UnsubscribeFunction"]


class ObservableValue:
    """Wraps a value (typically a list, dict or set) and notifies subscribers of changes made
    through the wrapper.

    >>> items = ObservableValue([1, 2])
    >>> viz.show("items", items)
    >>> items.append(3)            # the Viz shows [1, 2, 3], the new item highlighted
    """

    _obs_internal_attrs = ("_value", "_subscribers", "_obs_value_id")
    __hash__ = None  # type: ignore[assignment]  # compares by the wrapped value

    def __init__(self, value: Any) -> None:
        self._value: Any = value
        self._subscribers: set[SubscriptionCallback] = set()
        self._obs_value_id: str = f"obs_{id(self)}"

    # -- subscriptions ---------------------------------------------------------------------------

    def subscribe(self, callback: SubscriptionCallback) -> UnsubscribeFunction:
        """Calls `callback(change)` after each change; returns a function that unsubscribes."""
        if not callable(callback):
            raise TypeError("Callback provided to ObservableValue.subscribe must be callable")
        self._subscribers.add(callback)

        def unsubscribe() -> None:
            self.unsubscribe(callback)

        return unsubscribe

    def unsubscribe(self, callback: SubscriptionCallback) -> None:
        """Removes `callback` (no error if it is not subscribed)."""
        self._subscribers.discard(callback)

    def _notify(self, change_details: dict[str, Any]) -> None:
        if not self._subscribers:
            return
        change_details.setdefault("path", [])
        change_details.setdefault("value", None)
        change_details.setdefault("key", None)
        change_details.setdefault("old_value", None)
        change_details.setdefault("length", None)
        undelivered: SidekickError | None = None
        for callback in list(self._subscribers):
            try:
                callback(change_details)
            except SidekickError as exc:  # e.g. the outbox is full: the caller must know
                undelivered = undelivered or exc
            except Exception:
                logger.exception("ObservableValue subscriber %r raised", callback)
        if undelivered is not None:
            raise undelivered

    # -- the value -------------------------------------------------------------------------------

    def get(self) -> Any:
        """The wrapped value itself (mutating it directly notifies nobody)."""
        return self._value

    def set(self, new_value: Any) -> None:
        """Replaces the wrapped value; notifies only if `new_value` is not the same object."""
        if self._value is not new_value:
            old_value = self._value
            self._value = new_value
            self._notify({"type": "set", "path": [], "value": self._value, "old_value": old_value})

    # -- list operations -------------------------------------------------------------------------

    def _require(self, kind: type, what: str) -> None:
        if not isinstance(self._value, kind):
            raise TypeError(f"ObservableValue: {what}")

    def append(self, item: Any) -> None:
        """`list.append`, then an `append` notification at path `[old length]`."""
        self._require(
            collections.abc.MutableSequence,
            "append() requires the wrapped value to be a mutable sequence (e.g., list).",
        )
        current_len = len(self._value)
        self._value.append(item)
        self._notify(
            {"type": "append", "path": [current_len], "value": item, "length": len(self._value)}
        )

    def insert(self, index: int, item: Any) -> None:
        """`list.insert`, then an `insert` notification at path `[index]`."""
        self._require(
            collections.abc.MutableSequence,
            "insert() requires the wrapped value to be a mutable sequence.",
        )
        self._value.insert(index, item)
        self._notify({"type": "insert", "path": [index], "value": item, "length": len(self._value)})

    def pop(self, index: int = -1) -> Any:
        """`list.pop`, then a `pop` notification at the (non-negative) index."""
        self._require(
            collections.abc.MutableSequence,
            "pop() requires the wrapped value to be a mutable sequence.",
        )
        list_len = len(self._value)
        if list_len == 0:
            raise IndexError("pop from empty list")
        actual_index = index if index >= 0 else list_len + index
        if not 0 <= actual_index < list_len:
            raise IndexError("pop index out of range")
        popped_value = self._value.pop(index)
        self._notify(
            {
                "type": "pop",
                "path": [actual_index],
                "value": None,
                "old_value": popped_value,
                "length": len(self._value),
            }
        )
        return popped_value

    def remove(self, value: Any) -> None:
        """`list.remove` (nothing happens if `value` is absent), then a `remove` notification."""
        self._require(
            collections.abc.MutableSequence,
            "remove() requires the wrapped value to be a mutable sequence.",
        )
        try:
            index_to_remove = self._value.index(value)
            self._value.remove(value)
        except ValueError:
            return
        self._notify(
            {
                "type": "remove",
                "path": [index_to_remove],
                "value": None,
                "old_value": value,
                "length": len(self._value),
            }
        )

    def clear(self) -> None:
        """Calls the wrapped value's `clear()`; the `Viz` re-sends the whole (now empty) value."""
        clear_method = getattr(self._value, "clear", None)
        if not callable(clear_method):
            raise AttributeError(  # noqa: TRY004 - sidekick-py's exception type
                f"ObservableValue: Wrapped object of type {type(self._value).__name__} "
                "has no callable 'clear' method."
            )
        clear_method()
        self._notify({"type": "clear", "path": [], "value": self._value, "length": 0})

    # -- list / dict item access -----------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(
            self._value, (collections.abc.MutableSequence, collections.abc.MutableMapping)
        ):
            raise TypeError(
                f"ObservableValue: Wrapped object of type {type(self._value).__name__} "
                "does not support item assignment using []=."
            )
        is_mapping = isinstance(self._value, collections.abc.MutableMapping)
        old_value = None
        with contextlib.suppress(Exception):
            if isinstance(self._value, collections.abc.MutableMapping):
                old_value = self._value.get(key)
            elif isinstance(key, int) and 0 <= key < len(self._value):
                old_value = self._value[key]
        try:
            self._value[key] = value
        except IndexError:
            if not is_mapping:
                raise
            logger.error("ObservableValue: error during __setitem__ for key %r", key)
            return
        except Exception as exc:
            logger.error("ObservableValue: error during __setitem__ for key %r: %s", key, exc)
            return
        self._notify(
            {
                "type": "setitem",
                "path": [key],
                "value": value,
                "key": key if is_mapping else None,
                "old_value": old_value,
            }
        )

    def __delitem__(self, key: Any) -> None:
        if not isinstance(
            self._value, (collections.abc.MutableSequence, collections.abc.MutableMapping)
        ):
            raise TypeError(
                f"ObservableValue: Wrapped object of type {type(self._value).__name__} "
                "does not support item deletion using del []."
            )
        is_mapping = isinstance(self._value, collections.abc.MutableMapping)
        old_value = self._value[key]
        del self._value[key]
        new_len = len(self._value) if hasattr(self._value, "__len__") else None
        self._notify(
            {
                "type": "delitem",
                "path": [key],
                "value": None,
                "key": key if is_mapping else None,
                "old_value": old_value,
                "length": new_len,
            }
        )

    def update(
        self,
        other: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = {},  # never mutated
        **kwargs: Any,
    ) -> None:
        """`dict.update`, one `setitem` notification per key."""
        self._require(
            collections.abc.MutableMapping,
            "update() requires the wrapped value to be a mutable mapping (e.g., dict).",
        )
        items: list[tuple[Any, Any]] = []
        keys = getattr(other, "keys", None)
        if callable(keys):
            items.extend((key, other[key]) for key in keys())  # type: ignore[index]
        elif hasattr(other, "__iter__"):
            try:
                items.extend((key, value) for key, value in other)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"'other' argument must be a mapping or an iterable of pairs: {exc}"
                ) from exc
        elif other:
            raise TypeError(
                "'other' argument must be a mapping or an iterable of pairs, "
                f"got {type(other).__name__}"
            )
        items.extend(kwargs.items())
        for key, value in items:
            try:
                self[key] = value
            except Exception as exc:
                logger.error("ObservableValue.update(): error setting key %r: %s", key, exc)

    # -- set operations --------------------------------------------------------------------------

    def add(self, element: Any) -> None:
        """`set.add`; an `add_set` notification if `element` was not there yet."""
        self._require(
            collections.abc.MutableSet,
            "add() requires the wrapped value to be a mutable set.",
        )
        try:
            needs_add = element not in self._value
        except TypeError:
            needs_add = True
        if needs_add:
            self._value.add(element)
            self._notify(
                {"type": "add_set", "path": [], "value": element, "length": len(self._value)}
            )

    def discard(self, element: Any) -> None:
        """`set.discard`; a `discard_set` notification if `element` was there."""
        self._require(
            collections.abc.MutableSet,
            "discard() requires the wrapped value to be a mutable set.",
        )
        try:
            present = element in self._value
        except TypeError:
            present = False
        if present:
            self._value.discard(element)
            self._notify(
                {
                    "type": "discard_set",
                    "path": [],
                    "value": None,
                    "old_value": element,
                    "length": len(self._value),
                }
            )

    # -- delegation ------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name in ObservableValue._obs_internal_attrs:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}' "
                "(use .get() maybe? Internal attributes are protected)"
            )
        try:
            return getattr(self._value, name)
        except AttributeError:
            raise AttributeError(
                f"'{type(self._value).__name__}' object (wrapped by ObservableValue) "
                f"has no attribute '{name}'"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ObservableValue._obs_internal_attrs:
            object.__setattr__(self, name, value)
        else:
            setattr(self._value, name, value)

    def __repr__(self) -> str:
        return f"ObservableValue({self._value!r})"

    def __str__(self) -> str:
        return str(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ObservableValue):
            return bool(self._value == other._value)
        return bool(self._value == other)

    def __len__(self) -> int:
        if callable(getattr(self._value, "__len__", None)):
            return len(self._value)
        raise TypeError(
            f"Object of type '{type(self._value).__name__}' (wrapped by ObservableValue) "
            "has no len()"
        )

    def __getitem__(self, key: Any) -> Any:
        if not hasattr(self._value, "__getitem__"):
            raise TypeError(
                f"'{type(self._value).__name__}' object (wrapped by ObservableValue) is not "
                "subscriptable (does not support [])"
            )
        return self._value[key]

    def __iter__(self) -> Iterator[Any]:
        if callable(getattr(self._value, "__iter__", None)):
            return iter(self._value)
        raise TypeError(
            f"'{type(self._value).__name__}' object (wrapped by ObservableValue) is not iterable"
        )

    def __contains__(self, item: object) -> bool:
        return item in self._value
