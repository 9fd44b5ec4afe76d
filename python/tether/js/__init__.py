"""tether.js: JavaScript runtimes for Python, with jsrun 0.3.0's API, on QuickJS.

```python
from tether import js

with js.Runtime() as rt:
    rt.bind_function("add", lambda a, b: a + b)
    print(rt.eval("add(1, 2)"))  # 3
```

Each `Runtime` owns one thread that blocks while idle (no CPU use). Sync calls wait with the
GIL released; async calls (`eval_async`, `JsFunction.call_async`, `eval_module_async`) return
asyncio awaitables. Differences from jsrun, on purpose: the engine is QuickJS-NG (no `Intl`,
`Temporal`, `WebAssembly` or inspector), a sync `JsFunction` call that reaches back into Python
does not deadlock, the runtime stays usable after a pending-promise timeout, no internals are
reachable from JS, Python ints beyond ±2**53 become BigInt, a host callback may call back
into JS (a `JsFunction` it was given, or `rt.eval`) inline, and a `Runtime` garbage-collected
without `close()` is terminated (jsrun keeps it running until the program exits). `JsStream`
also has `aclose()`.

`InspectorConfig` is accepted but QuickJS has no debugger protocol: `inspector_endpoints()`
returns None (with a RuntimeWarning when an inspector was configured).

Module-level `eval`, `eval_async`, `bind_function` and `bind_object` use a default runtime kept
per asyncio Task (or per thread outside asyncio); `close_default_runtime()` closes it.
"""

from __future__ import annotations

from .._native import js as _js
from ._config import InspectorConfig, InspectorEndpoints, RuntimeConfig, RuntimeStats
from ._default import (
    bind_function,
    bind_object,
    close_default_runtime,
    eval,
    eval_async,
    get_default_runtime,
)
from ._runtime import Runtime
from ._streams import JsStream

JavaScriptError = _js.JavaScriptError
RuntimeTerminated = _js.RuntimeTerminated
JsFunction = _js.JsFunction
JsUndefined = _js.JsUndefined
SnapshotBuilder = _js.SnapshotBuilder
undefined = _js.undefined

# The public classes and functions say they are `tether.js`'s, wherever they are defined.
for _public in (
    JavaScriptError,
    RuntimeTerminated,
    InspectorConfig,
    InspectorEndpoints,
    RuntimeConfig,
    RuntimeStats,
    Runtime,
    JsStream,
    bind_function,
    bind_object,
    close_default_runtime,
    eval,
    eval_async,
    get_default_runtime,
):
    _public.__module__ = __name__
del _public

__all__ = [
    "InspectorConfig",
    "InspectorEndpoints",
    "JavaScriptError",
    "JsFunction",
    "JsStream",
    "JsUndefined",
    "Runtime",
    "RuntimeConfig",
    "RuntimeStats",
    "RuntimeTerminated",
    "SnapshotBuilder",
    "bind_function",
    "bind_object",
    "close_default_runtime",
    "eval",
    "eval_async",
    "get_default_runtime",
    "undefined",
]
