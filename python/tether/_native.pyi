"""Stubs for the native module `tether._native` (crates/tether-py)."""

from collections.abc import Awaitable
from os import PathLike

class TetherError(Exception):
    """Base class of every error raised by tether."""

class ConfigError(TetherError):
    """A setting that cannot be used; the message says which and why."""

class ServerError(TetherError):
    """The server could not start or failed while running."""

class NativeServer:
    """A running embedded server."""

    @property
    def http_addr(self) -> str: ...
    @property
    def tcp_addr(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...
    def wait_async(self) -> Awaitable[None]: ...

def version() -> str: ...
def close(timeout: float = 5.0) -> None: ...
def runtime_alive() -> bool: ...
def sleep(seconds: float) -> Awaitable[None]: ...
def serve(
    http: str | None = None,
    tcp: str | None = None,
    *,
    config: str | PathLike[str] | None = None,
    max_clients: int | None = None,
    max_message_length: int | None = None,
    max_rooms: int | None = None,
    queue_capacity: int | None = None,
    tls_cert: str | PathLike[str] | None = None,
    tls_key: str | PathLike[str] | None = None,
    shutdown_grace: float | None = None,
) -> NativeServer: ...
