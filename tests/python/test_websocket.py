"""Python WebSocket endpoints served over the Rust WebSocket path: `server.websocket(path,
handler)` with a Starlette-like `tether.WebSocket`, driven by the `websockets` client."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import tether
from conftest import EPHEMERAL, http_get
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

TIMEOUT = 5


def url(server: tether.Server, path: str) -> str:
    return f"ws://{server.http_addr}{path}"


async def close_of(ws: ClientConnection) -> tuple[int | None, str]:
    """Reads until the server closes; returns the close code and reason it sent."""
    with pytest.raises(ConnectionClosed) as ei:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    rcvd = ei.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")


async def echo(ws: tether.WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if "text" in message:
            await ws.send_text(message["text"])
        else:
            await ws.send_bytes(message["bytes"])


def recorder() -> tuple[
    list[dict[str, Any]], asyncio.Future[None], Callable[[tether.WebSocket], Awaitable[None]]
]:
    """A handler that records every ASGI message until the disconnect, then resolves `done`."""
    messages: list[dict[str, Any]] = []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def handler(ws: tether.WebSocket) -> None:
        try:
            while True:
                message = await ws.receive()
                messages.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                if message["type"] == "websocket.receive":
                    await ws.send_text("ack")
        finally:
            if not done.done():
                done.set_result(None)

    return messages, done, handler


# -- frames ----------------------------------------------------------------------------------


async def test_echo_text_and_binary(server: tether.Server) -> None:
    server.websocket("/ws/echo", echo)
    async with connect(url(server, "/ws/echo")) as ws:
        await ws.send("héllo ✓")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "héllo ✓"
        await ws.send(b"\x00\x01\xff")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"\x00\x01\xff"
        await ws.send("")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == ""


async def test_json_helpers(server: tether.Server) -> None:
    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        data = await ws.receive_json()
        await ws.send_json({"got": data, "ü": [1, 2]})
        data = await ws.receive_json(mode="binary")
        await ws.send_json({"bin": data}, mode="binary")
        async for item in ws.iter_json():
            await ws.send_json(item)

    server.websocket("/ws/json", handler)
    async with connect(url(server, "/ws/json")) as ws:
        await ws.send('{"a": 1}')
        # Starlette's encoding: compact, not ASCII-escaped.
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == '{"got":{"a":1},"ü":[1,2]}'
        await ws.send(b'{"b": true}')
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b'{"bin":{"b":true}}'
        await ws.send("[3]")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "[3]"


async def test_receive_returns_asgi_messages(server: tether.Server) -> None:
    messages, done, handler = recorder()
    server.websocket("/ws/asgi", handler)
    async with connect(url(server, "/ws/asgi")) as ws:
        await ws.send("text")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ack"
        await ws.send(b"bytes")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ack"
        await ws.close(4001, "done here")
    await asyncio.wait_for(done, TIMEOUT)
    assert messages == [
        {"type": "websocket.connect"},  # before accept(), as Starlette
        {"type": "websocket.receive", "text": "text"},
        {"type": "websocket.receive", "bytes": b"bytes"},
        {"type": "websocket.disconnect", "code": 4001, "reason": "done here"},
    ]


async def test_iterators_and_receiving_after_disconnect(server: tether.Server) -> None:
    got: asyncio.Queue[object] = asyncio.Queue()

    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        async for text in ws.iter_text():
            got.put_nowait(text)
        assert ws.client_state == tether.WebSocketState.DISCONNECTED
        try:
            await ws.receive_text()
        except tether.WebSocketDisconnect as e:
            got.put_nowait(("disconnect", e.code, e.reason))

    server.websocket("/ws/iter", handler)
    async with connect(url(server, "/ws/iter")) as ws:
        await ws.send("a")
        await ws.send("b")
    assert [await asyncio.wait_for(got.get(), TIMEOUT) for _ in range(3)] == [
        "a",
        "b",
        ("disconnect", 1000, ""),
    ]


async def test_connection_details(server: tether.Server) -> None:
    seen: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handler(ws: tether.WebSocket) -> None:
        assert ws.application_state == tether.WebSocketState.CONNECTING
        await ws.accept(subprotocol=None)
        assert ws.application_state == tether.WebSocketState.CONNECTED
        seen.set_result(
            {
                "path": ws.path,
                "url": str(ws.url),
                "url.path": ws.url.path,
                "query": ws.query_params,
                "header": ws.headers["X-Custom"],
                "header_lower": ws.headers.get("x-custom"),
                "cookies": ws.cookies,
                "client": ws.client,
                "scope_type": ws.scope["type"],
            }
        )
        await ws.close(4000, "bye")
        assert ws.application_state == tether.WebSocketState.DISCONNECTED

    server.websocket("/ws/info", handler)
    target = url(server, "/ws/info") + "?room=a&n=2"
    headers = {"X-Custom": "yes", "Cookie": "sid=abc"}
    async with connect(target, additional_headers=headers) as ws:
        assert await close_of(ws) == (4000, "bye")
    info = await asyncio.wait_for(seen, TIMEOUT)
    host, port = info["client"]
    assert host == "127.0.0.1" and isinstance(port, int) and port > 0
    assert info["client"].host == "127.0.0.1"
    assert info == {
        "path": "/ws/info",
        "url": f"ws://{server.http_addr}/ws/info?room=a&n=2",
        "url.path": "/ws/info",
        "query": {"room": "a", "n": "2"},
        "header": "yes",
        "header_lower": "yes",
        "cookies": {"sid": "abc"},
        "client": info["client"],
        "scope_type": "websocket",
    }


# -- how connections end ---------------------------------------------------------------------


async def test_handler_return_closes_1000(server: tether.Server) -> None:
    async def handler(ws: tether.WebSocket) -> None:
        await ws.send_text("one and done")

    server.websocket("/ws/once", handler)
    async with connect(url(server, "/ws/once")) as ws:
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "one and done"
        assert await close_of(ws) == (1000, "")


async def test_handler_exception_is_logged_and_closes_1011(
    server: tether.Server, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()
        raise ValueError("boom")

    server.websocket("/ws/boom", handler)
    with caplog.at_level(logging.ERROR, logger="tether.websocket"):
        async with connect(url(server, "/ws/boom")) as ws:
            await ws.send("go")
            code, _ = await close_of(ws)
    assert code == 1011
    records = [r for r in caplog.records if r.name == "tether.websocket"]
    assert records, caplog.text
    assert "/ws/boom" in records[0].getMessage()
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], ValueError)


async def test_peer_close_code_reaches_the_handler(server: tether.Server) -> None:
    messages, done, handler = recorder()
    server.websocket("/ws/peer", handler)
    async with connect(url(server, "/ws/peer")) as ws:
        await ws.close(4321, "client leaving")
    await asyncio.wait_for(done, TIMEOUT)
    assert messages[-1] == {
        "type": "websocket.disconnect",
        "code": 4321,
        "reason": "client leaving",
    }


async def test_server_stop_sends_1001_and_disconnects_the_handler() -> None:
    server = tether.serve(**EPHEMERAL, shutdown_grace=2)
    try:
        messages, done, handler = recorder()
        server.websocket("/ws/stop", handler)
        async with connect(url(server, "/ws/stop")) as ws:
            await ws.send("hi")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ack"
            closing = asyncio.ensure_future(server.aclose())
            code, reason = await close_of(ws)
            await asyncio.wait_for(closing, TIMEOUT)
        assert (code, reason) == (1001, "server shutting down")
        await asyncio.wait_for(done, TIMEOUT)
        assert messages[-1] == {
            "type": "websocket.disconnect",
            "code": 1001,
            "reason": "server shutting down",
        }
    finally:
        await server.aclose()


async def test_send_after_peer_left_raises_disconnect(server: tether.Server) -> None:
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        msg = await ws.receive()
        assert msg["type"] == "websocket.disconnect"
        try:
            await ws.send_text("too late")
        except Exception as e:
            outcome.set_result(e)
        else:
            outcome.set_result(None)

    server.websocket("/ws/late", handler)
    async with connect(url(server, "/ws/late")):
        pass
    e = await asyncio.wait_for(outcome, TIMEOUT)
    assert isinstance(e, tether.WebSocketDisconnect) and e.code == 1000


# -- limits ----------------------------------------------------------------------------------


async def test_oversized_frame_closes_1009_and_others_go_on(server: tether.Server) -> None:
    messages, done, handler = recorder()
    server.websocket("/ws/big", handler)
    server.websocket("/ws/echo", echo)
    async with connect(url(server, "/ws/big"), max_size=None) as ws:
        try:
            await ws.send(b"x" * (2 << 20))
        except ConnectionClosed as e:
            # The server closes once it has read the header and drops the connection after its
            # close frame: a client still writing the rest may see the close while sending.
            rcvd = e.rcvd
            code, reason = (rcvd.code, rcvd.reason) if rcvd is not None else (None, "")
        else:
            code, reason = await close_of(ws)
    assert code == 1009
    assert "exceeds" in reason
    await asyncio.wait_for(done, TIMEOUT)
    assert messages[-1]["type"] == "websocket.disconnect"
    assert messages[-1]["code"] == 1009
    # 1 MiB exactly is accepted; other connections are served.
    async with connect(url(server, "/ws/echo"), max_size=None) as ws:
        await ws.send(b"y" * (1 << 20))
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"y" * (1 << 20)


async def test_fifty_concurrent_connections(server: tether.Server) -> None:
    server.websocket("/ws/echo", echo)

    async def client(i: int) -> list[str | bytes]:
        async with connect(url(server, "/ws/echo")) as ws:
            out: list[str | bytes] = []
            for j in range(10):
                await ws.send(f"{i}:{j}")
                out.append(await asyncio.wait_for(ws.recv(), TIMEOUT))
            return out

    results = await asyncio.gather(*(client(i) for i in range(50)))
    assert results == [[f"{i}:{j}" for j in range(10)] for i in range(50)]


async def test_many_queued_frames_arrive_in_order(server: tether.Server) -> None:
    async def handler(ws: tether.WebSocket) -> None:
        for i in range(2000):  # more than the outgoing queue holds: send waits for room
            await ws.send_text(str(i))
        await ws.close()

    server.websocket("/ws/flood", handler)
    async with connect(url(server, "/ws/flood")) as ws:
        got = [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in range(2000)]
        assert got == [str(i) for i in range(2000)]
        assert await close_of(ws) == (1000, "")


async def test_a_slow_reader_loses_nothing(server: tether.Server) -> None:
    """More frames than the incoming queue holds wait in the socket, then arrive in order."""
    go = asyncio.Event()

    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        await go.wait()
        got = [await ws.receive_text() for _ in range(1000)]
        await ws.send_json(got == [str(i) for i in range(1000)])

    server.websocket("/ws/slow", handler)
    async with connect(url(server, "/ws/slow")) as ws:
        for i in range(1000):
            await ws.send(str(i))
        go.set()
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "true"


# -- who may connect (docs/protocol/common.md) -----------------------------------------------


def counting_echo() -> tuple[list[str], Callable[[tether.WebSocket], Awaitable[None]]]:
    """An echo handler that records the `Origin` of every connection it ran for."""
    seen: list[str] = []

    async def handler(ws: tether.WebSocket) -> None:
        seen.append(ws.headers.get("origin") or "-")
        await echo(ws)

    return seen, handler


async def refused_status(uri: str, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as ei:
        async with connect(uri, open_timeout=TIMEOUT, **kwargs):
            pass
    response = ei.value.response
    return response.status_code, response.body.decode() if response.body else ""


async def roundtrip(uri: str, **kwargs: Any) -> None:
    async with connect(uri, open_timeout=TIMEOUT, **kwargs) as ws:
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "hi"


async def test_a_foreign_origin_is_refused_before_the_handler(server: tether.Server) -> None:
    seen, handler = counting_echo()
    server.websocket("/ws/echo", handler)
    uri = url(server, "/ws/echo")
    status, body = await refused_status(uri, origin="http://evil.example")
    assert status == 403
    assert body == "origin http://evil.example is not allowed (see --allowed-origins)\n"
    assert (await refused_status(uri, origin="https://localhost.evil.example"))[0] == 403
    # No Origin (this client, like any non-browser), the same origin, a page on another port of
    # this machine: admitted, and only these reached the handler.
    port = int(server.http_addr.rsplit(":", 1)[1])
    await roundtrip(uri)
    await roundtrip(uri, origin=f"http://{server.http_addr}")
    await roundtrip(uri, origin=f"http://localhost:{port + 1}")
    assert seen == ["-", f"http://{server.http_addr}", f"http://localhost:{port + 1}"]
    status, metrics = await http_get(server.http_addr, "/metrics")
    assert status == 200
    line = next(
        ln
        for ln in metrics.splitlines()
        if ln.startswith("tether_refused_total{")
        and 'reason="origin"' in ln
        and 'listener="http"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 2


async def test_a_rebinding_host_is_refused(server: tether.Server) -> None:
    server.websocket("/ws/echo", echo)
    _, port = server.http_addr.rsplit(":", 1)
    # Connect to the server, but name evil.example in Host, as a page after DNS rebinding would.
    status, body = await refused_status(
        f"ws://evil.example:{port}/ws/echo", host="127.0.0.1", port=int(port)
    )
    assert status == 403
    assert "host evil.example is not allowed" in body
    await roundtrip(f"ws://localhost:{port}/ws/echo", host="127.0.0.1", port=int(port))


async def test_serve_allowed_origins_and_hosts() -> None:
    async with tether.serve(
        **EPHEMERAL,
        shutdown_grace=1,
        allowed_origins=["https://app.example.com", "http://*.example.org:*"],
        allowed_hosts="evil.example, *.lan",
    ) as server:
        seen, handler = counting_echo()
        server.websocket("/ws/echo", handler)
        uri = url(server, "/ws/echo")
        await roundtrip(uri, origin="https://app.example.com")
        await roundtrip(uri, origin="http://a.example.org:8080")
        await roundtrip(uri, origin=f"http://{server.http_addr}")
        # The list replaces the loopback defaults.
        assert (await refused_status(uri, origin="http://localhost:3000"))[0] == 403
        assert (await refused_status(uri, origin="http://app.example.com"))[0] == 403
        _, port = server.http_addr.rsplit(":", 1)
        await roundtrip(f"ws://pi.lan:{port}/ws/echo", host="127.0.0.1", port=int(port))
        assert len(seen) == 4
    async with tether.serve(**EPHEMERAL, shutdown_grace=1, allowed_origins="*") as server:
        server.websocket("/ws/echo", echo)
        await roundtrip(url(server, "/ws/echo"), origin="http://evil.example")


# -- routing and registration ----------------------------------------------------------------


async def test_unregistered_path_is_404(server: tether.Server) -> None:
    status, _ = await http_get(server.http_addr, "/ws/nobody")
    assert status == 404
    with pytest.raises(InvalidStatus) as ei:
        async with connect(url(server, "/ws/nobody")):
            pass
    assert ei.value.response.status_code == 404


async def test_plain_get_to_a_websocket_path_is_426(server: tether.Server) -> None:
    server.websocket("/ws/echo", echo)
    status, body = await http_get(server.http_addr, "/ws/echo")
    assert status == 426
    assert "WebSocket" in body and "/ws/echo" in body
    # Built-in pages still work next to it.
    assert (await http_get(server.http_addr, "/health"))[0] == 200


async def test_remove_websocket(server: tether.Server) -> None:
    server.websocket("/ws/echo", echo)
    async with connect(url(server, "/ws/echo")) as open_ws:
        assert server.remove_websocket("/ws/echo") is True
        assert server.remove_websocket("/ws/echo") is False
        # The open connection goes on; new ones get 404.
        await open_ws.send("still here")
        assert await asyncio.wait_for(open_ws.recv(), TIMEOUT) == "still here"
        with pytest.raises(InvalidStatus) as ei:
            async with connect(url(server, "/ws/echo")):
                pass
        assert ei.value.response.status_code == 404
    # The path can be registered again.
    server.websocket("/ws/echo", echo)
    async with connect(url(server, "/ws/echo")) as ws:
        await ws.send("back")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "back"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("ws/x", "must start with '/'"),
        ("", "must start with '/'"),
        ("/ws/x?y=1", "without query"),
        ("/chat", "built-in"),
        ("/", "built-in"),
        ("/ws/rooms", "built-in"),
        ("/ws/sync/demo", "built-in"),
        ("/demo/sync", "built-in"),
        ("/health", "built-in"),
        ("/chatrooms/r1", "built-in"),
        ("/tether-client.js", "built-in"),
    ],
)
async def test_bad_paths_are_config_errors(server: tether.Server, path: str, words: str) -> None:
    with pytest.raises(tether.ConfigError, match=words.replace("?", r"\?")):
        server.websocket(path, echo)


async def test_duplicate_path_is_a_config_error(server: tether.Server) -> None:
    server.websocket("/ws/dup", echo)
    with pytest.raises(tether.ConfigError, match="already registered"):
        server.websocket("/ws/dup", echo)


async def test_non_callable_handler_is_a_config_error(server: tether.Server) -> None:
    with pytest.raises(tether.ConfigError, match="handler"):
        server.websocket("/ws/x", "not a function")  # type: ignore[arg-type]


def test_no_event_loop_is_a_config_error() -> None:
    with tether.serve(**EPHEMERAL) as server:
        with pytest.raises(tether.ConfigError, match="event loop"):
            server.websocket("/ws/x", echo)
        # An explicit loop works without a running one.
        loop = asyncio.new_event_loop()
        try:
            server.websocket("/ws/x", echo, loop=loop)
        finally:
            loop.close()
        with pytest.raises(tether.ConfigError, match="closed"):
            server.websocket("/ws/y", echo, loop=loop)


async def test_closed_loop_refuses_connections_with_1011(server: tether.Server) -> None:
    other = asyncio.new_event_loop()
    server.websocket("/ws/gone", echo, loop=other)
    other.close()
    async with connect(url(server, "/ws/gone")) as ws:
        code, reason = await close_of(ws)
    assert code == 1011
    assert "closed" in reason
    # The server is fine.
    server.websocket("/ws/echo", echo)
    async with connect(url(server, "/ws/echo")) as ws:
        await ws.send("ok")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ok"


def test_disconnect_is_starlettes() -> None:
    import starlette.websockets as starlette_websockets

    e = tether.WebSocketDisconnect(1001, "away")
    assert isinstance(e, starlette_websockets.WebSocketDisconnect)
    assert (e.code, e.reason) == (1001, "away")
    assert tether.WebSocketDisconnect().reason == ""
    assert [s.value for s in tether.WebSocketState] == [0, 1, 2, 3]
    assert [s.name for s in tether.WebSocketState] == [
        s.name for s in starlette_websockets.WebSocketState
    ]


async def test_starlette_style_handler(server: tether.Server) -> None:
    """A handler written for Starlette runs as it is, its `except` clause included."""
    from starlette.websockets import WebSocket as StarletteWebSocket
    from starlette.websockets import WebSocketDisconnect as StarletteDisconnect

    left: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def endpoint(websocket: StarletteWebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_text()
                await websocket.send_text(f"Message text was: {data}")
        except StarletteDisconnect as e:
            left.set_result(e.code)

    server.websocket("/ws/starlette", endpoint)  # type: ignore[arg-type]
    async with connect(url(server, "/ws/starlette")) as ws:
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "Message text was: hi"
        await ws.close(1000)
    assert await asyncio.wait_for(left, TIMEOUT) == 1000


# -- exit lifecycle --------------------------------------------------------------------------

# A process that serves a Python endpoint, leaves a connection open in both directions (a
# handler blocked in receive(), a client that never closes) and exits must still exit 0.
EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import tether
    from websockets.asyncio.client import connect

    async def handler(ws):
        await ws.accept()
        while True:
            text = await ws.receive_text()
            await ws.send_text(text)

    async def main():
        server = tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="off", shutdown_grace=1)
        server.websocket("/ws/exit", handler)
        ws = await connect(f"ws://{server.http_addr}/ws/exit")
        await ws.send("ping")
        assert await ws.recv() == "ping"
        await ws.send("unanswered")
        return ws  # neither the client nor the server is closed

    asyncio.run(main())
    """
)


