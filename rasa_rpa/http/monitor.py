"""The operator monitor: one page at ``GET /rpa/ui`` and the figures it charts.

* ``GET /rpa/ui``: the page (static HTML, no secrets in it, so no auth).
* ``GET /rpa/v1/stats?limit=``: jobs per state, duration percentiles per
  automation and the most common failure reasons, behind ``admin.token``.

The page holds no data of its own: it asks the operator for the admin token
(kept in ``sessionStorage`` only, gone with the tab) and reads everything from
the admin API, so it can show nothing the API would not. It is one
self-contained file with inline CSS and JS because operators often sit on
closed networks where a CDN or web font would never load. The page is served
with a Content-Security-Policy that allows exactly its own inline script and
style (by hash) and calls to this origin only: job errors and chat messages
come from robots, and a robot's text must never run as script where the admin
token lives.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, raw

from rasa_rpa.http.admin import MAX_LIMIT, query_limit, require_admin
from rasa_rpa.http.common import install_error_handlers, json, runtime_of
from rasa_rpa.models import FINAL_STATES, Job, JobState

__all__ = ["PAGE_PATH", "monitor_blueprint", "percentile", "summarize"]

monitor_blueprint = Blueprint("rasa_rpa_monitor", url_prefix="/rpa")

PAGE_PATH = Path(__file__).with_name("monitor.html")
#: Percentiles reported per automation, as ``(key, fraction)``.
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))
#: How many distinct failure reasons the stats list, most frequent first.
MAX_REASONS = 20
#: States whose ``error`` is a failure reason worth an operator's attention.
FAILURE_STATES = frozenset({JobState.FAILED, JobState.EXPIRED})


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method).

    Chosen over nearest-rank so that p99 of a handful of runs still moves with
    the slowest one instead of jumping between samples; it equals
    ``statistics.quantiles(values, n=100, method="inclusive")``.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    base = sorted_values[low]
    return base + (sorted_values[high] - base) * (position - low)


def _state_counts(jobs: Iterable[Job]) -> dict[str, int]:
    """Every state, zero included, so a chart keeps its bars in a stable order."""
    counts = Counter(job.state.value for job in jobs)
    return {state.value: counts.get(state.value, 0) for state in JobState}


def _durations(jobs: Iterable[Job]) -> dict[str, Any]:
    """Percentiles of ``finished_at - created_at``: what a user waits, in seconds.

    Measured from creation rather than the robot's start because the user's
    wait begins when the bot says "started", queueing on the provider included.
    Unfinished jobs are left out: their duration is not known yet.
    """
    values = sorted(
        max(0.0, job.finished_at - job.created_at)
        for job in jobs
        if job.finished_at is not None and job.state in FINAL_STATES
    )
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    result: dict[str, Any] = {"count": len(values)}
    for key, fraction in PERCENTILES:
        result[key] = percentile(values, fraction)
    result["max"] = values[-1]
    return result


def _failure_reasons(jobs: Iterable[Job]) -> list[dict[str, Any]]:
    """Failed and expired jobs grouped by their error, most frequent first.

    Grouping by the exact text is deliberate: robots word their own errors,
    and the same text many times over is what an operator needs to spot.
    """
    groups: dict[str, dict[str, Any]] = {}
    for job in jobs:
        if job.state not in FAILURE_STATES:
            continue
        reason = (job.error or "").strip() or f"{job.state.value} without a reason"
        group = groups.setdefault(
            reason,
            {"error": reason, "count": 0, "automations": set(), "last_at": 0.0},
        )
        group["count"] += 1
        group["automations"].add(job.automation)
        group["last_at"] = max(group["last_at"], job.finished_at or job.updated_at)
    ordered = sorted(groups.values(), key=lambda g: (-g["count"], -g["last_at"]))
    return [
        {**group, "automations": sorted(group["automations"])}
        for group in ordered[:MAX_REASONS]
    ]


def summarize(jobs: Sequence[Job]) -> dict[str, Any]:
    """The stats document for ``jobs`` (the newest ones, as the store lists them).

    Kept free of I/O so the arithmetic can be tested without a server.
    """
    by_automation: dict[str, list[Job]] = {}
    for job in jobs:
        by_automation.setdefault(job.automation, []).append(job)
    return {
        "sampled": len(jobs),
        "states": _state_counts(jobs),
        "automations": {
            name: {
                "jobs": len(group),
                "states": _state_counts(group),
                "duration": _durations(group),
            }
            for name, group in sorted(by_automation.items())
        },
        "failures": _failure_reasons(jobs),
    }


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@cache
def _page() -> tuple[bytes, dict[str, str]]:
    """The page and its headers, read once per worker.

    The CSP hashes are computed from the file itself, so editing the page
    never leaves a stale policy behind that silently blocks its script.
    """
    html = PAGE_PATH.read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    styles = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(_csp_hash(s) for s in scripts),
            "style-src " + " ".join(_csp_hash(s) for s in styles),
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return html.encode("utf-8"), headers


@monitor_blueprint.get("/ui")
async def monitor_page(request: Request) -> HTTPResponse:
    """The monitor page; every figure on it comes from the admin API."""
    body, headers = _page()
    return raw(body, content_type="text/html; charset=utf-8", headers=headers)


@monitor_blueprint.get("/v1/stats")
async def stats(request: Request) -> HTTPResponse:
    """Jobs per state, duration percentiles and failure reasons of the newest jobs."""
    runtime = runtime_of(request)
    require_admin(runtime, request)
    limit = query_limit(request, MAX_LIMIT)
    jobs = await runtime.store.list_jobs(limit=limit)
    return json({"limit": limit, **summarize(jobs)})


install_error_handlers(monitor_blueprint)
