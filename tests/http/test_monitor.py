"""The monitor: its stats endpoint (auth and arithmetic) and the page it serves."""

from __future__ import annotations

import re
import statistics
import uuid

import pytest
import requests

from rasa_rpa.http.monitor import percentile, summarize
from rasa_rpa.models import Job, JobState

ADMIN = "test-admin-token"
FAIL = [{"entity": "fail", "value": "yes"}]
LOCKED = "Invoice INV-7 is locked by another user"


@pytest.fixture
def server(action_server, rasa_stand_in):
    return action_server(rasa_url=rasa_stand_in.url, admin={"token": ADMIN})


def stats(server, token=ADMIN, **params):
    return requests.get(
        f"{server.url}/rpa/v1/stats",
        params=params,
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
    )


def expected_percentiles(values):
    """statistics' inclusive quantiles: an independent check of the interpolation."""
    values = sorted(values)
    if len(values) == 1:
        return dict.fromkeys(("p50", "p90", "p99"), values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98]}


# -- arithmetic, no server ------------------------------------------------------


def test_percentile_interpolates_between_ranks():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0.5) == pytest.approx(2.5)
    assert percentile(values, 0.9) == pytest.approx(3.7)
    assert percentile(values, 0.99) == pytest.approx(3.97)
    assert percentile([7.0], 0.99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 0.5)


def job(automation, state, created, finished=None, error=None):
    return Job(
        id=uuid.uuid4().hex,
        automation=automation,
        provider="local",
        conversation_id="c",
        state=state,
        error=error,
        created_at=created,
        updated_at=finished or created,
        finished_at=finished,
    )


def test_summary_counts_every_state_and_times_only_finished_jobs():
    jobs = [
        job("a", JobState.SUCCEEDED, 100, 101),
        job("a", JobState.SUCCEEDED, 100, 103),
        job("a", JobState.FAILED, 100, 110, error="boom"),
        job("a", JobState.RUNNING, 100),
        job("b", JobState.EXPIRED, 100, 700),
        job("b", JobState.FAILED, 100, 105, error="boom"),
        job("b", JobState.CANCELLED, 100, 102),
    ]
    summary = summarize(jobs)
    assert summary["sampled"] == 7
    assert summary["states"] == {
        "pending": 0,
        "running": 1,
        "succeeded": 2,
        "failed": 2,
        "cancelled": 1,
        "expired": 1,
    }
    a = summary["automations"]["a"]
    assert a["jobs"] == 4
    assert a["duration"]["count"] == 3  # the running job has no duration yet
    assert a["duration"]["p50"] == pytest.approx(3.0)
    assert a["duration"]["max"] == pytest.approx(10.0)
    for key, value in expected_percentiles([1.0, 3.0, 10.0]).items():
        assert a["duration"][key] == pytest.approx(value)
    # Failed and expired jobs are failure reasons; cancelled ones are not.
    reasons = [(f["error"], f["count"], f["automations"]) for f in summary["failures"]]
    assert reasons == [
        ("boom", 2, ["a", "b"]),
        ("expired without a reason", 1, ["b"]),
    ]
    empty = summarize([job("c", JobState.PENDING, 100)])["automations"]["c"]
    assert empty["duration"] == {
        "count": 0,
        "p50": None,
        "p90": None,
        "p99": None,
        "max": None,
    }


# -- over HTTP ---------------------------------------------------------------------


def test_stats_need_the_admin_token(server):
    assert requests.get(f"{server.url}/rpa/v1/stats", timeout=5).status_code == 401
    response = stats(server, token="wrong")
    assert response.status_code == 401
    assert response.json()["error"]["code"]


def test_stats_are_off_without_an_admin_token(action_server):
    server = action_server()
    response = requests.get(f"{server.url}/rpa/v1/stats", timeout=5)
    assert response.status_code == 403
    assert "admin.token" in response.json()["error"]["message"]


def test_stats_of_real_jobs(server):
    sender = uuid.uuid4().hex
    ok = server.start_job(sender, intent="chat")
    bad = server.start_job(sender, intent="chat", entities=FAIL)
    missing = server.start_job(uuid.uuid4().hex, intent="missing")
    server.wait_job(ok, sender, "succeeded")
    assert server.wait_job(bad, sender, "failed")["error"] == LOCKED

    body = stats(server).json()
    assert body["limit"] == 1000
    assert body["sampled"] == 3
    assert body["states"] == {
        "pending": 0,
        "running": 0,
        "succeeded": 1,
        "failed": 2,
        "cancelled": 0,
        "expired": 0,
    }
    listed = requests.get(
        f"{server.url}/rpa/v1/jobs",
        timeout=10,
        headers={"Authorization": f"Bearer {ADMIN}"},
    ).json()["jobs"]
    by_id = {j["id"]: j for j in listed}
    chatty = body["automations"]["chatty"]
    assert chatty["jobs"] == 2
    assert chatty["states"]["succeeded"] == 1 and chatty["states"]["failed"] == 1
    waits = [by_id[i]["finished_at"] - by_id[i]["created_at"] for i in (ok, bad)]
    assert chatty["duration"]["count"] == 2
    assert chatty["duration"]["max"] == pytest.approx(max(waits))
    for key, value in expected_percentiles(waits).items():
        assert chatty["duration"][key] == pytest.approx(value)
    assert 0 < chatty["duration"]["p50"] < 60
    assert body["automations"]["missing"]["duration"]["count"] == 1

    reasons = {f["error"]: f for f in body["failures"]}
    assert reasons[LOCKED]["count"] == 1
    assert reasons[LOCKED]["automations"] == ["chatty"]
    assert reasons[LOCKED]["last_at"] == pytest.approx(by_id[bad]["finished_at"])
    assert reasons[by_id[missing]["error"]]["automations"] == ["missing"]

    newest = stats(server, limit=1).json()
    assert newest["sampled"] == 1 and newest["limit"] == 1
    assert stats(server, limit="lots").status_code == 400
    assert stats(server, limit=0).status_code == 400


def test_page_needs_no_token_and_loads_nothing_from_elsewhere(server):
    response = requests.get(f"{server.url}/rpa/ui", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert "unsafe-inline" not in policy
    page = response.text
    # The only absolute URL is the SVG namespace, which is never fetched.
    assert set(re.findall(r"https?://[^\s\"'`<>)]+", page)) == {
        "http://www.w3.org/2000/svg"
    }
    assert "<script src" not in page and '<link rel="stylesheet"' not in page
    assert 'id="jobs-table"' in page
