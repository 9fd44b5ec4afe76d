"""tether.ui: sidekick-py 0.0.7's Python API, talking to the tether relay.

```python
from tether import ui

grid = ui.Grid(3, 3)

@grid.click
def clicked(event: ui.GridClickEvent) -> None:
    grid.set_color(event.x, event.y, "red")

ui.run_forever()
```

The same component classes (Label, Markdown, Button, Textbox, Console, Grid, Canvas, Viz, Row,
Column), events, `ObservableValue`, exceptions and module functions as sidekick-py 0.0.7, sending
the same frames. It connects to `ws://127.0.0.1:5163` (`set_url()`, `$TETHER_UI_URL`, `?session=`),
never to a cloud relay, and differs where sidekick-py loses data or hangs:

* nothing is dropped: frames wait in an outbox bounded by bytes (16 MiB, `configure`); a send that
  would exceed it raises `SidekickQueueFullError`;
* it reconnects by itself with backoff and does not send `clearAll` again (the relay's replay log
  restores the UI); `run_forever()` raises once the connection is gone for good;
* `ObservableValue`s nested in a shown value update the `Viz` too, with their full path;
* plain `def` callbacks run in worker threads, `async def` ones as tasks: a blocking callback never
  stalls the I/O;
* NaN and ±Infinity are never sent as bare literals: `null`, or `"nan"`/`"inf"` in a Viz.
"""

from __future__ import annotations

import atexit

from .. import __version__
from ._client import _at_exit, logger
from ._settings import (
    DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_RECONNECT_TIMEOUT,
    DEFAULT_URL,
    PROTOCOL_VERSION,
    URL_ENV,
)
from .canvas import Canvas
from .component import Component
from .connection import (
    activate_connection,
    clear_all,
    configure,
    register_global_message_handler,
    run_forever,
    run_forever_async,
    set_url,
    shutdown,
    submit_interval,
    submit_task,
    wait_for_connection,
    wait_for_connection_async,
)
from .events import (
    BaseSidekickEvent,
    ButtonClickEvent,
    CanvasClickEvent,
    ConsoleSubmitEvent,
    ErrorEvent,
    GridClickEvent,
    TextboxSubmitEvent,
)
from .exceptions import (
    SidekickConnectionError,
    SidekickConnectionRefusedError,
    SidekickDisconnectedError,
    SidekickError,
    SidekickQueueFullError,
    SidekickTimeoutError,
)
from .layout import Column, Row
from .observable_value import ObservableValue
from .viz import Viz
from .widgets import Button, Console, Grid, Label, Markdown, Textbox

# Registered after `tether`'s own exit hook, so it runs first (atexit is LIFO): queued frames
# reach a relay embedded in this process before tether.close() stops it.
atexit.register(_at_exit)

__all__ = [
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_RECONNECT_TIMEOUT",
    "DEFAULT_URL",
    "PROTOCOL_VERSION",
    "URL_ENV",
    "BaseSidekickEvent",
    "Button",
    "ButtonClickEvent",
    "Canvas",
    "CanvasClickEvent",
    "Column",
    "Component",
    "Console",
    "ConsoleSubmitEvent",
    "ErrorEvent",
    "Grid",
    "GridClickEvent",
    "Label",
    "Markdown",
    "ObservableValue",
    "Row",
    "SidekickConnectionError",
    "SidekickConnectionRefusedError",
    "SidekickDisconnectedError",
    "SidekickError",
    "SidekickQueueFullError",
    "SidekickTimeoutError",
    "Textbox",
    "TextboxSubmitEvent",
    "Viz",
    "__version__",
    "activate_connection",
    "clear_all",
    "configure",
    "logger",
    "register_global_message_handler",
    "run_forever",
    "run_forever_async",
    "set_url",
    "shutdown",
    "submit_interval",
    "submit_task",
    "wait_for_connection",
    "wait_for_connection_async",
]
