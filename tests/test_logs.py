"""Logs: job ids on job lines, JSON on request, secrets never written."""

from __future__ import annotations

import json
import logging
import uuid

from rasa_rpa.logs import JsonFormatter, RedactingFilter, redact
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
    server = action_server(rasa_url=rasa_stand_in.url)
    sender = uuid.uuid4().hex
    job_id = server.start_job(sender, entities=[{"entity": "customer",
                                                 "value": "Nobody Inc"}])
    server.wait_job(job_id, sender, "failed")
    token = server.keys.mint_token(job_id, sender)
    server.send_with_token(job_id, {"id": "late", "type": "message",
                                    "data": {"text": "late"}}, token)
    server.stop()
    lines = [json.loads(line) for line in server.log().splitlines()
             if line.startswith("{")]
    about_job = [line for line in lines if line.get("job_id") == job_id]
    assert about_job, server.log()[-2000:]
    assert all(line["conversation_id"] == sender for line in about_job)
    everything = server.log() + (server.tmp.parent / "jobs.db").read_bytes().decode(
        "latin-1")
    for secret in (MASTER_KEY, TOKEN, token, server.keys.signing_secret(job_id)):
        assert secret not in everything
