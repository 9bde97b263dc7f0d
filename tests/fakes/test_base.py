"""The failure knobs every vendor fake shares (rasa_rpa.fakes.base.FakeVendor)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx
import pytest

from rasa_rpa.fakes.automation_anywhere import FakeControlRoom
from rasa_rpa.fakes.power_automate import FakePowerAutomate
from rasa_rpa.fakes.robocorp import FakeRobocorp
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.fakes.uipath import FakeOrchestrator

if TYPE_CHECKING:
    from rasa_rpa.fakes.base import FakeVendor

#: Each fake, and a route of its that answers at once without a token.
VENDORS: dict[str, tuple[Callable[[], FakeVendor], str]] = {
    "uipath": (FakeOrchestrator, "/identity_/connect/token"),
    "sap": (FakeSapIrpa, "/oauth/token"),
    "automation_anywhere": (FakeControlRoom, "/v2/authentication"),
    "robocorp": (
        FakeRobocorp,
        "/api/v1/workspaces/fake-workspace/processes/p/process-runs",
    ),
    "power_automate": (FakePowerAutomate, "/fake-tenant/oauth2/v2.0/token"),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Iterator[tuple[FakeVendor, str]]:
    make, path = VENDORS[request.param]
    with make() as fake:
        yield fake, fake.url + path


def test_an_injected_outage_answers_the_next_requests_then_ends(vendor):
    fake, url = vendor
    fake.fail_next_requests(2, status=503)
    statuses = [httpx.post(url, timeout=5).status_code for _ in range(3)]
    assert statuses[:2] == [503, 503]
    assert statuses[2] != 503


def test_a_response_delay_slows_every_route(vendor):
    fake, url = vendor
    fake.response_delay = 0.3
    began = time.monotonic()
    httpx.post(url, timeout=5)
    assert time.monotonic() - began >= 0.3


def test_expired_tokens_are_refused(vendor):
    fake, _ = vendor
    fake.keep_token("t", time.time() + 60)
    assert fake.token_alive("t")
    fake.expire_tokens()
    assert not fake.token_alive("t")
