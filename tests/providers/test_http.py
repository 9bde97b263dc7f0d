"""What HTTP-speaking providers share: URLs fit to show, vendor errors in words."""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest

from devtools.stack import free_port
from rasa_rpa.errors import ProviderError, ProviderUnavailable
from rasa_rpa.providers.http import async_client, safe_url, send


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:pa55@vendor.example/api?sig=s3cret#frag",
            "https://vendor.example/api",
        ),
        (
            "http://vendor.example:8443/odata/Jobs",
            "http://vendor.example:8443/odata/Jobs",
        ),
        ("https://token@vendor.example:443/x?a=1", "https://vendor.example:443/x"),
        # A relative SQLite file keeps its three slashes, not "sqlite:/x.db".
        ("sqlite:///.rasa-rpa/jobs.db?synchronous=FULL", "sqlite:///.rasa-rpa/jobs.db"),
        ("sqlite:////srv/jobs.db", "sqlite:////srv/jobs.db"),
    ],
)
def test_safe_url_drops_what_may_carry_secrets(url, shown):
    assert safe_url(url) == shown


def answering(status: int, body: bytes = b"", content_type: str = "text/plain"):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, content=body, headers={"content-type": content_type}
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_an_expected_status_is_returned():
    async with answering(201, b"{}", "application/json") as client:
        response = await send(client, "p", "POST", "https://v/x", what="starting")
    assert response.status_code == 201


async def test_a_4xx_is_a_provider_error_in_the_vendors_words():
    body = b'{"message": "Process not found", "errorCode": 1002}'
    async with answering(404, body, "application/json") as client:
        with pytest.raises(ProviderError) as caught:
            await send(client, "p", "POST", "https://v/x?key=k", what="starting")
    error = caught.value
    assert not isinstance(error, ProviderUnavailable)  # retrying will not help
    assert error.provider == "p"
    assert "starting: https://v/x answered 404: Process not found" in str(error)
    assert "key=k" not in str(error)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_busy_or_broken_vendors_are_unavailable(status):
    async with answering(status, b"busy") as client:
        with pytest.raises(ProviderUnavailable, match=f"answered {status}: busy"):
            await send(client, "p", "GET", "https://v/x", what="polling")


async def test_a_timeout_is_unavailable():
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(ProviderUnavailable, match="https://v/x timed out"):
            await send(client, "p", "GET", "https://u:pw@v/x", what="polling")


async def test_an_unreachable_vendor_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}/x"  # nothing listens there
    async with async_client(timeout=5) as client:
        with pytest.raises(ProviderUnavailable, match=r"cannot reach .*ConnectError"):
            await send(client, "p", "GET", url, what="polling")


async def test_a_request_that_cannot_be_sent_is_a_provider_error():
    async with answering(200) as client:
        with pytest.raises(ProviderError, match="cannot be sent") as caught:
            await send(
                client,
                "p",
                "GET",
                "https://v/x",
                what="polling",
                headers={"X-Name": "caf\u00e9\u2603"},
            )
    assert not isinstance(caught.value, ProviderUnavailable)


async def test_lazy_client_is_made_once_and_closed_with_its_provider() -> None:
    from rasa_rpa.providers.http import LazyClient

    pool = LazyClient(timeout=2)
    first = pool.get()
    assert pool.get() is first  # one pool per provider, not one per call
    await pool.aclose()
    assert first.is_closed
    await pool.aclose()  # closing twice is harmless (shutdown after a failed start)
    again = pool.get()
    assert again is not first and not again.is_closed
    await pool.aclose()


class ImportSpy:
    """A sys.meta_path finder that only writes down what is looked up."""

    def __init__(self) -> None:
        self.looked_up: list[str] = []

    def find_spec(self, name: str, path: object, target: object = None) -> None:
        self.looked_up.append(name)


async def test_a_call_to_a_vendor_searches_no_import_path():
    """httpcore imports sniffio on every request; missing, each failed import
    walked sys.path again (0.3 ms of every start, P3's budget)."""

    async def answer(reader, writer):
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    spy = ImportSpy()
    try:
        async with async_client(timeout=5) as client:
            url = f"http://127.0.0.1:{port}/x"
            await send(client, "p", "GET", url, what="warming up")
            sys.meta_path.insert(0, spy)
            for _ in range(3):
                await send(client, "p", "GET", url, what="calling")
    finally:
        if spy in sys.meta_path:
            sys.meta_path.remove(spy)
        server.close()
    assert spy.looked_up == []
