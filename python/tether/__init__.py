"""tether: the tether server and engines, embedded in Python.

```python
import tether

with tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0") as server:
    print(server.http_addr, server.tcp_addr)  # the bound addresses
```

Python WebSocket endpoints run on the same server: `server.websocket("/ws/x", handler)` with
`async def handler(ws: tether.WebSocket)` (Starlette's WebSocket API).

The native module owns one tokio runtime. `tether.close()` stops every server and shuts that
runtime down; it also runs at interpreter exit (`atexit`), before Python finalizes, so no Rust
task outlives the interpreter.
"""

from __future__ import annotations

import atexit
import contextlib
import logging

from . import _native
from ._native import ConfigError, ServerError, TetherError
from .server import Server, serve
from .websocket import WebSocket, WebSocketDisconnect, WebSocketState

__version__: str = _native.version()

# A library logs; the application decides where that goes (nothing by default).
logging.getLogger("tether").addHandler(logging.NullHandler())

__all__ = [
    "ConfigError",
    "Server",
    "ServerError",
    "TetherError",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketState",
    "__version__",
    "close",
    "serve",
]


def close(timeout: float = 5.0) -> None:
    """Stops every server started here, waits for their drains, and shuts the runtime down.

    Safe to call more than once; the next `serve()` starts a new runtime.
    `timeout` (seconds) bounds the drain wait and, again, the runtime shutdown.
    """
    _native.close(timeout)


def _close_at_exit() -> None:
    # Nothing useful can be done with a failure this late; the process is exiting anyway.
    with contextlib.suppress(Exception):
        _native.close(5.0)


atexit.register(_close_at_exit)
