"""An HTTP server that answers every request at once, in its own process.

Stands in for Rasa (P1, P4) and for an RPA vendor (P3) when the figure to
measure is rasa-rpa's own cost. It records the order of the status intents
it receives per conversation and reports it at ``GET /_calls``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict

_calls: dict[str, list[object]] = defaultdict(list)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            _method, path, _ = request_line.split(" ", 2)
            length = 0
            for line in header_lines:
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            answer = b"{}"
            if path.startswith("/_calls"):
                answer = json.dumps(_calls).encode()
            elif path.startswith("/conversations/") and body:
                conversation = path.split("/")[2]
                payload = json.loads(body)
                if isinstance(payload, dict):
                    _calls[conversation].append(
                        payload.get("entities", {}).get("rpa_progress")
                    )
                else:
                    _calls[conversation].append(payload[0].get("text"))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(answer)).encode() + b"\r\n\r\n" + answer
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(port: int) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
