"""Start ws_sync_app on a free port for a test, tether-style.

    $TETHER_VENV/bin/python tests/sync_compat/serve.py [--host 127.0.0.1] [--port 0]

Binds the listening socket itself (port 0 = any free port, no race), prints
`listening http <host>:<port>` on stdout (the line tether prints) once the socket listens, then
serves with uvicorn. Exits on SIGTERM/SIGINT (uvicorn's graceful shutdown, bounded to 2 s), and
also when its stdin reaches EOF, so a test runner that dies without killing it does not leave it
behind (start it with a pipe on stdin and keep that pipe open).

`serve(app, log_env=...)` does all that for any ASGI app: tests/fastapi_sync/app.py uses it too
(with this directory on `sys.path`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

HERE = Path(__file__).resolve().parent


def watch_stdin() -> None:
    """Terminate when the parent closes our stdin (it exited or crashed)."""
    with contextlib.suppress(Exception):
        while sys.stdin.buffer.read(4096):
            pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    os._exit(3)


def serve(app: Any, *, log_env: str) -> None:
    """Run `app` as this module's docstring says; `$log_env` is the default of --log-level."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log-level", default=os.environ.get(log_env, "warning"))
    ap.add_argument("--no-stdin-watch", action="store_true")
    args = ap.parse_args()

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    host, port = sock.getsockname()[:2]

    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    print(f"listening http {host}:{port}", flush=True)
    if not args.no_stdin_watch:
        threading.Thread(target=watch_stdin, daemon=True).start()
    server.run(sockets=[sock])


def main() -> None:
    sys.path.insert(0, str(HERE))
    from ws_sync_app import app

    serve(app, log_env="SYNC_COMPAT_LOG")


if __name__ == "__main__":
    main()
