"""`RuntimeConfig` and what it holds, and `RuntimeStats`: plain Python values, checked the way
jsrun checks them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from .._native import js as _js

_MIB = 1024 * 1024


def _positive(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


def _non_negative(name: str, value: int | None, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0 turns the cache off)")
    return value


def _unsigned(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    if value < 0:
        raise OverflowError("can't convert negative int to unsigned")
    return value


def _typed(name: str, value: Any, kind: type | tuple[type, ...], expected: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"argument '{name}': '{type(value).__name__}' object is not {expected}")
    return value


class InspectorConfig:
    """Chrome DevTools settings (accepted for compatibility: QuickJS has no inspector)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9229,
        wait_for_connection: bool = False,
        break_on_next_statement: bool = False,
        target_url: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.wait_for_connection = wait_for_connection
        self.break_on_next_statement = break_on_next_statement
        self.target_url = target_url
        self.display_name = display_name

    def endpoint(self) -> str:
        """`host:port`."""
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return (
            f'InspectorConfig(host="{self.host}", port={self.port}, '
            f"wait_for_connection={str(self.wait_for_connection).lower()}, "
            f"break_on_next_statement={str(self.break_on_next_statement).lower()}, "
            f"target_url={self.target_url!r}, display_name={self.display_name!r})"
        )


class InspectorEndpoints:
    """Where a DevTools frontend would connect (never produced: QuickJS has no inspector)."""

    def __init__(self, **fields: str) -> None:
        for name in (
            "id",
            "websocket_url",
            "devtools_frontend_url",
            "title",
            "description",
            "target_url",
            "favicon_url",
            "host",
        ):
            setattr(self, name, fields.get(name, ""))


