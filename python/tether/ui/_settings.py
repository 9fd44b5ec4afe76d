"""What `tether.ui.configure()` and `set_url()` set: the outbox and frame bounds, the reconnect
window, the callback workers, and the relay URL the next connection uses."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

logger = logging.getLogger("tether.ui")

#: The sidekick-py release whose wire protocol `tether.ui` speaks; sent as `version` in announces.
PROTOCOL_VERSION = "0.0.7"
#: Where the client connects unless `set_url()` or `$TETHER_UI_URL` say otherwise.
DEFAULT_URL = "ws://127.0.0.1:5163"
#: Environment variable with the relay URL (`ws://` or `wss://`, may carry `?session=`).
URL_ENV = "TETHER_UI_URL"

DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024
#: The tether relay's default frame limit (it closes a connection with 1009 over it).
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
DEFAULT_RECONNECT_TIMEOUT = 30.0
DEFAULT_CALLBACK_WORKERS = 8
#: `wait_for_connection(None)` waits this long for a UI (sidekick-py's 180 s).
DEFAULT_CONNECTION_WAIT = 180.0


@dataclass
class _Settings:
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT
    callback_workers: int = DEFAULT_CALLBACK_WORKERS


_settings = _Settings()
_user_url: str | None = None
_user_session: str | None = None


def configure(
    *,
    max_queue_bytes: int | None = None,
    max_frame_bytes: int | None = None,
    reconnect_timeout: float | None = None,
    callback_workers: int | None = None,
) -> None:
    """Tunes the client; arguments left as `None` keep their current value.

    * `max_queue_bytes` (default 16 MiB): bound of the outbox, the frames not yet written to the
      relay (everything sent before a UI is online or while reconnecting). A send that would
      exceed it raises `SidekickQueueFullError`; while connected to a UI, a send from a thread
      other than the I/O loop instead waits for room (backpressure).
    * `max_frame_bytes` (default 1 MiB, the tether relay's limit): a bigger frame raises
      `SidekickError` at the call instead of making the relay close the connection (1009).
    * `reconnect_timeout` (default 30 s): how long the client keeps trying to (re)connect to the
      relay, with exponential backoff (0.2 s doubling up to 5 s), before the connection is gone
      for good: `run_forever()` then raises, later sends raise `SidekickDisconnectedError`.
      `0` gives up at the first failure.
    * `callback_workers` (default 8): threads that run plain `def` callbacks; applies to clients
      started afterwards.
    """
    if max_queue_bytes is not None:
        if not isinstance(max_queue_bytes, int) or max_queue_bytes <= 0:
            raise ValueError("max_queue_bytes must be a positive int")
        _settings.max_queue_bytes = max_queue_bytes
    if max_frame_bytes is not None:
        if not isinstance(max_frame_bytes, int) or max_frame_bytes <= 0:
            raise ValueError("max_frame_bytes must be a positive int")
        _settings.max_frame_bytes = max_frame_bytes
    if reconnect_timeout is not None:
        if not isinstance(reconnect_timeout, (int, float)) or reconnect_timeout < 0:
            raise ValueError("reconnect_timeout must be a non-negative number of seconds")
        _settings.reconnect_timeout = float(reconnect_timeout)
    if callback_workers is not None:
        if not isinstance(callback_workers, int) or callback_workers <= 0:
            raise ValueError("callback_workers must be a positive int")
        _settings.callback_workers = callback_workers


def _check_ws_url(url: object, origin: str) -> str:
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise ValueError(
            f"Invalid WebSocket URL from {origin}: {url!r}. "
            "URL must be a string starting with 'ws://' or 'wss://'."
        )
    return url


def set_url(url: str | None, *, session: str | None = None) -> None:
    """Sets the relay URL used at the next connection (call it before creating components).

    `url` must start with `ws://` or `wss://` (else `ValueError`); `None` restores the default,
    `$TETHER_UI_URL` or else `ws://127.0.0.1:5163`. `session` adds (or replaces) `?session=<id>`,
    the relay's session key; a URL may also carry it itself. There is no fallback to any other
    server: if the relay cannot be reached, the connection fails (see `configure`).
    """
    global _user_url, _user_session
    if url is not None:
        _check_ws_url(url, "set_url()")
    if session is not None:
        if not isinstance(session, str) or not session.strip():
            raise ValueError("session must be a non-empty string")
        session = session.strip()
    _user_url = url
    _user_session = session
    logger.info("relay URL set to %s (session %s)", url or "the default", session)


def _with_session(url: str, session: str) -> str:
    parts = urlparse(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    query["session"] = [session]
    return urlunparse(parts._replace(query=urlencode(query, doseq=True)))


def resolve_url() -> str:
    """The URL the next connection uses: `set_url()`, else `$TETHER_UI_URL`, else the default."""
    if _user_url is not None:
        url = _user_url
    elif os.environ.get(URL_ENV):
        url = _check_ws_url(os.environ[URL_ENV], f"${URL_ENV}")
    else:
        url = DEFAULT_URL
    return _with_session(url, _user_session) if _user_session else url
