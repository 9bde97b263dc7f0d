"""What every benchmark scenario shares: result rows, the servers it starts
on 127.0.0.1, and the requests it sends (built before the clock starts)."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from benchmarks.loadgen import build_request
from devtools.stack import ROOT, Service, action_service, free_port
from rasa_rpa.security import JobKeys, sign_webhook
from rasa_rpa.testing import action_call

__all__ = [
    "MASTER_KEY",
    "Row",
    "action_server",
    "combine",
    "drop_pg_schema",
    "instant_server",
    "percentile",
    "row",
    "signed_event",
    "start_job",
    "webhook_body",
]

MASTER_KEY = "benchmark-master-key-0123456789abcdef"
Row = dict[str, Any]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def row(
    ident: str,
    measure: str,
    value: float,
    baseline: float,
    unit: str,
    compare: str,
    target: float,
    **extra: Any,
) -> Row:
    """One result line; ``compare`` is ``ratio>=``, ``ratio<=``, ``diff<=``,
    ``value<=``, ``ratio`` for a figure that explains another and has no target, or
    ``shows`` for two settings side by side (score: the difference), no target.
    ``extra`` keys are added as they are (``runs=1`` for a figure run once)."""
    if compare == "shows":
        score = value - baseline
        ok = True
    elif compare == "ratio":
        score = value / baseline if baseline else 0.0
        ok = True
    elif compare == "ratio>=":
        score = value / baseline if baseline else 0.0
        ok = score >= target
    elif compare == "ratio<=":
        score = value / baseline if baseline else 0.0
        ok = bool(baseline) and score <= target
    elif compare == "diff<=":
        score = value - baseline
        ok = score <= target
    elif compare == "value>=":
        score = value
        ok = value >= target
    else:
        score = value
        ok = value <= target
    return {
        "id": ident,
        "measure": measure,
        "value": round(value, 3),
        "baseline": round(baseline, 3),
        "unit": unit,
        "compare": compare,
        "score": round(score, 3),
        "target": target,
        "ok": ok,
        **extra,
    }


def combine(runs: list[list[Row]]) -> list[Row]:
    """One row per figure from several runs of the same benchmarks.

    The machine is shared, so one run proves little: a figure is the median
    of its runs' values and baselines (score and verdict from those), with
    the smallest and largest score seen; a check holds only if it held in
    every run.
    """
    combined: list[Row] = []
    for rows in zip(*runs, strict=True):
        first = rows[0]
        if "value" not in first:
            combined.append({**first, "ok": all(r["ok"] for r in rows)})
            continue
        median = row(
            first["id"],
            first["measure"],
            statistics.median(r["value"] for r in rows),
            statistics.median(r["baseline"] for r in rows),
            first["unit"],
            first["compare"],
            first["target"],
        )
        scores = [r["score"] for r in rows]
        combined.append(
            {
                **first,
                **median,
                "runs": len(rows),
                "score_min": min(scores),
                "score_max": max(scores),
                "each": [
                    {k: r[k] for k in ("value", "baseline", "score")} for r in rows
                ],
            }
        )
    return combined


@contextmanager
def instant_server() -> Iterator[int]:
    """The instant stand-in in its own process; yields its port."""
    port = free_port()
    service = Service(
        "instant",
        [sys.executable, "-m", "benchmarks.instant", str(port)],
        f"http://127.0.0.1:{port}/_calls",
        ROOT / ".rasa-rpa" / "bench" / "instant.log",
    )
    service.start(timeout=30)
    try:
        yield port
    finally:
        service.stop()


@contextmanager
def with_instant(
    tmp: Path, store_url: str | None = None, **options: Any
) -> Iterator[int]:
    """An action server whose Rasa and robots are the instant stand-in.

    Yields the action server's port; ``options`` go to :func:`action_server`.
    """
    with instant_server() as instant:
        url = f"http://127.0.0.1:{instant}"
        with action_server(tmp, url, store_url, f"{url}/start", **options) as port:
            yield port


@contextmanager
def action_server(
    tmp: Path,
    rasa_url: str,
    store_url: str | None = None,
    provider_url: str = "http://127.0.0.1:9/",
    rasa_token: str = "bench-token",
    entry: tuple[str, ...] = ("rasa_rpa.cli", "run"),
    extra: dict[str, Any] | None = None,
) -> Iterator[int]:
    """rasa-rpa run with the benchmark's actions; yields its port.

    ``extra``: more top-level rpa.yml sections (``delivery``...).
    """
    port = free_port()
    config = {
        "version": 1,
        "rasa": {"url": rasa_url, "token": rasa_token},
        "callbacks": {
            "public_url": f"http://127.0.0.1:{port}",
            "secret": MASTER_KEY,
            "rate_limit": 1e9,
            "rate_burst": 1_000_000_000,
        },
        "store": {"url": store_url or f"sqlite:///{tmp / 'jobs.db'}"},
        "providers": {"instant": {"type": "webhook", "url": provider_url}},
        "automations": {
            "bench": {
                "provider": "instant",
                "task": "bench",
                "intent": "bench",
                "timeout": "1d",
            }
        },
        **(extra or {}),
    }
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "rpa.yml").write_text(yaml.safe_dump(config))
    service = action_service(
        port,
        config=tmp / "rpa.yml",
        log=tmp / "actions.log",
        actions="benchmarks.bench_actions",
        entry=entry,
    )
    service.start(timeout=60)
    try:
        yield port
    finally:
        service.stop()


def start_job(port: int, sender: str) -> str:
    """Start the ``bench`` automation as Rasa would; return the job id."""
    body = webhook_body("action_start_rpa_job", sender)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        events = json.load(response)["events"]
    job_id: str = next(e["value"] for e in events if e.get("name") == "rpa_job_id")
    return job_id


def webhook_body(action: str, sender: str) -> bytes:
    """What Rasa POSTs to /webhook to run ``action``."""
    call = action_call(action, sender, intent="bench", text="bench", channel="callback")
    return json.dumps(call).encode()


def signed_event(keys: JobKeys, job_id: str, event: dict[str, Any]) -> bytes:
    """A Standard-Webhooks-signed native callback request."""
    body = json.dumps(event).encode()
    stamp = int(time.time())
    signature = sign_webhook(keys.signing_secret(job_id), event["id"], stamp, body)
    return build_request(
        "POST",
        f"/rpa/v1/jobs/{job_id}/events",
        body,
        {
            "Content-Type": "application/json",
            "webhook-id": event["id"],
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        },
    )


def drop_pg_schema(name: str) -> None:
    """Drop a benchmark's PostgreSQL schema and everything in it."""
    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await connection.close()

    asyncio.run(drop())