def test_exit_with_open_websocket_exits_0() -> None:
    for _ in range(10):
        r = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 0, r.stderr[-3000:]


# -- close handshake, protocol limits, byte budgets and connection caps (issue 12) -------------


async def test_client_close_is_answered_at_once(server: tether.Server) -> None:
    messages, done, handler = recorder()
    server.websocket("/ws/bye", handler)
    async with connect(url(server, "/ws/bye")) as ws:
        await ws.send("hi")
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "ack"
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        # Completes once the server answered the close frame and dropped the connection.
        await ws.close(1000, "bye")
        took = loop.time() - t0
        assert ws.protocol.close_rcvd is not None, "the server answered the close frame"
        assert (ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason) == (1000, "bye")
    assert took < 0.3, f"the close handshake took {took:.3f}s"
    await asyncio.wait_for(done, TIMEOUT)
    assert messages[-1] == {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}


async def test_max_message_bytes_is_per_endpoint(server: tether.Server) -> None:
    server.websocket("/ws/small", echo, max_message_bytes=1000)
    server.websocket("/ws/large", echo, max_message_bytes=3 << 20)
    async with connect(url(server, "/ws/small")) as ws:
        await ws.send("x" * 1000)
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "x" * 1000
        await ws.send("x" * 1001)
        code, reason = await close_of(ws)
    assert (code, reason) == (1009, "message exceeds 1000 bytes")
    async with connect(url(server, "/ws/large"), max_size=None) as ws:
        await ws.send(b"y" * (3 << 20))
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == b"y" * (3 << 20)


