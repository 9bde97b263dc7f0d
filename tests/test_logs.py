"""Logs: job ids on job lines, JSON on request, secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import time
import uuid

import aiohttp
import httpx
import pytest
from aiohttp import web

from devtools.stack import free_port
from rasa_rpa.fakes.base import FakeServer
from rasa_rpa.fakes.sap import FakeSapIrpa
from rasa_rpa.logs import JsonFormatter, RedactingFilter, configure_logging, redact
from rasa_rpa.variables import job_ref
from tests.conftest import MASTER_KEY, TOKEN


def test_redact_hides_configured_secrets_jwts_and_webhook_secrets():
    text = ("key=s3cr3t-value token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl "
            "whsec_dGVzdA== fine")
    assert redact(text, ["s3cr3t-value"]) == (
        "key=[redacted] token [redacted] [redacted] fine")


def test_filter_scrubs_arguments_and_exceptions():
    record_filter = RedactingFilter(["hunter2-password"])
    try:
        raise ValueError("login failed for hunter2-password")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "", 0, "using %s", (
            "hunter2-password",), exc_info=__import__("sys").exc_info())
    record_filter.filter(record)
    assert record.getMessage() == "using [redacted]"
    assert "hunter2" not in record.exc_text
    assert record.job_id == "-"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('POST https://h.example/hooks/x?code=abc123&team=ops "HTTP/1.1 200 OK"',
         'POST https://h.example/hooks/x?code=[redacted]&team=[redacted] '
         '"HTTP/1.1 200 OK"'),
        ("connect postgresql://rpa:pa%40ss@db:5432/rpa?sslmode=require failed",
         "connect postgresql://[redacted]@db:5432/rpa?sslmode=[redacted] failed"),
        ("URL('https://tok3n@api.example/v1?sig=x;empty=&bare')",
         "URL('https://[redacted]@api.example/v1?sig=[redacted];empty=&[redacted]')"),
        ('127.0.0.1 "GET /rpa/ui?token=s3cret HTTP/1.1" 200',
         '127.0.0.1 "GET /rpa/ui?token=[redacted] HTTP/1.1" 200'),
        ("https://login.example/cb#access_token=abc&state=1 and /docs#usage",
         "https://login.example/cb#access_token=[redacted]&state=[redacted] "
         "and /docs#usage"),
        ("plain http://127.0.0.1:5055/rpa/health and /tmp/jobs.db stay",
         "plain http://127.0.0.1:5055/rpa/health and /tmp/jobs.db stay"),
    ],
)
def test_redact_hides_url_query_values_and_user_info(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # redacting twice changes nothing


def test_filter_redacts_an_httpx_url_argument_and_exception_text():
    url = httpx.URL("https://robot:pw-9f8e7d@hooks.example/run?code=c0de-4242")
    try:
        raise httpx.ConnectError(f"cannot reach {url}")
    except httpx.ConnectError:
        record = logging.LogRecord(
            "httpx", logging.INFO, "", 0, 'HTTP Request: %s %s "%s %d %s"',
            ("POST", url, "HTTP/1.1", 200, "OK"), __import__("sys").exc_info())
    RedactingFilter().filter(record)
    assert record.getMessage() == (
        'HTTP Request: POST https://[redacted]@hooks.example/run?code=[redacted] '
        '"HTTP/1.1 200 OK"')
    assert "c0de-4242" not in record.exc_text and "pw-9f8e7d" not in record.exc_text


@pytest.fixture
def own_logging():
    """Undo what configure_logging does to this process's logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_third_party_handlers_and_access_log_fields_are_redacted(own_logging):
    """aiohttp's access log, through a handler of its own that never reaches
    ours: the request line is in the message and in an ``extra`` field."""
    access = logging.getLogger("aiohttp.access")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s | %(first_request_line)s"))
    access.addHandler(handler)
    access.propagate, access.level = False, logging.INFO
    try:
        configure_logging()
        asyncio.run(serve_once(f"/orders?token={'s3cr3t' * 3}&page=2",
                               logged=lambda: "/orders" in out.getvalue()))
    finally:
        access.removeHandler(handler)
        access.propagate, access.level = True, logging.NOTSET
    line = out.getvalue()
    assert "GET /orders?token=[redacted]&page=[redacted] HTTP/1.1" in line, line
    assert "s3cr3t" not in line


async def serve_once(target: str, logged) -> None:
    """One GET to a real aiohttp server on 127.0.0.1; returns once ``logged()``
    (aiohttp writes the access line after the answer has gone out)."""
    app = web.Application()
    app.router.add_get("/orders", lambda request: web.json_response({}))
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}{target}"
        ) as response:
            assert response.status == 200
        deadline = time.monotonic() + 5
        while not logged() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await runner.cleanup()


def test_json_lines_carry_extra_fields():
    record = logging.LogRecord("rasa_rpa.service", logging.INFO, "", 0, "job %s",
                               ("j1",), None)
    record.job_id, record.conversation_id = "j1", "c1"
    RedactingFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "job j1"
    assert (line["job_id"], line["conversation_id"]) == ("j1", "c1")


