"""The OpenAPI description: what is served, that it covers every route, and that
a live action server keeps to it (schemathesis).

Fuzzed calls without credentials mostly get 401 (no or bad credential), 403
(a job token for another job) or 404 (unknown job, provider or outbox
message): those answers are documented, so they are checked like any other
(status documented, JSON content type, body matching the Error schema, no
5xx). The success paths are driven with real credentials: the admin token,
and per-job tokens and signatures for jobs started the way Rasa starts them.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from sanic import Sanic
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from rasa_rpa.http.admin import admin_blueprint
from rasa_rpa.http.botpress import botpress_blueprint
from rasa_rpa.http.callbacks import OPENAPI_PATH, blueprint
from rasa_rpa.http.diagnostics import diagnostics_blueprint
from rasa_rpa.http.files import files_blueprint
from rasa_rpa.http.monitor import monitor_blueprint
from rasa_rpa.http.vendors import vendor_blueprint
from rasa_rpa.plugin import attach
from tests.conftest import TOKEN, ActionServer

ADMIN = "openapi-admin-token"
#: No 5xx, and every answer as documented: status, content type, headers, body.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
EVENTS = "/rpa/v1/jobs/{job_id}/events"
BOTPRESS = "/api/v1/bots/{bot_id}/mod/uipath/message"


def spec() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(OPENAPI_PATH.read_text())
    return result


# -- the document --------------------------------------------------------------


def test_checked_in_file_is_pretty_printed_openapi_3_0():
    text = OPENAPI_PATH.read_text()
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert document["openapi"] == "3.0.3"
    schemathesis.openapi.from_dict(document).validate()


def test_served_description_is_the_checked_in_file(action_server):
    server = action_server()
    response = requests.get(f"{server.url}/rpa/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == OPENAPI_PATH.read_bytes()
    # schemathesis loads it from the live server and finds it valid.
    loaded = schemathesis.openapi.from_url(f"{server.url}/rpa/openapi.json")
    loaded.validate()
    operation = schemathesis.openapi.from_dict(spec())["/rpa/openapi.json"]["GET"]
    operation.Case().validate_response(response, checks=CHECKS)


# -- routes and description agree ----------------------------------------------


def sanic_routes(make_config: Callable[..., Any]) -> dict[tuple[str, str], dict]:
    """(METHOD, OpenAPI path) -> {parameter: Sanic type} for what attach() adds."""
    app = Sanic(f"openapi_{uuid.uuid4().hex}")
    attach(app, make_config())
    found = {}
    for route in app.router.routes:
        params = dict(re.findall(r"<(\w+):(\w+)>", route.uri))
        path = re.sub(r"<(\w+):\w+>", r"{\1}", route.uri)
        for method in route.methods:
            found[(method, path)] = params
    return found


def test_every_route_is_described_and_every_description_is_a_route(make_config):
    routes = sanic_routes(make_config)
    paths = spec()["paths"]
    described = {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method != "parameters"
    }
    assert set(routes) == described
    # The blueprints, read directly, say the same.
    declared = set()
    for bp in (
        blueprint,
        vendor_blueprint,
        botpress_blueprint,
        admin_blueprint,
        monitor_blueprint,
        diagnostics_blueprint,
        files_blueprint,
    ):
        for future in bp._future_routes:
            path = re.sub(r"<(\w+):\w+>", r"{\1}", (bp.url_prefix or "") + future.uri)
            declared |= {(method, path) for method in future.methods}
    assert declared == described
    # Path parameters: the same names, and integer where Sanic casts to int.
    types = {"str": "string", "int": "integer"}
    for (method, path), params in routes.items():
        item = paths[path]
        operation = item[method.lower()]
        listed = {}
        for parameter in item.get("parameters", []) + operation.get("parameters", []):
            if "$ref" in parameter:
                name = parameter["$ref"].rsplit("/", 1)[-1]
                parameter = spec()["components"]["parameters"][name]
            if parameter["in"] == "path":
                listed[parameter["name"]] = parameter["schema"]["type"]
        assert listed == {k: types[v] for k, v in params.items()}, (method, path)


def test_every_operation_documents_its_errors_as_json():
    document = spec()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation.get("description") or operation.get("summary")
            assert "security" in operation, (method, path)
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    response = document["components"]["responses"][name]
                assert response["content"], (method, path, status)
                if int(status) >= 400 and operation["operationId"] == "downloadFile":
                    # A person's browser opened the link: a page in plain words.
                    assert "text/html" in response["content"], (path, status)
                elif int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}
            if any(s in operation["responses"] for s in ("401", "403")):
                assert operation["security"], (method, path)


# -- a live server, fuzzed -------------------------------------------------------


@dataclass
class Live:
    server: ActionServer
    schema: Any


@pytest.fixture
def live(action_server, rasa_stand_in) -> Live:
    """A server with the admin API on, and a provider with no process behind it.

    The ``hooked`` automation's provider only POSTs to the Rasa stand-in, which
    answers 200: its jobs stay pending with no robot running, so fuzzed events
    can end them without leaving a process behind.
    """
    target = f"{rasa_stand_in.url}/conversations/automation/trigger?token={TOKEN}"
    server = action_server(
        rasa_url=rasa_stand_in.url,
        admin={"token": ADMIN},
        providers={"hooked": {"type": "webhook", "url": target}},
        automations={
            "hooked": {"provider": "hooked", "task": "anything", "intent": "hooked"}
        },
    )
    loaded = schemathesis.openapi.from_url(f"{server.url}/rpa/openapi.json")
    loaded.config.update(base_url=server.url)
    return Live(server, loaded)


def fuzz(
    operation: Any,
    strategy: st.SearchStrategy[Any],
    headers: dict[str, str] | None = None,
    check: Callable[[Any, Any], None] | None = None,
) -> str | None:
    """Drive ``operation`` with ``strategy``; the failure report, if any."""

    @given(case=strategy.map(without_signature_headers) if headers else strategy)
    @FUZZ
    def run(case: Any) -> None:
        response = case.call_and_validate(checks=CHECKS, headers=headers)
        if check is not None:
            check(case, response)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing to negate (an operation without parameters)
    except (Exception, FailureGroup) as exc:
        return f"{operation.label}: {exc}"
    return None


def fuzz_all(
    loaded: Any, headers: dict[str, str] | None = None, tag: str | None = None
) -> list[str]:
    """Every operation (or every one tagged ``tag``), positive and negative."""
    failures = []
    for result in loaded.get_all_operations():
        operation = result.ok()
        if tag is not None and tag not in (operation.tags or []):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = fuzz(operation, operation.as_strategy(mode), headers)
            if failure:
                failures.append(f"[{mode.value}] {failure}")
    return failures


def test_fuzzed_calls_answer_as_documented(live):
    """Credentials as generated (nearly always refused), then the admin token."""
    failures = fuzz_all(live.schema)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    failures += fuzz_all(live.schema, headers=admin, tag="admin")
    assert not failures, "\n\n".join(failures)


def without_signature_headers(case: Any) -> Any:
    """Drop generated Standard Webhooks headers, so the bearer token is used."""
    if case.headers:
        case.headers = {
            k: v
            for k, v in case.headers.items()
            if not k.lower().startswith("webhook-")
        }
    return case


def accepts(body: Any) -> bool:
    """Whether a body the schema allows is also one the server must accept.

    The schema cannot say three things: ``id`` is required unless the call is
    signed (``webhook-id`` stands in), slot names must be non-empty, and
    ``data.message``/``data.error`` cannot hold NUL (EventBody says so).
    """
    if not isinstance(body, dict) or not body.get("id"):
        return False
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    texts = (body["id"], data.get("message"), data.get("error"))
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        return False  # documented in EventBody: these are kept as text
    slots = (body.get("data") or {}).get("slots")
    return not isinstance(slots, dict) or all(slots)


def test_fuzzed_callbacks_with_a_valid_token_answer_as_documented(live):
    """Random events and Botpress messages for a real job, with its token."""
    server, loaded = live.server, live.schema
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="hooked")
    bearer = {"Authorization": f"Bearer {server.keys.mint_token(job_id, sender)}"}
    statuses: list[int] = []

    def accepted_when_valid(case: Any, response: Any) -> None:
        statuses.append(response.status_code)
        if case.meta.generation.mode is GenerationMode.POSITIVE and accepts(case.body):
            assert response.status_code in (200, 202), response.text

    events = loaded[EVENTS]["POST"]
    job = {"job_id": job_id}
    failures = [
        fuzz(events, events.as_strategy(mode, path_parameters=job), bearer, check)
        for mode, check in (
            (GenerationMode.POSITIVE, accepted_when_valid),
            (GenerationMode.NEGATIVE, None),
        )
    ]
    botpress = loaded[BOTPRESS]["POST"]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        failures.append(fuzz(botpress, botpress.as_strategy(mode), bearer))
    assert not any(failures), "\n\n".join(f for f in failures if f)
    assert {200, 202} & set(statuses), statuses
    # Whatever the random events did to the job, reading it back conforms.
    loaded["/rpa/v1/jobs/{job_id}"]["GET"].Case(path_parameters=job).call_and_validate(
        checks=CHECKS, headers=bearer
    )
    timeline = loaded[EVENTS]["GET"].Case(path_parameters=job)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert timeline.call_and_validate(checks=CHECKS, headers=admin).status_code == 200


# -- a live server, the success paths ----------------------------------------------


@pytest.fixture
def waiting(action_server, rasa_stand_in) -> Iterator[tuple[ActionServer, str, str]]:
    """A running idle robot on a server with a low rate limit; cancelled after."""
    server = action_server(
        rasa_url=rasa_stand_in.url,
        admin={"token": ADMIN},
        callbacks={"rate_limit": 1, "rate_burst": 12},
    )
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="wait")
    try:
        server.wait_job(job_id, sender, "running")
        yield server, job_id, sender
    finally:
        server.run_action("action_cancel_rpa_job", sender)


def test_authenticated_calls_answer_as_documented(waiting, rasa_stand_in):
    server, job_id, sender = waiting
    loaded = schemathesis.openapi.from_url(f"{server.url}/rpa/openapi.json")
    loaded.config.update(base_url=server.url)
    token = server.keys.mint_token(job_id, sender)
    robot = {"Authorization": f"Bearer {token}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    seen: dict[str, set[int]] = {}

    def call(path: str, method: str, headers: dict[str, str], **parts: Any) -> Any:
        case = loaded[path][method].Case(**parts)
        response = case.call_and_validate(checks=CHECKS, headers=headers)
        seen.setdefault(f"{method} {path}", set()).add(response.status_code)
        return response

    def check(path: str, method: str, response: requests.Response, **parts) -> None:
        loaded[path][method].Case(**parts).validate_response(response, checks=CHECKS)
        seen.setdefault(f"{method} {path}", set()).add(response.status_code)

    job = {"job_id": job_id}
    progress = {"id": "p-1", "type": "job.progress", "data": {"progress": 40}}
    assert (
        call(EVENTS, "POST", robot, path_parameters=job, body=progress).status_code
        == 202
    )
    again = call(EVENTS, "POST", robot, path_parameters=job, body=progress)
    assert again.status_code == 200 and again.json()["duplicate"] is True

    signed = server.send_signed(job_id, {"type": "message", "data": {"text": "hi"}})
    assert signed.status_code == 202, signed.text
    check(EVENTS, "POST", signed, path_parameters=job)

    got = call("/rpa/v1/jobs/{job_id}", "GET", robot, path_parameters=job)
    assert got.json()["progress"] == 40

    reply = {"target": sender, "message": {"type": "text", "text": "Found 3"}}
    botpress = call(
        BOTPRESS, "POST", robot, path_parameters={"bot_id": "b"}, body=reply
    )
    assert botpress.status_code == 202

    # Errors with a real credential: another job, an unknown job, bad bodies.
    other = server.keys.mint_token(uuid.uuid4().hex, sender)
    forbidden = call(
        EVENTS,
        "POST",
        {"Authorization": f"Bearer {other}"},
        path_parameters=job,
        body=progress,
    )
    assert forbidden.status_code == 403
    ghost = uuid.uuid4().hex
    unknown = call(
        "/rpa/v1/jobs/{job_id}",
        "GET",
        {"Authorization": f"Bearer {server.keys.mint_token(ghost, sender)}"},
        path_parameters={"job_id": ghost},
    )
    assert unknown.status_code == 404
    invalid = {"id": "bad", "type": "job.progress", "data": {"progress": 101}}
    assert (
        call(EVENTS, "POST", robot, path_parameters=job, body=invalid).status_code
        == 422
    )
    for status, body, content_type in (
        (400, b"{not json", "application/json"),
        (413, b'{"pad": "' + b"x" * 300_000 + b'"}', "application/json"),
        (415, b'{"id": "x", "type": "job.started"}', "text/plain"),
    ):
        response = requests.post(
            server.events_url(job_id),
            data=body,
            timeout=10,
            headers={**robot, "Content-Type": content_type},
        )
        assert response.status_code == status, response.text
        check(EVENTS, "POST", response, path_parameters=job)

    # The admin API, once Rasa has had the messages.
    rasa_stand_in.wait_for(lambda calls: len(calls) >= 3)
    listed = call("/rpa/v1/jobs", "GET", admin, query={"conversation_id": sender})
    assert [j["id"] for j in listed.json()["jobs"]] == [job_id]
    timeline = call(
        "/rpa/v1/jobs/{job_id}/events", "GET", admin, path_parameters=job
    ).json()
    assert {e["id"] for e in timeline["events"]} >= {"p-1"}
    delivered = _wait_delivered(call, admin, job_id)
    seq = delivered[0]["seq"]
    replayed = call(
        "/rpa/v1/outbox/{seq}/replay", "POST", admin, path_parameters={"seq": seq}
    )
    assert replayed.status_code == 202
    call("/rpa/v1/outbox", "GET", admin, query={"status": "dead"})
    assert call("/rpa/health", "GET", {}).json()["status"] == "ok"

    # The rate limit: 429 with a Retry-After header, as documented.
    statuses = [
        call(
            EVENTS,
            "POST",
            robot,
            path_parameters=job,
            body={"id": f"r-{n}", "type": "job.progress", "data": {}},
        ).status_code
        for n in range(15)
    ]
    assert 429 in statuses, statuses

    assert seen[f"POST {EVENTS}"] >= {200, 202, 400, 403, 413, 415, 422, 429}


def _wait_delivered(call: Callable[..., Any], admin: dict[str, str], job_id: str):
    deadline = time.monotonic() + 20
    while True:
        response = call(
            "/rpa/v1/outbox",
            "GET",
            admin,
            query={"status": "delivered", "job_id": job_id},
        )
        messages = response.json()["messages"]
        if messages:
            return messages
        assert time.monotonic() < deadline, "nothing was delivered to Rasa"
        time.sleep(0.2)


# -- what schemathesis found ----------------------------------------------------


def replay(server: ActionServer, seq: str) -> requests.Response:
    return requests.post(
        f"{server.url}/rpa/v1/outbox/{seq}/replay",
        timeout=10,
        headers={"Authorization": f"Bearer {ADMIN}"},
    )


def test_replay_of_a_seq_beyond_64_bits_is_not_found(action_server):
    """``seq`` is any integer in the route; one SQLite cannot hold is no message."""
    server = action_server(admin={"token": ADMIN})
    operation = schemathesis.openapi.from_dict(spec())["/rpa/v1/outbox/{seq}/replay"]
    for seq in (2**63, -(2**63) - 1, 10**20):
        response = replay(server, str(seq))
        assert response.status_code == 404, (seq, response.text)
        case = operation["POST"].Case(path_parameters={"seq": seq})
        case.validate_response(response, checks=CHECKS)


def test_replay_of_a_seq_that_is_not_an_integer_is_a_client_error(action_server):
    """Negative cases: the answer must be a JSON 4xx, not the server's 500."""
    server = action_server(admin={"token": ADMIN})
    for seq in ("abc", "1.5", "null", "%C3%A9"):
        response = replay(server, seq)
        assert 400 <= response.status_code < 500, (seq, response.text)
        assert set(response.json()) == {"error"}, (seq, response.text)