async def test_a_handler_that_does_not_read_gets_its_peer_closed_1008(
    server: tether.Server,
) -> None:
    release = asyncio.Event()
    finished = asyncio.Event()
    got: list[dict[str, Any]] = []

    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        await release.wait()  # reads nothing until the client was closed
        while True:
            message = await ws.receive()
            got.append(message)
            if message["type"] == "websocket.disconnect":
                finished.set()
                return

    # 64 KiB of frames may wait for the handler; each 10,000-byte frame counts 10,064.
    server.websocket("/ws/deaf", handler, max_message_bytes=10_000, incoming_bytes=64 << 10)
    async with connect(url(server, "/ws/deaf")) as ws:
        with pytest.raises(ConnectionClosed) as ei:
            for _ in range(100):  # 1 MB: far more than the budget
                await ws.send("z" * 10_000)
            await asyncio.wait_for(ws.recv(), TIMEOUT)
        rcvd = ei.value.rcvd
    assert rcvd is not None
    assert rcvd.code == 1008
    assert "not reading" in rcvd.reason
    release.set()
    await asyncio.wait_for(finished.wait(), TIMEOUT)
    # What fitted the budget (6 frames) is still delivered, then the disconnect.
    assert [m.get("text") for m in got[:-1]] == ["z" * 10_000] * 6
    assert got[-1]["type"] == "websocket.disconnect"
    assert got[-1]["code"] == 1008


