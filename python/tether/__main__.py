"""`python -m tether serve [OPTIONS]`: the embedded server in the foreground until SIGINT/SIGTERM.

The flags are the `tether` binary's, and so are the environment variables (`TETHER_HTTP`, …)
and the `listening http ADDR` / `listening tcp ADDR` lines printed once bound.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from . import ConfigError, TetherError, close, serve

_FLAGS: list[tuple[str, str, type, str]] = [
    (
        "http",
        "ADDR",
        str,
        "HTTP listener: REST, WebSocket endpoints, pages, /metrics [127.0.0.1:8700]",
    ),
    ("tcp", "ADDR", str, "rooms TCP line-protocol listener [127.0.0.1:10010]"),
    ("relay", "ADDR", str, "UI relay for sidekick clients, or off [localhost:5163]"),
    ("config", "FILE", str, "TOML file with the same keys as these options"),
    ("max-clients", "N", int, "most registered clients at once [100]"),
    ("max-message-length", "N", int, "longest message text, in characters [255]"),
    ("max-rooms", "N", int, "most rooms at once, main included [1000]"),
    (
        "queue-capacity",
        "N",
        int,
        "outbound queue per connection, in messages, and KiB of a room's shared log [1024]",
    ),
    ("tls-cert", "PEM", str, "PEM certificate chain: TLS on every listener (needs --tls-key)"),
    ("tls-key", "PEM", str, "PEM private key for --tls-cert"),
    ("shutdown-grace", "SECS", float, "seconds to wait for clients on shutdown [5]"),
    (
        "data",
        "DIR",
        str,
        "directory where rooms and their history are kept (SQLite) across restarts [in memory]",
    ),
    ("bus", "URL", str, "join a cluster of nodes through this Redis (redis://HOST:PORT/DB) [none]"),
    (
        "allowed-origins",
        "ORIGINS",
        str,
        (
            "comma-separated web page origins that may open WebSockets besides same-origin ones "
            "(scheme://host[:port], http://host:*, https://*.example.com, *) "
            "[http(s)://localhost:*, http(s)://127.0.0.1:*, http(s)://[::1]:*]"
        ),
    ),
    (
        "allowed-hosts",
        "HOSTS",
        str,
        "comma-separated Host names a loopback listener answers besides loopback ones",
    ),
]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tether",
        description="The tether server, embedded in Python.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "serve",
        help="start the server and run until SIGINT/SIGTERM",
        description="Start the server (HTTP + TCP listeners) and run until SIGINT/SIGTERM. "
        "Every option can also come from the environment (TETHER_*).",
    )
    for name, metavar, kind, help_ in _FLAGS:
        env = "TETHER_" + name.upper().replace("-", "_")
        s.add_argument(f"--{name}", metavar=metavar, type=kind, help=f"{help_} (env {env})")
    return p


def _env_defaults(args: argparse.Namespace) -> dict[str, object]:
    options: dict[str, object] = {}
    for name, _metavar, kind, _help in _FLAGS:
        key = name.replace("-", "_")
        value = getattr(args, key)
        if value is None:
            raw = os.environ.get("TETHER_" + key.upper())
            if raw:
                try:
                    value = kind(raw)
                except ValueError:
                    raise ConfigError(f"invalid TETHER_{key.upper()}={raw!r}") from None
        options[key] = value
    return options


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    # Before listening, so a signal right after the listening lines drains instead of killing.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        options = _env_defaults(args)
        server = serve(**options)  # type: ignore[arg-type]
    except ConfigError as e:
        print(f"tether: {e}", file=sys.stderr)
        return 2
    except TetherError as e:
        print(f"tether: {e}", file=sys.stderr)
        return 1
    print(f"listening http {server.http_addr}", flush=True)
    if server.relay_addr:
        print(f"listening relay {server.relay_addr}", flush=True)
    print(f"listening tcp {server.tcp_addr}", flush=True)
    # Short waits so the signal handler runs promptly on the main thread.
    while not stop.wait(0.2):
        if not server.running:
            break
    if received:
        print(f"tether: {received[0]}: shutting down, telling clients", file=sys.stderr, flush=True)
    try:
        server.close()
    except TetherError as e:
        print(f"tether: {e}", file=sys.stderr)
        return 1
    finally:
        close()
    return 0 if received else 1


if __name__ == "__main__":
    sys.exit(main())
