"""A small HTTP/1.1 load generator that runs in its own process.

It sends pre-built requests over keep-alive connections with raw asyncio
streams: building and signing every request happens before the clock
starts, so the generator costs little more than the bytes it writes, and
the server, not the client, is what gets measured.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sys
import time
from dataclasses import dataclass

__all__ = ["LoadResult", "read_response", "run_load", "sequential_latencies"]


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    requests: int
    seconds: float
    statuses: dict[int, int]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response off a kept-alive connection: status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _worker(port: int, requests: list[bytes], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for request in requests:
            writer.write(request)
            status, _ = await read_response(reader)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _load(port: int, requests: list[bytes], connections: int) -> LoadResult:
    statuses: dict[int, int] = {}
    shards = [requests[i::connections] for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(_worker(port, shard, statuses) for shard in shards))
    return LoadResult(len(requests), time.perf_counter() - started, statuses)


def _child(port: int, requests: list[bytes], connections: int, queue) -> None:  # type: ignore[no-untyped-def]
    result = asyncio.run(_load(port, requests, connections))
    queue.put((result.requests, result.seconds, result.statuses))


def run_load(port: int, requests: list[bytes], connections: int = 16) -> LoadResult:
    """Send ``requests`` over ``connections`` from a separate process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(port, requests, connections, queue))
    process.start()
    count, seconds, statuses = queue.get(timeout=600)
    process.join(30)
    return LoadResult(count, seconds, statuses)


def build_request(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    """The raw bytes of one keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for key, value in (headers or {}).items():
        lines.append(f"{key}: {value}")
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sequential_latencies(port: int, requests: list[bytes]) -> list[float]:
    """Seconds per request, one at a time on one connection (for percentiles)."""

    async def run() -> list[float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        times = []
        for request in requests:
            started = time.perf_counter()
            writer.write(request)
            await read_response(reader)
            times.append(time.perf_counter() - started)
        writer.close()
        return times

    return asyncio.run(run())


if __name__ == "__main__":  # a quick manual check: python -m benchmarks.loadgen PORT
    target = int(sys.argv[1])
    result = run_load(target, [build_request("GET", "/health")] * 2000)
    print(json.dumps({"per_second": result.per_second, "statuses": result.statuses}))
