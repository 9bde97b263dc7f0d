"""TokenAuth on its own: a real httpx.AsyncClient against a vendor API on loopback.

The vendor API accepts only the tokens its token endpoint issued and has
not revoked, and answers 401 otherwise, so every renewal, replay and shared
fetch below is counted where it happens: at the token endpoint (``fetch``)
and at the API (the token each request carried).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rasa_rpa.errors import ProviderError
from rasa_rpa.fakes.base import FakeRequest, FakeServer
from rasa_rpa.providers import auth as auth_module
from rasa_rpa.providers.auth import AccessToken, TokenAuth


class Api:
    """A vendor API on 127.0.0.1: ``GET /x`` with an accepted token, else 401."""

    def __init__(self, header: str = "authorization", scheme: str = "Bearer ") -> None:
        self.header = header
        self.scheme = scheme
        #: Tokens the API takes (the issuer adds; a test revokes).
        self.accepted: set[str] = set()
        #: The header value each request carried, in arrival order.
        self.seen: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()
        self.server = FakeServer()
        self.server.route("GET", r"/x", self._answer)

    def _answer(self, request: FakeRequest) -> tuple[int, Any]:
        offered = request.headers.get(self.header, "")
        with self._lock:
            self.seen.append(offered)
            token = offered.removeprefix(self.scheme)
            if offered.startswith(self.scheme) and token in self.accepted:
                return 200, {"ok": True}
            self.refused += 1
        return 401, {"error": "invalid_token"}

    def revoke(self) -> None:
        """The vendor forgets every token (rotated, revoked, clock skew)."""
        with self._lock:
            self.accepted.clear()

    @property
    def url(self) -> str:
        return self.server.url + "/x"


class Issuer:
    """The vendor's token request, as TokenAuth's ``fetch``: t1, t2, ... counted."""

    def __init__(
        self,
        api: Api,
        *,
        ttl: float = 3600,
        delay: float = 0.0,
        now: Callable[[], float] = time.time,
        accepted: bool = True,
    ) -> None:
        self.api = api
        self.ttl = ttl
        self.delay = delay
        self.now = now
        #: Whether the API will take the tokens issued (False: it refuses all).
        self.accepted = accepted
        self.calls = 0
        self.fail_next = False

    async def __call__(self) -> AccessToken:
        self.calls += 1
        value = f"t{self.calls}"
        if self.delay:
            # Long enough for every concurrent request to be waiting on it.
            await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next = False
            raise ProviderError("vendor", "the token endpoint refused the client")
        if self.accepted:
            self.api.accepted.add(value)
        return AccessToken(value, self.now() + self.ttl)


class Clock:
    """``time`` for the auth module, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[Api]:
    api = Api()
    with api.server:
        yield api


async def get(auth: TokenAuth, url: str, count: int = 1) -> list[httpx.Response]:
    """``count`` concurrent GETs on one client, each with ``auth``."""
    async with httpx.AsyncClient(timeout=5) as client:
        return list(
            await asyncio.gather(*(client.get(url, auth=auth) for _ in range(count)))
        )


async def test_a_token_is_fetched_once_and_reused(api: Api) -> None:
    issuer = Issuer(api)
    auth = TokenAuth(issuer)
    for _ in range(3):
        (response,) = await get(auth, api.url)
        assert response.status_code == 200
    assert issuer.calls == auth.fetches == 1
    assert api.seen == ["Bearer t1"] * 3


async def test_header_and_scheme_are_the_vendors() -> None:
    api = Api(header="x-authorization", scheme="")
    with api.server:
        issuer = Issuer(api)
        auth = TokenAuth(issuer, header="X-Authorization", scheme="")
        (response,) = await get(auth, api.url)
    assert response.status_code == 200
    assert api.seen == ["t1"]


async def test_a_token_near_expiry_is_renewed_before_use(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(auth_module, "time", clock)
    issuer = Issuer(api, ttl=120, now=clock.time)
    auth = TokenAuth(issuer, renew_before=60)
    await get(auth, api.url)
    clock.now += 59  # 61 s left: still outside renew_before
    await get(auth, api.url)
    assert issuer.calls == 1
    clock.now += 2  # 59 s left: inside renew_before, renewed before it leaves
    (response,) = await get(auth, api.url)
    assert response.status_code == 200
    assert issuer.calls == auth.fetches == 2
    assert api.seen == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert api.refused == 0  # renewed ahead of time, not after a 401


async def test_a_401_renews_the_token_and_replays_once(api: Api) -> None:
    issuer = Issuer(api)
    auth = TokenAuth(issuer)
    await get(auth, api.url)
    api.revoke()  # t1 is still fresh by its expiry, but the vendor refuses it
    (response,) = await get(auth, api.url)
    assert response.status_code == 200
    assert issuer.calls == auth.fetches == 2
    assert api.seen == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert api.refused == 1


async def test_a_second_401_is_the_vendors_answer(api: Api) -> None:
    issuer = Issuer(api, accepted=False)  # the vendor refuses every token
    auth = TokenAuth(issuer)
    (response,) = await get(auth, api.url)
    assert response.status_code == 401
    assert issuer.calls == auth.fetches == 2  # the first token, one renewal
    assert api.seen == ["Bearer t1", "Bearer t2"]  # one replay, no loop


async def test_concurrent_first_requests_share_one_fetch(api: Api) -> None:
    issuer = Issuer(api, delay=0.1)
    auth = TokenAuth(issuer)
    responses = await get(auth, api.url, count=10)
    assert [r.status_code for r in responses] == [200] * 10
    assert issuer.calls == auth.fetches == 1
    assert api.seen == ["Bearer t1"] * 10


async def test_concurrent_401s_on_one_stale_token_share_one_refetch(api: Api) -> None:
    issuer = Issuer(api, delay=0.1)
    auth = TokenAuth(issuer)
    await get(auth, api.url)
    api.revoke()
    responses = await get(auth, api.url, count=10)
    assert [r.status_code for r in responses] == [200] * 10
    assert issuer.calls == auth.fetches == 2  # not one per refused request
    assert api.refused == 10
    assert sorted(api.seen[1:]) == ["Bearer t1"] * 10 + ["Bearer t2"] * 10


async def test_invalidate_makes_the_next_request_fetch(api: Api) -> None:
    issuer = Issuer(api)
    auth = TokenAuth(issuer)
    await get(auth, api.url)
    auth.invalidate()
    (response,) = await get(auth, api.url)
    assert response.status_code == 200
    assert issuer.calls == auth.fetches == 2
    assert api.seen == ["Bearer t1", "Bearer t2"]
    assert api.refused == 0  # fetched before the request, not after a 401


async def test_a_refused_token_request_is_not_cached(api: Api) -> None:
    issuer = Issuer(api)
    issuer.fail_next = True
    auth = TokenAuth(issuer)
    with pytest.raises(ProviderError):
        await get(auth, api.url)
    assert api.seen == []  # nothing left without a token
    (response,) = await get(auth, api.url)
    assert response.status_code == 200
    assert issuer.calls == 2
    assert auth.fetches == 1  # only tokens actually fetched count


def test_a_sync_client_is_refused() -> None:
    async def never() -> AccessToken:
        raise AssertionError("no token for a sync client")

    auth = TokenAuth(never)
    transport = httpx.MockTransport(lambda request: httpx.Response(200))
    with httpx.Client(transport=transport) as client, pytest.raises(RuntimeError):
        client.get("http://vendor.invalid/x", auth=auth)