class RuntimeConfig:
    """Settings for a `Runtime`: heap limit, default timeout, bootstrap or snapshot, console,
    the JS → Python conversion limits, and the size of the `eval` code cache."""

    def __init__(
        self,
        max_heap_size: int | None = None,
        initial_heap_size: int | None = None,
        bootstrap: str | None = None,
        timeout: float | timedelta | None = None,
        enable_console: bool = False,
        inspector: InspectorConfig | None = None,
        snapshot: bytes | None = None,
        max_serialization_depth: int | None = None,
        max_serialization_bytes: int | None = None,
        code_cache_bytes: int | None = None,
        code_cache_entries: int | None = None,
    ) -> None:
        if snapshot is not None and bootstrap is not None:
            raise ValueError("snapshot and bootstrap cannot be used together")
        self.max_heap_size = max_heap_size
        self.initial_heap_size = initial_heap_size
        self.bootstrap = bootstrap
        self.timeout = timeout  # type: ignore[assignment]
        if not isinstance(enable_console, bool):
            raise TypeError(
                f"argument 'enable_console': '{type(enable_console).__name__}' object cannot be "
                "converted to 'PyBool'"
            )
        self._enable_console = enable_console
        self.inspector = inspector
        self.snapshot = snapshot
        self.max_serialization_depth = max_serialization_depth  # type: ignore[assignment]
        self.max_serialization_bytes = max_serialization_bytes  # type: ignore[assignment]
        self.code_cache_bytes = code_cache_bytes  # type: ignore[assignment]
        self.code_cache_entries = code_cache_entries  # type: ignore[assignment]

    @property
    def max_heap_size(self) -> int | None:
        """Heap limit in bytes; reaching it terminates the runtime."""
        return self._max_heap_size

    @max_heap_size.setter
    def max_heap_size(self, value: int | None) -> None:
        self._max_heap_size = _unsigned(value)

    @property
    def initial_heap_size(self) -> int | None:
        """Heap size before the first garbage collection (needs `max_heap_size`)."""
        return self._initial_heap_size

    @initial_heap_size.setter
    def initial_heap_size(self, value: int | None) -> None:
        self._initial_heap_size = _unsigned(value)

    @property
    def bootstrap(self) -> str | None:
        """A classic script run when the runtime starts."""
        return self._bootstrap

    @bootstrap.setter
    def bootstrap(self, value: str | None) -> None:
        self._bootstrap = _typed("bootstrap", value, str, "a str")

    @property
    def inspector(self) -> InspectorConfig | None:
        """Accepted for compatibility (QuickJS has no inspector)."""
        return self._inspector

    @inspector.setter
    def inspector(self, value: InspectorConfig | None) -> None:
        self._inspector = _typed("inspector", value, InspectorConfig, "an InspectorConfig")

    @property
    def snapshot(self) -> bytes | None:
        """Bytes from `SnapshotBuilder.build()`, replayed when the runtime starts."""
        return self._snapshot

    @snapshot.setter
    def snapshot(self, value: bytes | None) -> None:
        self._snapshot = _typed("snapshot", value, (bytes, bytearray), "bytes")

    @property
    def timeout(self) -> float | None:
        """Default time limit in seconds for every evaluation."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | timedelta | None) -> None:
        self._timeout = _js._parse_timeout(value)

    @property
    def enable_console(self) -> bool:
        """Whether `console.*` prints (read-only after construction)."""
        return self._enable_console

    @property
    def max_serialization_depth(self) -> int:
        """Deepest nesting converted between JS and Python (default 100)."""
        return self._max_serialization_depth

    @max_serialization_depth.setter
    def max_serialization_depth(self, value: int | None) -> None:
        self._max_serialization_depth = _positive("max_serialization_depth", value, 100)

    @property
    def max_serialization_bytes(self) -> int:
        """Largest value converted between JS and Python, in bytes (default 10 MiB)."""
        return self._max_serialization_bytes

    @max_serialization_bytes.setter
    def max_serialization_bytes(self, value: int | None) -> None:
        self._max_serialization_bytes = _positive("max_serialization_bytes", value, 10 * _MIB)

    @property
    def code_cache_bytes(self) -> int:
        """Most bytes of compiled `eval` sources kept for reuse (default 1 MiB; 0 turns the
        cache off; at most an eighth of `max_heap_size`)."""
        return self._code_cache_bytes

    @code_cache_bytes.setter
    def code_cache_bytes(self, value: int | None) -> None:
        self._code_cache_bytes = _non_negative("code_cache_bytes", value, _MIB)

    @property
    def code_cache_entries(self) -> int:
        """Most compiled `eval` sources kept for reuse (default 256; 0 turns the cache off)."""
        return self._code_cache_entries

    @code_cache_entries.setter
    def code_cache_entries(self, value: int | None) -> None:
        self._code_cache_entries = _non_negative("code_cache_entries", value, 256)

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{k}: {v!r}"
            for k, v in (
                ("max_heap_size", self.max_heap_size),
                ("initial_heap_size", self.initial_heap_size),
                ("execution_timeout", self.timeout),
                ("bootstrap_script", self.bootstrap),
                ("enable_console", self.enable_console),
                ("inspector", self.inspector),
                ("snapshot", None if self.snapshot is None else f"<{len(self.snapshot)} bytes>"),
                ("max_serialization_depth", self.max_serialization_depth),
                ("max_serialization_bytes", self.max_serialization_bytes),
                ("code_cache_bytes", self.code_cache_bytes),
                ("code_cache_entries", self.code_cache_entries),
            )
        )
        return f"RuntimeConfig({fields})"


class RuntimeStats:
    """A runtime's counters and heap figures at one moment (read-only)."""

    _FIELDS = (
        "heap_total_bytes",
        "heap_used_bytes",
        "external_memory_bytes",
        "physical_total_bytes",
        "total_execution_time_ms",
        "last_execution_time_ms",
        "last_execution_kind",
        "eval_sync_count",
        "eval_async_count",
        "eval_module_sync_count",
        "eval_module_async_count",
        "call_function_sync_count",
        "call_function_async_count",
        "active_async_ops",
        "open_resources",
        "active_timers",
        "active_intervals",
        "active_js_streams",
        "active_py_streams",
        "total_js_streams",
        "total_py_streams",
        "bytes_streamed_js_to_py",
        "bytes_streamed_py_to_js",
        "code_cache_hits",
        "code_cache_misses",
        "code_cache_evictions",
        "code_cache_bytes",
        "code_cache_entries",
    )

    def __init__(self, values: Mapping[str, Any]) -> None:
        for name in self._FIELDS:
            object.__setattr__(self, name, values.get(name, 0))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"RuntimeStats.{name} is read-only")

    def __repr__(self) -> str:
        shown = (
            "heap_used_bytes",
            "total_execution_time_ms",
            "last_execution_kind",
            "active_async_ops",
            "open_resources",
            "eval_sync_count",
            "call_function_async_count",
            "call_function_sync_count",
            "active_js_streams",
            "active_py_streams",
        )
        return "RuntimeStats(" + ", ".join(f"{k}={getattr(self, k)}" for k in shown) + ")"

    if False:  # pragma: no cover - attribute declarations for type checkers
        heap_total_bytes: int
        heap_used_bytes: int
        external_memory_bytes: int
        physical_total_bytes: int
        total_execution_time_ms: int
        last_execution_time_ms: int
        last_execution_kind: str | None
        eval_sync_count: int
        eval_async_count: int
        eval_module_sync_count: int
        eval_module_async_count: int
        call_function_sync_count: int
        call_function_async_count: int
        active_async_ops: int
        open_resources: int
        active_timers: int
        active_intervals: int
        active_js_streams: int
        active_py_streams: int
        total_js_streams: int
        total_py_streams: int
        bytes_streamed_js_to_py: int
        bytes_streamed_py_to_js: int
        code_cache_hits: int
        code_cache_misses: int
        code_cache_evictions: int
        code_cache_bytes: int
        code_cache_entries: int
