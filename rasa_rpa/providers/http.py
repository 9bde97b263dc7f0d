"""What HTTP-speaking providers share: one client shape and error translation.

Tokens are :mod:`rasa_rpa.providers.auth`'s business.

Vendor errors are translated here once, so users read "token endpoint
https://x/oauth/token answered 401: invalid_client", not a stack trace:
4xx becomes :class:`ProviderError` (do not retry), timeouts, connection
errors and 5xx become :class:`ProviderUnavailable` (retry later).
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from rasa_rpa.errors import ProviderError, ProviderUnavailable

__all__ = [
    "LazyClient",
    "async_client",
    "describe_response",
    "safe_url",
    "send",
]

#: Small requests must not wait for the peer's delayed ACK (Nagle's algorithm
#: adds ~40 ms per call when headers and body go out in separate writes).
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def async_client(
    *, timeout: float, base_url: str = "", max_connections: int = 32
) -> httpx.AsyncClient:
    """An httpx client with TCP_NODELAY and pooled keep-alive connections."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    transport = httpx.AsyncHTTPTransport(socket_options=NO_DELAY, limits=limits)
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)


class LazyClient:
    """One provider's connection pool, made on first use and closed with it.

    Made lazily because an httpx client belongs to the event loop that first
    uses it, and providers are built before the server's loop runs.
    """

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        """The pool, made now if this is the first call."""
        if self._client is None:
            self._client = async_client(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the pool if it was made; a later :meth:`get` makes a new one."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: those may carry secrets
    (``?sig=``, ``user:password@``) and errors reach logs and users."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if not parts.netloc and url.startswith(f"{parts.scheme}://"):
        # sqlite:///relative.db: urlunsplit would drop the empty authority
        # and print sqlite:/relative.db, which reads as a path from the root.
        return f"{parts.scheme}://{parts.path}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def describe_response(response: httpx.Response) -> str:
    """The vendor's own words for an error, kept short and secret-free."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:200] if text else response.reason_phrase
    if isinstance(body, dict):
        for key in ("error_description", "message", "error", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:200]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])[:200]
    return str(body)[:200]


async def send(
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    *,
    what: str,
    expect: tuple[int, ...] = (200, 201, 202, 204),
    **kwargs: Any,
) -> httpx.Response:
    """One vendor call; ``what`` names it in errors ("starting the job")."""
    shown = safe_url(url)
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(provider, f"{what}: {shown} timed out") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(
            provider, f"{what}: cannot reach {shown} ({type(exc).__name__})"
        ) from exc
    except (httpx.InvalidURL, ValueError) as exc:
        # Raised before anything is sent (a URL over httpx's 64 KiB, a header
        # httpx cannot encode): the request is wrong, so retrying will not help.
        raise ProviderError(
            provider, f"{what}: the request to {shown} cannot be sent ({exc})"
        ) from exc
    if response.status_code in expect:
        return response
    detail = describe_response(response)
    message = f"{what}: {shown} answered {response.status_code}: {detail}"
    if response.status_code >= 500 or response.status_code == 429:
        raise ProviderUnavailable(provider, message)
    raise ProviderError(provider, message)