def test_bodies_that_break_the_parser_or_the_store_get_a_json_4xx(live):
    """Nesting deeper than Python's recursion limit, and lone surrogates.

    Both are valid JSON a token holder can send; the answer must be a
    documented 4xx with an Error body (today: a 500 from rasa-sdk, or for
    very deep bodies a 400 in Sanic's own format).
    """
    server, loaded = live.server, live.schema
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, intent="hooked")
    robot = {
        "Authorization": f"Bearer {server.keys.mint_token(job_id, sender)}",
        "Content-Type": "application/json",
    }
    job = {"job_id": job_id}
    deep = {d: b"[" * d + b"]" * d for d in (1000, 5000)}
    sent = [
        (
            EVENTS,
            job,
            b'{"id": "s1", "type": "job.progress", "data": {"message": "\\udfff"}}',
        ),
        *(
            (
                EVENTS,
                job,
                b'{"id": "d", "type": "message", "data": '
                b'{"text": "hi", "x": ' + nested + b"}}",
            )
            for nested in deep.values()
        ),
        *(
            (BOTPRESS, {"bot_id": "b"}, b'{"message": ' + nested + b"}")
            for nested in deep.values()
        ),
    ]
    failures = []
    for path, parameters, body in sent:
        url = f"{server.url}{path.format(**parameters)}"
        response = requests.post(url, data=body, headers=robot, timeout=10)
        try:
            assert 400 <= response.status_code < 500
            case = loaded[path]["POST"].Case(path_parameters=parameters)
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup):
            failures.append(
                f"POST {path} {body[:60]!r}... ({len(body)} bytes): "
                f"{response.status_code} {response.text[:120]}"
            )
    assert not failures, "\n".join(failures)
