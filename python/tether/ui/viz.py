"""Viz: a tree view of Python variables, live for `ObservableValue`s (nested ones too)."""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

from .component import Component, ErrorCallback
from .observable_value import ObservableValue, UnsubscribeFunction

logger = logging.getLogger("tether.ui")

__all__ = ["Viz"]

_MAX_DEPTH = 5  # deeper nodes become {"type": "truncated"}
_MAX_ITEMS = 50  # a container shows its first 50 items


def _get_representation(
    data: Any, depth: int = 0, visited_ids: set[int] | None = None
) -> dict[str, Any]:
    """The Viz node of `data`, exactly as sidekick-py 0.0.7 builds it (same keys, key order and
    ids), except that a non-finite float's `value` is its repr string (`"nan"`, `"inf"`,
    `"-inf"`) instead of a bare `NaN`/`Infinity` that is not JSON."""
    if visited_ids is None:
        visited_ids = set()
    current_id = id(data)
    if depth > _MAX_DEPTH:
        return {
            "type": "truncated",
            "value": f"<Max Depth {_MAX_DEPTH} Reached>",
            "id": f"trunc_{current_id}_{depth}",
        }
    if current_id in visited_ids:
        return {
            "type": "recursive_ref",
            "value": f"<Recursive Reference to {type(data).__name__} object>",
            "id": f"rec_{current_id}_{depth}",
        }
    type_name = type(data).__name__
    rep: dict[str, Any] = {
        "id": f"{type_name}_{current_id}_{depth}",
        "type": type_name,
        "observableTracked": False,
    }
    try:
        visited_ids.add(current_id)
        if isinstance(data, ObservableValue):
            nested = _get_representation(data.get(), depth, visited_ids.copy())
            nested["observableTracked"] = True
            nested["id"] = data._obs_value_id
            return nested
        if data is None:
            rep["value"] = "None"
            rep["type"] = "NoneType"
        elif isinstance(data, float) and not math.isfinite(data):
            rep["value"] = repr(data)
        elif isinstance(data, (str, int, float, bool)):
            rep["value"] = data
        elif isinstance(data, (list, tuple)):
            rep["type"] = "list"
            rep["length"] = len(data)
            items: list[dict[str, Any]] = []
            for count, item in enumerate(data):
                if count >= _MAX_ITEMS:
                    items.append(
                        {
                            "type": "truncated",
                            "value": f"... ({len(data)} items total, showing first {_MAX_ITEMS})",
                            "id": f"{rep['id']}_trunc_{count}",
                        }
                    )
                    break
                items.append(_get_representation(item, depth + 1, visited_ids.copy()))
            rep["value"] = items
        elif isinstance(data, dict):
            rep["type"] = "dict"
            rep["length"] = len(data)
            try:
                pairs = [(k, v) for _, k, v in sorted((repr(k), k, v) for k, v in data.items())]
            except Exception:
                pairs = list(data.items())
            entries: list[dict[str, Any]] = []
            for count, (key, value) in enumerate(pairs):
                if count >= _MAX_ITEMS:
                    entries.append(
                        {
                            "key": {
                                "type": "truncated_key",
                                "value": "...",
                                "id": f"{rep['id']}_keytrunc_{count}",
                            },
                            "value": {
                                "type": "truncated_val",
                                "value": f"... ({len(data)} items total, "
                                f"showing first {_MAX_ITEMS})",
                                "id": f"{rep['id']}_valtrunc_{count}",
                            },
                        }
                    )
                    break
                entries.append(
                    {
                        "key": _get_representation(key, depth + 1, visited_ids.copy()),
                        "value": _get_representation(value, depth + 1, visited_ids.copy()),
                    }
                )
            rep["value"] = entries
        elif isinstance(data, set):
            rep["type"] = "set"
            rep["length"] = len(data)
            try:
                members = [item for _, item in sorted((repr(item), item) for item in data)]
            except Exception:
                members = list(data)
            nodes: list[dict[str, Any]] = []
            for count, item in enumerate(members):
                if count >= _MAX_ITEMS:
                    nodes.append(
                        {
                            "type": "truncated",
                            "value": f"... ({len(data)} items total, showing first {_MAX_ITEMS})",
                            "id": f"{rep['id']}_trunc_{count}",
                        }
                    )
                    break
                nodes.append(_get_representation(item, depth + 1, visited_ids.copy()))
            rep["value"] = nodes
        else:
            rep["type"] = f"object ({type_name})"
            try:
                attribute_names = dir(data)
            except Exception:
                attribute_names = []
            attrs, skipped = _public_attributes(data, attribute_names)
            rep["length"] = len(attrs)
            members_by_name: dict[str, Any] = {}
            for count, (name, attr) in enumerate(attrs):
                if count >= _MAX_ITEMS:
                    members_by_name["..."] = {
                        "type": "truncated",
                        "value": f"... ({len(attrs)} attributes total, showing first {_MAX_ITEMS})",
                        "id": f"{rep['id']}_attrtrunc_{count}",
                    }
                    break
                members_by_name[name] = _get_representation(attr, depth + 1, visited_ids.copy())
            rep["value"] = members_by_name
            if not attrs and not skipped and not attribute_names:
                try:
                    rep["value"] = repr(data)
                    rep["type"] = f"repr ({type_name})"
                except Exception as exc:
                    rep["value"] = f"<Object of type {type_name}, repr() failed: {exc}>"
                    rep["type"] = "error"
    except Exception as exc:
        logger.exception("error representing a %s at depth %d", type_name, depth)
        rep["type"] = "error"
        rep["value"] = f"<Error representing object: {exc}>"
    finally:
        visited_ids.discard(current_id)
    return rep