async def test_a_slow_client_makes_send_wait_and_the_queue_stays_within_its_budget(
    server: tether.Server,
) -> None:
    frame = "s" * (64 << 10)
    total = 512  # 32 MiB: more than the socket buffers and the budget hold
    sent = 0
    done = asyncio.Event()

    async def handler(ws: tether.WebSocket) -> None:
        nonlocal sent
        await ws.accept()
        for _ in range(total):
            await ws.send_text(frame)
            sent += 1
        done.set()

    server.websocket("/ws/fire", handler, outgoing_bytes=256 << 10)
    # max_queue=1: the client stops reading from its socket as soon as one frame waits.
    async with connect(url(server, "/ws/fire"), max_queue=1, max_size=None) as ws:
        # The handler runs until the socket buffers and its 256 KiB budget are full...
        stable, last = 0, -1
        for _ in range(200):
            await asyncio.sleep(0.05)
            stable = stable + 1 if sent == last else 0
            last = sent
            if sent > 0 and stable >= 10:
                break
        assert 0 < sent < total and not done.is_set(), f"sent {sent} of {total} frames"
        # ...which is bounded: kernel buffers (a few MiB on loopback) plus the budget.
        assert sent * len(frame) < 16 << 20, f"{sent} frames went out to a client that reads none"
        # Once the client reads, everything arrives and the handler finishes.
        for _ in range(total):
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == frame
        await asyncio.wait_for(done.wait(), TIMEOUT)