def test_server_logs_json_with_job_ids_and_no_secret(
    action_server, rasa_stand_in, monkeypatch
):
    monkeypatch.setenv("RASA_RPA_LOG_FORMAT", "json")
    # Secrets rpa.yml does not name as such: a webhook URL's query value and
    # user info, which httpx logs at INFO with every request URL.
    code, password = secrets.token_hex(12), secrets.token_hex(12)
    monkeypatch.setenv("HOOK_CODE", code)
    monkeypatch.setenv("HOOK_PASSWORD", password)
    with FakeServer() as hook_endpoint:
        hook_endpoint.route("POST", r"/hooks/\w+", lambda r: (202, {}))
        hook_url = hook_endpoint.url.replace("://", "://robot:${HOOK_PASSWORD}@")
        server = action_server(
            rasa_url=rasa_stand_in.url,
            providers={"hook": {
                "type": "webhook",
                "url": hook_url + "/hooks/{task}?code=${HOOK_CODE}&team=ops",
            }},
            automations={"hooked": {"provider": "hook", "task": "nightly",
                                    "intent": "hook"}},
        )
        sender = uuid.uuid4().hex
        job_id = server.start_job(sender, entities=[{"entity": "customer",
                                                     "value": "Nobody Inc"}])
        server.wait_job(job_id, sender, "failed")
        token = server.keys.mint_token(job_id, sender)
        server.send_with_token(job_id, {"id": "late", "type": "message",
                                        "data": {"text": "late"}}, token)
        hook_job = server.start_job(uuid.uuid4().hex, intent="hook")
        wait_for(lambda: hook_endpoint.requests)
        assert hook_endpoint.requests[0].query["code"] == code  # the call was real
        # httpx logs a call after its answer: wait for the line, not a time.
        wait_for(lambda: "/hooks/nightly" in server.log())
        server.stop()
    lines = [json.loads(line) for line in server.log().splitlines()
             if line.startswith("{")]
    about_job = [line for line in lines if line.get("job_id") == job_id]
    assert about_job, server.log()[-2000:]
    assert all(line["conversation_id"] == sender for line in about_job)
    everything = server.log() + (server.tmp.parent / "jobs.db").read_bytes().decode(
        "latin-1")
    for secret in (MASTER_KEY, TOKEN, token, server.keys.signing_secret(job_id),
                   server.keys.signing_secret(hook_job), code, password):
        assert secret not in everything, [
            line for line in server.log().splitlines() if secret in line]
    # Keys stay, so the lines still say what was called.
    assert "/hooks/nightly?code=[redacted]&team=[redacted]" in server.log()


def wait_for(condition, timeout: float = 10):
    """Poll ``condition`` until it is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
    return result


def test_vendor_calls_and_the_sap_cancel_line_name_the_job(
    action_server, rasa_stand_in
):
    """httpx's own request lines and the provider's lines carry job= and conv=."""
    with FakeSapIrpa(step_delay=30) as sap:
        sap.drop_notifications = True
        server = action_server(
            rasa_url=rasa_stand_in.url,
            providers={"sap": sap.provider_options()},
            automations={"sap_echo": {"provider": "sap", "task": "echo",
                                      "intent": "sap"}},
        )
        sender = uuid.uuid4().hex
        job_id = server.start_job(sender, intent="sap")
        server.run_action("action_cancel_rpa_job", sender)
        fields = f"[job={job_id} ref={job_ref(job_id)} conv={sender}]"

        def line(text: str) -> str | None:
            return next((x for x in server.log().splitlines() if text in x), None)

        trigger = wait_for(lambda: line("/apiTriggers/echo/runs"))
        assert "httpx" in trigger and fields in trigger, trigger
        # SAP declares no cancel API: the refusal is logged with the job.
        cancel = wait_for(lambda: line("could not stop it"))
        assert fields in cancel, cancel


def test_text_lines_escape_control_characters_but_keep_tracebacks():
    from rasa_rpa.logs import TextFormatter

    try:
        raise ValueError("deep\x1b[2J")
    except ValueError as exc:
        error = exc
    record = logging.LogRecord("rasa_rpa.service", logging.WARNING, "", 0,
                               "customer %s", ("a\nFORGED\x1b[31m\x00",),
                               (type(error), error, error.__traceback__))
    record.job_id, record.conversation_id = "j1", "c\r\n1\x85"
    RedactingFilter().filter(record)
    text = TextFormatter().format(record)
    first, *traceback = text.splitlines()
    assert first.endswith(
        f"[job=j1 ref={job_ref('j1')} conv=c\\r\\n1\\x85]: "
        "customer a\\nFORGED\\x1b[31m\\x00"
    )
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == "ValueError: deep\\x1b[2J"


def test_a_conversation_id_cannot_forge_a_server_log_line(action_server, rasa_stand_in):
    server = action_server(rasa_url=rasa_stand_in.url)
    sender = ("evil\n1999-01-01 08:00:00,000 CRITICAL rasa_rpa.security "
              "[job=- ref=- conv=-]: FORGED LINE\x1b[31mred\x00")
    server.run_action("action_start_rpa_job", sender, intent="missing")
    wait_for(lambda: "could not start" in server.log())
    log = server.log()
    assert not any(line.startswith("1999-01-01") for line in log.splitlines()), log
    assert "\x1b" not in log and "\x00" not in log
    assert "conv=evil\\n1999-01-01 08:00:00,000 CRITICAL" in log
