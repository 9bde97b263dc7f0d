"""The response variables: short references, elapsed time, reasons fit for the chat."""

from __future__ import annotations

import pytest

from rasa_rpa.models import Job, JobState, new_job_id
from rasa_rpa.variables import (
    TECHNICAL_PROBLEM,
    duration_words,
    job_variables,
    user_message,
    user_reason,
)


@pytest.mark.parametrize(
    "seconds,words",
    [
        (0, "1 s"),
        (0.4, "1 s"),
        (1.6, "2 s"),
        (89, "89 s"),
        (90, "2 min"),
        (5400, "1.5 h"),
    ],
)
def test_elapsed_time_reads_at_a_glance(seconds, words):
    assert duration_words(seconds) == words


@pytest.mark.parametrize(
    "reason",
    [
        "FileNotFoundError: [Errno 2] No such file or directory: '/srv/bot/x.csv'",
        "cannot read /home/rasa/robots/orders.robot",
        "POST http://10.0.0.5:8080/api failed",
        'Traceback (most recent call last):\n  File "x", line 1',
        "job 3638760f77d649769a91b7287c7b5ffa failed",
        r"C:\Users\robot\report.xlsx is locked",
        "Keyword 'Open Workbook' failed in orders.robot",
        # What an attack run slipped past the first version:
        "see //evil.example.com/login",
        "visit www.evil-phish.com/reset",
        "[Sign in](https:evil.example.com)",
        "[Click here to re-login](javascript:alert(document.cookie))",
        '<a href="data:text/html;base64,PHNjcmlwdD4=">fix</a>',
        "<svg onload=alert(1)>",
        "record 8035F4CA-8970-4735-980F-0CCC0F0FA9AE is locked",
        r"\\fileserver\share\secret.xlsx",
        "at sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)",
        "timeout contacting 10.0.0.12:8443",
        "cannot read config.yaml in ~/secrets",
    ],
)
def test_a_reason_naming_internals_becomes_plain_words(reason):
    assert user_reason(reason) == TECHNICAL_PROBLEM


@pytest.mark.parametrize(
    "reason",
    [
        "Unknown customer 'Nobody Inc'",
        "3 task(s) failed",
        "the robot was stopped",
        "the order book is empty / closed",
    ],
)
def test_a_robots_own_words_pass(reason):
    assert user_reason(reason) == reason


def test_a_long_reason_is_cut_and_blank_is_none():
    assert len(user_reason("word " * 100) or "") == 200
    assert user_reason("  \n ") is None


def test_job_variables_name_the_job_by_title_and_reference_only():
    job = Job(
        new_job_id(),
        "collect_order_details",
        "local",
        "conv",
        state=JobState.FAILED,
        created_at=0,
        finished_at=150,
        progress=12.5,
        error="PermissionError: /etc/x",
    )
    found = job_variables(job, {"collect_order_details": "order report"})
    assert found["rpa_title"] == "order report"
    assert found["rpa_elapsed"] == "2 min"
    assert found["rpa_progress"] == 12.5
    assert found["rpa_error"] == TECHNICAL_PROBLEM
    assert job.id not in str(found.values())


def test_invisible_and_terminal_characters_never_reach_the_chat():
    reason = "Invoice \u202egnp.exe\u202c failed \x1b[31mred\x1b[0m\x07\u200b"
    assert user_reason(reason) == "Invoice gnp.exe failed red"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Found 3 orders for ACME", "Found 3 orders for ACME"),
        ("Step 1/3: 3.5 items/s", "Step 1/3: 3.5 items/s"),
        (
            "Reading /srv/secret/orders.csv via https://erp.internal/api?key=abc",
            "Reading … via …",
        ),
        (r"Done: C:\Users\svc\report.xlsx", "Done: …"),
        ("Traceback: KeyError 8035f4ca89704735980f0ccc0f0fa9ae", "…: … …"),
        ("https://erp.internal/x", None),
    ],
)
def test_a_robots_message_keeps_its_words_and_loses_its_internals(message, shown):
    assert user_message(message) == shown


def test_a_long_message_is_cut():
    assert len(user_message("word " * 40_000) or "") == 200


class _Bounded:
    """Stands in for a compiled pattern; scans at most ``most`` characters."""

    def __init__(self, pattern, most):
        self.pattern = pattern
        self.most = most

    def _check(self, text):
        assert len(text) <= self.most, f"scanned {len(text)} characters"

    def sub(self, repl, text, *args, **kwargs):
        self._check(text)
        return self.pattern.sub(repl, text, *args, **kwargs)

    def search(self, text, *args, **kwargs):
        self._check(text)
        return self.pattern.search(text, *args, **kwargs)


@pytest.mark.parametrize("words", [user_message, user_reason])
def test_a_long_message_is_cut_before_it_is_scanned(monkeypatch, words):
    """Found by the round-5 attack. ``_INTERNAL`` is tried at every position
    and several of its branches run to the end of a word (``[a-z][a-z0-9+.-]*://``,
    ``\\w*Error``), so a word without spaces costs its length squared: 16 K
    characters take ~1 s, a 260 K progress message (under
    callbacks.max_body_bytes) ~5 minutes, with the event loop blocked (the
    whole action server stops answering) and, on PostgreSQL, the job's row
    locked in an open transaction. The job keeps the message, so every later
    event of that job (and every status question) pays again. Only the first
    MOST_REASON_CHARS are ever shown: the scan needs no more than a bounded
    prefix.
    """
    import rasa_rpa.variables as variables

    most = 20 * variables.MOST_REASON_CHARS
    monkeypatch.setattr(variables, "_INTERNAL", _Bounded(variables._INTERNAL, most))
    words("x" * 250_000)