def _public_attributes(data: Any, names: list[str]) -> tuple[list[tuple[str, Any]], int]:
    attrs: dict[str, Any] = {}
    skipped = 0
    for name in names:
        if name.startswith("_"):
            continue
        try:
            attr = getattr(data, name)
        except Exception:
            skipped += 1
            continue
        if not callable(attr):
            attrs[name] = attr
    try:
        return sorted(attrs.items()), skipped
    except TypeError:
        return list(attrs.items()), skipped


# --- nested ObservableValues ------------------------------------------------------------------

_JSON_KEY = (str, int, float, bool, type(None))


def _find_observables(
    data: Any, path: list[Any], depth: int, seen: set[int], out: list[tuple[Any, list[Any]]]
) -> None:
    """Every ObservableValue reachable from `data` the way the representation walks it (same
    depth and item limits), with its path: list indices, dict keys, attribute names."""
    if depth > _MAX_DEPTH or id(data) in seen:
        return
    if isinstance(data, ObservableValue):
        out.append((data, path))
        data = data.get()
        if id(data) in seen:
            return
    if depth >= _MAX_DEPTH or isinstance(data, (str, int, float, bool, type(None), set)):
        return  # children would be truncated; sets hold no (unhashable) ObservableValues
    seen = seen | {id(data)}
    if isinstance(data, (list, tuple)):
        for index, item in enumerate(data[:_MAX_ITEMS]):
            _find_observables(item, [*path, index], depth + 1, seen, out)
    elif isinstance(data, dict):
        for count, (key, value) in enumerate(data.items()):
            if count >= _MAX_ITEMS:
                break
            if isinstance(key, _JSON_KEY):
                _find_observables(value, [*path, key], depth + 1, seen, out)
    elif hasattr(data, "__dict__") or hasattr(data, "__slots__"):
        try:
            names = dir(data)
        except Exception:
            return
        attrs, _ = _public_attributes(data, names)
        for name, attr in attrs[:_MAX_ITEMS]:
            _find_observables(attr, [*path, name], depth + 1, seen, out)


def _contains_observable(data: Any) -> bool:
    found: list[tuple[Any, list[Any]]] = []
    _find_observables(data, [], 0, set(), found)
    return bool(found)


class _Tracked:
    """One shown variable: its value and the subscriptions to every ObservableValue in it."""

    def __init__(self, viz: Viz, name: str, value: Any) -> None:
        self.viz = viz
        self.name = name
        self.value = value
        # id(observable) -> (observable, unsubscribe, [paths from the root])
        self.subs: dict[int, tuple[ObservableValue, UnsubscribeFunction, list[list[Any]]]] = {}
        self.rescan()

    @property
    def nested(self) -> bool:
        return any(paths != [[]] for _, _, paths in self.subs.values())

    def rescan(self) -> None:
        found: list[tuple[Any, list[Any]]] = []
        _find_observables(self.value, [], 0, set(), found)
        paths: dict[int, tuple[ObservableValue, list[list[Any]]]] = {}
        for obs, path in found:
            paths.setdefault(id(obs), (obs, []))[1].append(path)
        for key in list(self.subs):
            if key not in paths:
                self.subs.pop(key)[1]()
        for key, (obs, obs_paths) in paths.items():
            if key in self.subs:
                _, unsubscribe, _ = self.subs[key]
                self.subs[key] = (obs, unsubscribe, obs_paths)
            else:
                callback = functools.partial(self.viz._handle_observable_update, self, obs)
                self.subs[key] = (obs, obs.subscribe(callback), obs_paths)

    def close(self) -> None:
        for _, unsubscribe, _ in self.subs.values():
            unsubscribe()
        self.subs.clear()