async def test_a_frame_bigger_than_the_outgoing_budget_is_an_error(server: tether.Server) -> None:
    outcome: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def handler(ws: tether.WebSocket) -> None:
        await ws.accept()
        try:
            await ws.send_text("x" * 2000)
        except ValueError as e:
            outcome.set_result(e)
        await ws.send_text("still open")

    server.websocket("/ws/tight", handler, outgoing_bytes=1024)
    async with connect(url(server, "/ws/tight")) as ws:
        assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "still open"
    error = await asyncio.wait_for(outcome, TIMEOUT)
    assert isinstance(error, ValueError)
    assert "outgoing" in str(error) and "1024" in str(error)


async def test_max_connections_refuses_with_1013_before_the_handler_runs(
    server: tether.Server,
) -> None:
    started: list[str] = []

    async def handler(ws: tether.WebSocket) -> None:
        started.append(ws.query_params.get("n", "?"))
        async for text in ws.iter_text():
            await ws.send_text(text)

    server.websocket("/ws/two", handler, max_connections=2)
    async with connect(url(server, "/ws/two?n=1")) as a, connect(url(server, "/ws/two?n=2")) as b:
        for ws in (a, b):
            await ws.send("up")
            assert await asyncio.wait_for(ws.recv(), TIMEOUT) == "up"
        async with connect(url(server, "/ws/two?n=3")) as c:
            assert await close_of(c) == (1013, "too many connections: this endpoint takes 2")
        await a.close()
    # A slot is free again: the next connection is served. Its handler starts after the refused
    # one would have (the loop runs callbacks in order), and the refused one never ran.
    async with connect(url(server, "/ws/two?n=4")) as d:
        await d.send("up")
        assert await asyncio.wait_for(d.recv(), TIMEOUT) == "up"
    assert started == ["1", "2", "4"]


