"""What HTTP-speaking providers share: error translation and an OAuth token cache.

Vendor errors are translated here once, so users read "token endpoint
https://x/oauth/token answered 401: invalid_client", not a stack trace:
4xx becomes :class:`ProviderError` (do not retry), timeouts, connection
errors and 5xx become :class:`ProviderUnavailable` (retry later).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from rasa_rpa.errors import ProviderError, ProviderUnavailable

__all__ = [
    "AccessToken",
    "TokenCache",
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


def safe_url(url: str) -> str:
    """``url`` without user info, query or fragment: those may carry secrets
    (``?sig=``, ``user:password@``) and errors reach logs and users."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
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


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it stops working (epoch seconds)."""

    value: str
    expires_at: float


class TokenCache:
    """Fetches a token once, reuses it, renews it before expiry or after a 401.

    ``fetch`` does the vendor-specific call. Concurrent callers share one
    fetch, so a burst of job starts costs one token request.
    """

    def __init__(
        self, fetch: Callable[[], Awaitable[AccessToken]], *, renew_before: float = 60
    ) -> None:
        self._fetch = fetch
        self._renew_before = renew_before
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        #: How many tokens were fetched (visible to tests and metrics).
        self.fetches = 0

    async def get(self) -> str:
        """A token valid for at least ``renew_before`` seconds."""
        token = self._token
        if token is not None and token.expires_at - self._renew_before > time.time():
            return token.value
        async with self._lock:
            token = self._token
            if token is None or token.expires_at - self._renew_before <= time.time():
                token = await self._fetch()
                self.fetches += 1
                self._token = token
            return token.value

    def invalidate(self) -> None:
        """Forget the token (the vendor answered 401)."""
        self._token = None