class Viz(Component):
    """Shows variables as expandable trees: `viz.show(name, value)`. A value that is (or
    contains) an `ObservableValue` updates itself when changed through the wrapper."""

    def __init__(
        self,
        instance_id: str | None = None,
        parent: Component | str | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        super().__init__("viz", {}, instance_id, parent, on_error)
        self._shown_variables: dict[str, _Tracked] = {}

    def show(self, name: str, value: Any) -> None:
        """Shows (or replaces) variable `name`; sends `set` with the full representation."""
        if not isinstance(name, str) or not name:
            raise ValueError("Variable name provided to viz.show() must be a non-empty string.")
        previous = self._shown_variables.pop(name, None)
        if previous is not None:
            previous.close()
        self._shown_variables[name] = _Tracked(self, name, value)
        self._send_set(name, value)

    def _send_set(self, name: str, value: Any) -> None:
        try:
            representation = _get_representation(value)
        except Exception as exc:
            representation = {
                "type": "error",
                "value": f"<Error creating display for '{name}': {exc}>",
                "id": f"error_{name}_{id(value)}",
                "observableTracked": False,
            }
        data = value.get() if isinstance(value, ObservableValue) else value
        length = None
        if callable(getattr(data, "__len__", None)):
            try:
                length = len(data)
            except TypeError:
                pass
        options: dict[str, Any] = {"path": [], "valueRepresentation": representation}
        if length is not None:
            options["length"] = length
        self._send_update({"action": "set", "variableName": name, "options": options})

    def _handle_observable_update(
        self, tracked: _Tracked, obs: ObservableValue, change: dict[str, Any]
    ) -> None:
        if self._shown_variables.get(tracked.name) is not tracked:
            return  # re-shown or removed meanwhile
        entry = tracked.subs.get(id(obs))
        paths = entry[2] if entry is not None else []
        must_rescan = tracked.nested or _contains_observable(change.get("value"))
        for prefix in paths:
            self._send_change(tracked, obs, prefix, change)
        if must_rescan or change.get("type") in ("set", "clear"):
            tracked.rescan()

    def _send_change(
        self, tracked: _Tracked, obs: ObservableValue, prefix: list[Any], change: dict[str, Any]
    ) -> None:
        action: str = change.get("type", "unknown_update")
        local_path: list[Any] = list(change.get("path", []))
        options: dict[str, Any]
        if action in ("set", "clear") and not local_path:
            if not prefix:
                # The variable itself: re-sent whole, byte for byte as sidekick-py does.
                options = {"path": [], "valueRepresentation": _get_representation(obs)}
                data = obs.get()
                try:
                    options["length"] = len(data) if hasattr(data, "__len__") else None
                except TypeError:
                    options["length"] = None
                self._send_update(
                    {"action": "set", "variableName": tracked.name, "options": options}
                )
                return
            # A nested observable replaced or cleared: a setitem of it in its container.
            options = {
                "path": prefix,
                "valueRepresentation": _get_representation(obs),
            }
            if isinstance(_container_at(tracked.value, prefix[:-1]), dict):
                options["keyRepresentation"] = _get_representation(prefix[-1])
            self._send_update(
                {"action": "setitem", "variableName": tracked.name, "options": options}
            )
            return
        options = {"path": [*prefix, *local_path]}
        if "value" in change:
            options["valueRepresentation"] = _get_representation(change["value"])
        if change.get("key") is not None:
            options["keyRepresentation"] = _get_representation(change["key"])
        if change.get("length") is not None:
            options["length"] = change["length"]
        self._send_update({"action": action, "variableName": tracked.name, "options": options})

    def remove_variable(self, name: str) -> None:
        """Removes variable `name` from the view (and stops following its observables)."""
        tracked = self._shown_variables.pop(name, None)
        if tracked is None:
            logger.warning("Viz %r: no variable %r to remove", self.instance_id, name)
            return
        tracked.close()
        self._send_update({"action": "removeVariable", "variableName": name, "options": {}})

    def remove(self) -> None:
        """Removes the Viz (and stops following every observable it showed)."""
        for tracked in self._shown_variables.values():
            tracked.close()
        self._shown_variables.clear()
        super().remove()


def _container_at(value: Any, path: list[Any]) -> Any:
    node = value.get() if isinstance(value, ObservableValue) else value
    for segment in path:
        try:
            if isinstance(node, (list, tuple, dict)):
                node = node[segment]
            else:
                node = getattr(node, segment)
        except Exception:
            return None
        if isinstance(node, ObservableValue):
            node = node.get()
    return node