async def test_the_server_wide_cap_covers_every_endpoint() -> None:
    async with tether.serve(**EPHEMERAL, shutdown_grace=1, websocket_max_connections=1) as server:
        server.websocket("/ws/a", echo)
        server.websocket("/ws/b", echo)
        async with connect(url(server, "/ws/a")) as a:
            await a.send("a")
            assert await asyncio.wait_for(a.recv(), TIMEOUT) == "a"
            async with connect(url(server, "/ws/b")) as b:
                code, reason = await close_of(b)
            assert code == 1013
            assert "1" in reason
        async with connect(url(server, "/ws/b")) as b:
            await b.send("b")
            assert await asyncio.wait_for(b.recv(), TIMEOUT) == "b"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_message_bytes": 0}, "max_message_bytes must be at least 1"),
        ({"max_connections": -1}, "max_connections must be at least 1"),
        ({"incoming_bytes": 1000, "max_message_bytes": 4000}, "must hold one message"),
        ({"outgoing_bytes": 10}, "outgoing_bytes must be between"),
        ({"max_message_bytes": "big"}, "must be an integer"),
    ],
)
async def test_bad_limits_are_config_errors(
    server: tether.Server, kwargs: dict[str, Any], words: str
) -> None:
    with pytest.raises(tether.ConfigError, match=words):
        server.websocket("/ws/limits", echo, **kwargs)


def test_bad_server_wide_limits_are_config_errors() -> None:
    with pytest.raises(tether.ConfigError, match="websocket_incoming_bytes must be between"):
        tether.serve(**EPHEMERAL, websocket_incoming_bytes=8)
    with pytest.raises(tether.ConfigError, match="websocket_max_connections must be an integer"):
        tether.serve(**EPHEMERAL, websocket_max_connections="many")
