"""The Python side of the Autobahn run: an embedded tether server with an echo handler at
`/echo` (`server.websocket`), the endpoint under test. Prints `listening http ADDR` once it
serves, then runs until SIGTERM/SIGINT.

Messages up to 16 MiB (the largest of Autobahn's section 9) are echoed, so those cases run in
full instead of closing with 1009; the queues hold one such message each way.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import tether

MAX_MESSAGE = 16 << 20


async def echo(ws: tether.WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await ws.send_text(message["text"])
        else:
            await ws.send_bytes(message["bytes"])


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with tether.serve(http="127.0.0.1:0", tcp="127.0.0.1:0", relay=False) as server:
        server.websocket(
            "/echo",
            echo,
            max_message_bytes=MAX_MESSAGE,
            outgoing_bytes=2 * MAX_MESSAGE,
        )
        print(f"listening http {server.http_addr}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
