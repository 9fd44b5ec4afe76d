"""The embedded server: listening, TCP lines, HTTP, close and re-serve, errors."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import tether
from conftest import EPHEMERAL, http_get, split, tcp_exchange


def test_version() -> None:
    assert tether.__version__ == tether._native.version()
    assert tether.__version__.count(".") == 2


async def test_tcp_and_http(server: tether.Server) -> None:
    assert split(server.http_addr)[1] != 0
    assert split(server.tcp_addr)[1] != 0
    assert server.running
    assert await tcp_exchange(server.tcp_addr, ["HELLO main:alice"], 1) == ["OK HELLO main:alice"]
    status, body = await http_get(server.http_addr, "/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}


async def test_close_tells_clients_then_reserve() -> None:
    srv = tether.serve(**EPHEMERAL, shutdown_grace=1)
    reader, writer = await asyncio.open_connection(*split(srv.tcp_addr))
    writer.write(b"HELLO main:bob\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 5) == b"OK HELLO main:bob\n"
    await srv.aclose()
    assert not srv.running
    assert await asyncio.wait_for(reader.readline(), 5) == b"BYE server shutting down\n"
    assert await asyncio.wait_for(reader.readline(), 5) == b""
    writer.close()
    await srv.aclose()  # idempotent

    # A new server in the same process, on the same runtime.
    async with tether.serve(**EPHEMERAL) as again:
        assert await tcp_exchange(again.tcp_addr, ["HELLO main:bob"], 1) == ["OK HELLO main:bob"]
    assert not again.running


def test_sync_context_manager_and_close_all() -> None:
    with tether.serve(**EPHEMERAL) as srv:
        assert srv.running
        with socket.create_connection(split(srv.tcp_addr), timeout=5) as s:
            s.sendall(b"HELLO main:carol\n")
            assert s.makefile().readline() == "OK HELLO main:carol\n"
    assert not srv.running

    # tether.close() stops what is still running and drops the runtime; serve() starts a new one.
    left = tether.serve(**EPHEMERAL)
    tether.close()
    assert not left.running
    assert not tether._native.runtime_alive()
    with tether.serve(**EPHEMERAL) as srv2:
        assert tether._native.runtime_alive()
        assert srv2.running


async def test_awaiting_a_native_future() -> None:
    await tether._native.sleep(0.01)
    await asyncio.gather(*(tether._native.sleep(0.001) for _ in range(200)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"http": "nonsense"}, "invalid http address"),
        ({"tcp": "127.0.0.1"}, "invalid tcp address"),
        ({"max_clients": 0}, "max_clients must be at least 1"),
        ({"max_rooms": -3}, "max_rooms must be at least 1"),
        ({"max_clients": "ten"}, "max_clients must be an integer"),
        ({"max_clientz": 7}, "unknown option 'max_clientz'"),
        ({"shutdown_grace": -1}, "shutdown_grace"),
        ({"tls_cert": "cert.pem"}, "tls_cert and tls_key must be given together"),
        ({"config": "/nonexistent/tether.toml"}, "cannot read config file"),
        ({"http": 8700}, "http must be an 'IP:PORT' string"),
        ({"allowed_origins": 3}, "allowed_origins must be a list of strings"),
        ({"allowed_origins": ["https://app.example.com/x"]}, "no path"),
        ({"allowed_hosts": "myhost:8700"}, "without port"),
        ({"bus": 6379}, "bus must be a redis://HOST:PORT/DB string"),
        ({"data": 3}, "data must be a path"),
    ],
)
def test_bad_options_raise_config_error(options: dict[str, object], message: str) -> None:
    opts = {**EPHEMERAL, **options}
    with pytest.raises(tether.ConfigError, match=message):
        tether.serve(**opts)  # type: ignore[arg-type]


def test_a_bad_bus_url_is_refused_without_echoing_it() -> None:
    # The URL may carry a password: the error names the expected form, never the value.
    with pytest.raises(tether.ConfigError, match="redis://") as err:
        tether.serve(**EPHEMERAL, bus="http://user:s3cret@example.com/0")
    assert "s3cret" not in str(err.value)


async def test_data_keeps_rooms_and_history_across_a_restart(tmp_path) -> None:
    # A message sent before an orderly close is recovered after a restart on the same directory.
    async with tether.serve(**EPHEMERAL, data=tmp_path) as srv:
        replies = await tcp_exchange(
            srv.tcp_addr,
            ["HELLO main:alice OFFSETS", "SEND main:alice kept across restarts"],
            2,
        )
    assert replies[0].startswith("OK HELLO main:alice AT 0 "), replies
    ok, send, room, _n, offset, epoch = replies[1].split()
    assert (ok, send, room, offset) == ("OK", "SEND", "main", "1"), replies
    async with tether.serve(**EPHEMERAL, data=tmp_path) as again:
        status, body = await http_get(again.http_addr, "/chatrooms/main/history")
        assert status == 200, body
        history = json.loads(body)
        assert (history["offset"], history["epoch"]) == (1, epoch), history
        assert [(m["offset"], m["from"], m["text"]) for m in history["messages"]] == [
            (1, "alice", "kept across restarts")
        ]
    assert (tmp_path / "tether.db").exists()


def test_error_hierarchy() -> None:
    assert issubclass(tether.ConfigError, tether.TetherError)
    assert issubclass(tether.ServerError, tether.TetherError)
    assert issubclass(tether.TetherError, Exception)


def test_port_in_use_raises_server_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(tether.ServerError, match=f"cannot listen for TCP on 127.0.0.1:{port}"):
            tether.serve(http="127.0.0.1:0", tcp=f"127.0.0.1:{port}", relay="off")
        with pytest.raises(tether.ServerError, match="cannot listen for HTTP"):
            tether.serve(http=f"127.0.0.1:{port}", tcp="127.0.0.1:0", relay="off")


def test_config_file(tmp_path: object) -> None:
    from pathlib import Path

    cfg = Path(str(tmp_path)) / "tether.toml"
    cfg.write_text('http = "127.0.0.1:0"\ntcp = "127.0.0.1:0"\nmax_message_length = 5\n')
    with tether.serve(config=cfg, relay="off") as srv:
        lines = asyncio.run(
            tcp_exchange(srv.tcp_addr, ["HELLO main:dave", "SEND main:dave toolong"], 2)
        )
        assert lines[0] == "OK HELLO main:dave"
        assert "TOO_LONG" in lines[1], lines


def test_relay_option() -> None:
    with tether.serve(**EPHEMERAL) as srv:
        assert srv.relay_addr is not None and srv.relay_addr != "127.0.0.1:0"
        assert srv.relay_addr.startswith("127.0.0.1:")
    with tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay=False) as srv:
        assert srv.relay_addr is None
    with pytest.raises(tether.ConfigError, match="invalid relay address"):
        tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay="nowhere")
