"""The generic webhook provider posts a templated body to any HTTP endpoint."""

from __future__ import annotations

import httpx
import pytest

from rasa_rpa.errors import (
    ConfigError,
    ProviderError,
    ProviderUnavailable,
    UnsendableInput,
)
from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.models import Job
from rasa_rpa.providers.base import StartRequest
from rasa_rpa.providers.http import send
from rasa_rpa.providers.webhook import WebhookProvider, render_template
from rasa_rpa.security import JobKeys


async def report(event):
    return None


def request_for(task="nightly", inputs=None):
    job = Job(id="job-1", automation="a", provider="hook", conversation_id="conv-1")
    creds = JobKeys("k" * 32).credentials(job.id, "conv-1", "http://127.0.0.1:5055")
    return StartRequest(job, task, inputs or {"customer": "ACME", "n": 3}, creds, 60)


@pytest.fixture
def endpoint():
    with FakeServer() as server:
        server.route(
            "POST",
            r"/hooks/(?P<task>[a-z]+)",
            lambda r: (201, {"run": {"id": f"run-{r.params['task']}"}}),
        )
        server.route("POST", r"/broken", lambda r: (503, {"message": "maintenance"}))
        yield server


def provider(make_config, **options):
    config = make_config(providers={"hook": {"type": "webhook", **options}})
    return WebhookProvider("hook", config.providers["hook"], config, report)


async def test_templated_body_headers_and_ref(make_config, endpoint):
    hook = provider(
        make_config,
        url=endpoint.url + "/hooks/{task}",
        ref="run.id",
        headers={"X-Api-Key": "key-1", "X-Job": "{job_id}"},
        body={
            "customer": "{inputs.customer}",
            "count": "{inputs.n}",
            "callback": "{events_url}",
            "auth": "Bearer {token}",
            "all": "{inputs}",
        },
    )
    ref = await hook.start(request_for())
    await hook.aclose()
    assert ref == "run-nightly"
    [sent] = endpoint.requests
    body = sent.json()
    assert body["customer"] == "ACME"
    assert body["count"] == 3  # a whole-string placeholder keeps its JSON type
    assert body["all"] == {"customer": "ACME", "n": 3}
    assert body["callback"] == "http://127.0.0.1:5055/rpa/v1/jobs/job-1/events"
    assert body["auth"].startswith("Bearer ey")
    assert sent.headers["x-api-key"] == "key-1"
    assert sent.headers["x-job"] == "job-1"


async def test_default_body_carries_the_callback(make_config, endpoint):
    hook = provider(make_config, url=endpoint.url + "/hooks/x")
    assert await hook.start(request_for()) is None
    await hook.aclose()
    body = endpoint.requests[0].json()
    assert body["job_id"] == "job-1"
    assert set(body["callback"]) == {"url", "token"}


async def test_vendor_5xx_is_unavailable(make_config, endpoint):
    hook = provider(make_config, url=endpoint.url + "/broken")
    with pytest.raises(ProviderUnavailable, match="503: maintenance"):
        await hook.start(request_for())
    await hook.aclose()


async def test_unknown_placeholder_names_the_config(make_config, endpoint):
    hook = provider(
        make_config, url=endpoint.url + "/hooks/x", body={"x": "{inputs.missing}"}
    )
    with pytest.raises(ProviderError, match=r"providers.hook.*inputs.missing"):
        await hook.start(request_for())
    await hook.aclose()


def test_render_keeps_text_around_placeholders():
    assert render_template("job {job_id}!", {"job_id": 7}) == "job 7!"


async def test_user_input_cannot_reshape_the_url(make_config, endpoint):
    hook = provider(make_config, url=endpoint.url + "/hooks/{inputs.customer}")
    with pytest.raises(ProviderError):  # no route matches the quoted value
        await hook.start(request_for(inputs={"customer": "x/../broken?admin=1"}))
    await hook.aclose()
    assert endpoint.requests[-1].path == "/hooks/x%2F..%2Fbroken%3Fadmin%3D1"


async def test_errors_do_not_show_url_secrets(make_config, endpoint):
    hook = provider(make_config, url=endpoint.url + "/broken?sig=top-secret-signature")
    with pytest.raises(ProviderUnavailable) as caught:
        await hook.start(request_for())
    await hook.aclose()
    assert "top-secret-signature" not in str(caught.value)
    assert "/broken" in str(caught.value)


@pytest.mark.parametrize(
    ("template", "inputs", "blamed"),
    [
        ("/hooks/{inputs.customer}/run", {"customer": ".."}, "customer"),
        ("/hooks/{inputs.customer}/run", {"customer": "."}, "customer"),
        ("/hooks/{inputs.a}{inputs.b}/run", {"a": ".", "b": "."}, None),
    ],
)
async def test_dot_segments_from_inputs_are_refused(
    make_config, endpoint, template, inputs, blamed
):
    # httpx resolves "/hooks/../run" to "/run"; %2E%2E would get past httpx,
    # but servers and proxies decode it back before routing, so: refused.
    hook = provider(make_config, url=endpoint.url + template)
    with pytest.raises(UnsendableInput, match="segment in the URL path") as caught:
        await hook.start(request_for(inputs=inputs))
    await hook.aclose()
    assert caught.value.input_name == blamed
    assert endpoint.requests == []


async def test_dots_inside_a_segment_are_data(make_config, endpoint):
    endpoint.route("POST", r"/hooks/[^/]+/run", lambda r: (201, {}))
    hook = provider(make_config, url=endpoint.url + "/hooks/{inputs.customer}/run")
    await hook.start(request_for(inputs={"customer": "...x.."}))
    await hook.aclose()
    assert [r.path for r in endpoint.requests] == ["/hooks/...x../run"]


def test_a_literal_dot_segment_in_the_url_is_a_config_error(make_config):
    with pytest.raises(ConfigError, match=r"providers.hook.url.*dot segment"):
        provider(make_config, url="http://127.0.0.1:9/hooks/../{task}")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("M\u00fcller", "non-ASCII or control characters"),
        ("a\r\nX-Admin: 1", "non-ASCII or control characters"),
        ("a\x00b", "non-ASCII or control characters"),
    ],
)
async def test_header_values_http_cannot_carry_are_refused(
    make_config, endpoint, value, problem
):
    hook = provider(
        make_config,
        url=endpoint.url + "/hooks/x",
        headers={"X-Customer": "{inputs.customer}"},
    )
    with pytest.raises(UnsendableInput, match=problem) as caught:
        await hook.start(request_for(inputs={"customer": value}))
    await hook.aclose()
    assert caught.value.input_name == "customer"
    assert "customer" in caught.value.user_message
    assert endpoint.requests == []


async def test_a_url_too_long_to_send_is_refused_without_echoing_it(
    make_config, endpoint
):
    hook = provider(make_config, url=endpoint.url + "/hooks/{inputs.customer}")
    with pytest.raises(UnsendableInput, match="at most 8000") as caught:
        await hook.start(request_for(inputs={"customer": "x" * 100_000}))
    await hook.aclose()
    assert len(caught.value.message) < 200
    assert endpoint.requests == []


async def test_send_turns_a_request_httpx_refuses_into_a_provider_error(endpoint):
    # What the providers' own checks miss still fails as a ProviderError.
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError, match="cannot be sent"):
            await send(client, "p", "GET", endpoint.url + "/" + "x" * 70_000, what="w")
        with pytest.raises(ProviderError, match="cannot be sent"):
            await send(
                client, "p", "GET", endpoint.url, what="w", headers={"X": "\u00fc"}
            )
