"""One token mechanism for every vendor that wants a bearer token: an httpx Auth.

UiPath, SAP and Automation Anywhere all hand out short-lived tokens, and all
three answer 401 once one has gone stale (revoked, rotated, a clock that
disagrees). The flow is the same for each, so it lives here once, as an
:class:`httpx.Auth` (httpx's own extension point for this):

* the token is fetched on first use and cached;
* it is renewed ``renew_before`` seconds before it expires, so a request
  never leaves with a token that dies on the way;
* a 401 renews it and replays the request exactly once (a second 401 is the
  vendor's real answer, returned to the caller);
* concurrent requests share one fetch (an :class:`asyncio.Lock`), so a burst
  of job starts, or a burst of 401s on one stale token, costs one token call.

Each provider keeps its own token *request* (UiPath client credentials or a
refresh token, SAP client credentials with HTTP Basic, Automation Anywhere's
v2 login with the v1 fallback) and hands it over as ``fetch``. Pass the auth
per request (``auth=``), not on the client, so the token request itself goes
out without it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx

__all__ = ["AccessToken", "TokenAuth"]


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it stops working (epoch seconds)."""

    value: str
    expires_at: float


class TokenAuth(httpx.Auth):
    """Sets a cached vendor token on each request; renews it once on a 401.

    Args:
        fetch: the vendor's token request; raises ProviderError when refused.
        header: the header that carries the token (``Authorization`` for
            OAuth, ``X-Authorization`` for Automation Anywhere).
        scheme: put before the token (``Bearer``); empty for a bare token.
        renew_before: seconds before ``expires_at`` that count as expired.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[AccessToken]],
        *,
        header: str = "Authorization",
        scheme: str = "Bearer",
        renew_before: float = 60.0,
    ) -> None:
        self._fetch = fetch
        self._header = header
        self._scheme = scheme
        self._renew_before = renew_before
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()
        #: How many tokens were fetched (visible to tests and metrics).
        self.fetches = 0

    def _fresh(self, token: AccessToken | None) -> bool:
        return token is not None and token.expires_at - self._renew_before > time.time()

    async def token(self, *, stale: str | None = None) -> str:
        """A token valid for at least ``renew_before`` seconds.

        ``stale`` is a token the vendor just refused: it is replaced, unless
        another request already replaced it (then that one's is shared).
        """
        token = self._token
        if self._fresh(token) and token is not None and token.value != stale:
            return token.value
        async with self._lock:
            token = self._token
            if not self._fresh(token) or token is None or token.value == stale:
                token = await self._fetch()
                self.fetches += 1
                self._token = token
            return token.value

    def invalidate(self) -> None:
        """Forget the token: the next request fetches a new one."""
        self._token = None

    def _apply(self, request: httpx.Request, token: str) -> None:
        value = f"{self._scheme} {token}" if self._scheme else token
        request.headers[self._header] = value

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """httpx's hook: send with the cached token, replay once after a 401."""
        token = await self.token()
        self._apply(request, token)
        response = yield request
        if response.status_code == 401:
            self._apply(request, await self.token(stale=token))
            yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Providers are async only: the token fetch is a coroutine."""
        raise RuntimeError("TokenAuth works with httpx.AsyncClient only")
        yield request  # pragma: no cover - makes this a generator
