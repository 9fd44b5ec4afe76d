"""The frames `tether.ui` writes: strict JSON (never a bare NaN or Infinity), the hero's
announce, and `global/clearAll`."""

from __future__ import annotations

import json
import math
import operator
import time
from typing import Any

from ._settings import PROTOCOL_VERSION


def _json_default(obj: object) -> object:
    # numpy scalars and the like: ints by __index__, floats by __float__ (non-finite -> null).
    if hasattr(obj, "__index__"):
        return operator.index(obj)
    if hasattr(obj, "__float__"):
        value = float(obj)
        return value if math.isfinite(value) else None
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def dumps(message: dict[str, Any]) -> str:
    """`json.dumps` with sidekick-py's separators and key order, but strict JSON: a non-finite
    float (NaN, ±Infinity) becomes `null` instead of a bare `NaN` literal."""
    try:
        return json.dumps(message, allow_nan=False, default=_json_default)
    except ValueError:
        return json.dumps(_finite(message), allow_nan=False, default=_json_default)


def _announce(peer_id: str, status: str) -> str:
    return json.dumps(
        {
            "id": 0,
            "component": "system",
            "type": "announce",
            "payload": {
                "peerId": peer_id,
                "role": "hero",
                "status": status,
                "version": PROTOCOL_VERSION,
                "timestamp": int(time.time() * 1000),
            },
        }
    )


_CLEAR_ALL = json.dumps({"id": 0, "component": "global", "type": "clearAll"})
