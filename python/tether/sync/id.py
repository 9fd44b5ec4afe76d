"""ws-sync's user/session identification handshake (`_REQUEST_USER_SESSION`)."""

from __future__ import annotations

import contextlib
from typing import Any

from .. import _native

__all__ = ["get_user_session"]


async def get_user_session(ws: Any) -> tuple[str, str] | tuple[None, None]:
    """Asks the client for its user and session ids (ws-sync's primitive handshake).

    Returns `(user, session)`, or `(None, None)` after closing the socket when the client
    answers with anything else. Accepts the socket first if the app has not.
    """
    try:
        if getattr(getattr(ws, "application_state", None), "name", None) == "CONNECTING":
            await ws.accept()
        await ws.send_text(_native.SYNC_REQUEST_USER_SESSION)
        reply = _native.sync_parse_user_session(await ws.receive_text())
        if reply is None:
            raise ValueError("the client did not answer with a valid _USER_SESSION")
        return reply
    except Exception:
        with contextlib.suppress(Exception):
            await ws.close()
        return None, None
