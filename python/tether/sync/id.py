"""ws-sync's user/session identification handshake (`_REQUEST_USER_SESSION`)."""

from __future__ import annotations

import contextlib
import json
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
        await ws.send_text(_native.encode_frame("_REQUEST_USER_SESSION", omit_data=True))
        msg = json.loads(await ws.receive_text())
        if not isinstance(msg, dict) or msg.get("type") != "_USER_SESSION":
            raise ValueError("client sent the wrong message type")
        data = msg.get("data")
        if not isinstance(data, dict):
            raise TypeError("client sent no user and session")
        user, session = data.get("user"), data.get("session")
        if not user or not session or not isinstance(user, str) or not isinstance(session, str):
            raise ValueError("client sent an invalid user or session")
        return user, session
    except Exception:
        with contextlib.suppress(Exception):
            await ws.close()
        return None, None
