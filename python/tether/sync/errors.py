"""Errors raised by `tether.sync`."""

from __future__ import annotations

from .._native import TetherError

__all__ = ["NoSessionError", "SyncError", "SyncValidationError"]


class SyncError(TetherError):
    """Base class of `tether.sync` errors."""


class SyncValidationError(SyncError, ValueError):
    """A client sent a frame, state or parameters that do not fit; its message is toasted."""


class NoSessionError(SyncError, LookupError):
    """A `Sync` was created outside `with session:` and outside any handler."""
