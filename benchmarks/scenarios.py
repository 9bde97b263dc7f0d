"""The measures of issue #5, each next to a baseline taken in the same run.

Every scenario starts what it needs (an action server with rasa-rpa, an
instant HTTP stand-in, the real Rasa for P2) on 127.0.0.1, measures, stops
everything, and returns rows: ``{id, measure, value, baseline, unit,
compare, target, ok}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import statistics
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from benchmarks.loadgen import build_request, run_load, sequential_latencies
from devtools.stack import ROOT, Service, action_service, free_port, wait_http
from rasa_rpa.security import JobKeys, sign_webhook

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
) -> Row:
    """One result line; ``compare`` is ``ratio>=``, ``diff<=``, ``value<=``,
    or ``ratio`` for a figure that explains another and has no target."""
    if compare == "ratio":
        score = value / baseline if baseline else 0.0
        ok = True
    elif compare == "ratio>=":
        score = value / baseline if baseline else 0.0
        ok = score >= target
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
    }


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
def action_server(
    tmp: Path,
    rasa_url: str,
    store_url: str | None = None,
    provider_url: str = "http://127.0.0.1:9/",
    rasa_token: str = "bench-token",
    entry: tuple[str, ...] = ("rasa_rpa.cli", "run"),
) -> Iterator[int]:
    """rasa-rpa run with the benchmark's actions; yields its port."""
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
    tracker = {
        "sender_id": sender,
        "slots": {},
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": None,
        "latest_message": {
            "intent": {"name": "bench"},
            "entities": [],
            "text": "bench",
        },
        "latest_event_time": time.time(),
        "latest_input_channel": "callback",
    }
    return json.dumps(
        {
            "next_action": action,
            "sender_id": sender,
            "tracker": tracker,
            "domain": {"responses": {}},
            "version": "3.6.21",
        }
    ).encode()


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


def p1_callbacks(
    tmp: Path,
    count: int,
    store_url: str | None = None,
    label: str = "SQLite",
    target: float = 0.5,
    floors: bool = False,
) -> list[Row]:
    """P1: signed callbacks accepted and stored per second vs bare GET /health.

    With ``floors``, the same signed requests also go to the floor routes of
    :mod:`benchmarks.floor` (answered at once; verified but not stored), to
    show where the distance between /health and a stored callback goes.
    """
    keys = JobKeys(MASTER_KEY)
    with (
        instant_server() as instant,
        action_server(
            tmp,
            f"http://127.0.0.1:{instant}",
            store_url,
            f"http://127.0.0.1:{instant}/start",
            entry=("benchmarks.floor",),
        ) as port,
    ):
        jobs = [start_job(port, f"p1-{n}") for n in range(20)]
        health = [build_request("GET", "/health")] * count
        callbacks = [
            signed_event(
                keys,
                jobs[n % len(jobs)],
                {
                    "id": uuid.uuid4().hex,
                    "type": "job.progress",
                    "data": {"progress": n % 100, "message": "step"},
                },
            )
            for n in range(count)
        ]
        run_load(port, health[: count // 10])  # warm-up
        baseline = run_load(port, health)
        explained: list[Row] = []
        for route, measure in (
            ("/bench/floor/", "floor: same POST answered at once (no work)"),
            ("/bench/checks/", "floor: signature+payload checked, not stored"),
        ):
            if floors:
                same = [
                    c.replace(b"/rpa/v1/jobs/", route.encode(), 1) for c in callbacks
                ]
                run = run_load(port, same)
                explained.append(
                    row("P1", measure, run.per_second, baseline.per_second,
                        "req/s", "ratio", 0.0)
                )  # fmt: skip
        measured = run_load(port, callbacks)
    accepted = measured.statuses.get(202, 0)
    stored = _stored_events(tmp, store_url)
    alone = store_alone(tmp, store_url, count)
    return [
        row(
            "P1",
            f"signed callbacks stored/s ({label}) vs GET /health/s",
            accepted / measured.seconds,
            baseline.per_second,
            "req/s",
            "ratio>=",
            target,
        ),
        *explained,
        row(
            "P1",
            f"floor: {label} store alone, 16-event batches back to back",
            alone,
            baseline.per_second,
            "ev/s",
            "ratio",
            0.0,
        ),
        {
            "id": "P1",
            "measure": f"P1 check ({label}): accepted {accepted}/{count},"
            f" stored {stored}, answers {measured.statuses}",
            # Backpressure (503, 429) is allowed; an accepted callback not stored
            # is not.
            "ok": stored == accepted and accepted >= count * 0.95,
        },
    ]


def store_alone(tmp: Path, store_url: str | None, count: int) -> float:
    """Events/s the store records with no HTTP in front: the write path's ceiling.

    Batches of 16 (what P1's 16 connections can have in flight at most) over
    the same 20 jobs, one batch at a time, with a fresh store beside P1's.
    """
    from rasa_rpa.models import EventType, Job, JobEvent
    from rasa_rpa.stores import open_store

    url = store_url or f"sqlite:///{tmp / 'alone.db'}"
    if store_url is not None:
        url = store_url.replace("schema=", "schema=alone_")

    async def run() -> float:
        store = open_store(url, tmp)
        await store.open()
        try:
            for n in range(20):
                await store.create_job(
                    Job(id=f"alone-{n}", automation="bench", provider="p",
                        conversation_id=f"alone-{n}")
                )  # fmt: skip
            events = [
                JobEvent(uuid.uuid4().hex, f"alone-{n % 20}", EventType.PROGRESS,
                         {"progress": n % 100, "message": "step"})
                for n in range(count)
            ]  # fmt: skip
            started = time.perf_counter()
            for first in range(0, count, 16):
                await store.record_events(
                    [(e, None) for e in events[first : first + 16]]
                )
            return count / (time.perf_counter() - started)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    finally:
        if store_url is not None:
            schema = url.split("schema=", 1)[1].split("&", 1)[0]
            drop_pg_schema(schema)


def drop_pg_schema(name: str) -> None:
    """Drop a benchmark's PostgreSQL schema and everything in it."""
    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        await connection.close()

    asyncio.run(drop())


def _stored_events(tmp: Path, store_url: str | None) -> int:
    if store_url is None:
        with sqlite3.connect(tmp / "jobs.db") as db:
            return int(
                db.execute(
                    "SELECT COUNT(*) FROM job_events WHERE type='job.progress'"
                ).fetchone()[0]
            )

    async def count() -> int:
        import asyncpg

        from rasa_rpa.stores.postgres import PostgresJobStore

        store = PostgresJobStore.from_url(store_url, tmp)
        await store.open()
        async with store._pool.acquire() as connection:
            value = await connection.fetchval(
                "SELECT COUNT(*) FROM job_events WHERE type='job.progress'"
            )
        await store.close()
        del asyncpg
        return int(value)

    return asyncio.run(count())


def p3_start_action(tmp: Path, count: int) -> list[Row]:
    """P3: /webhook latency of the start action vs a trivial action (p50)."""
    with (
        instant_server() as instant,
        action_server(
            tmp,
            f"http://127.0.0.1:{instant}",
            None,
            f"http://127.0.0.1:{instant}/start",
        ) as port,
    ):

        def calls(action: str) -> list[bytes]:
            return [
                build_request(
                    "POST",
                    "/webhook",
                    webhook_body(action, f"p3-{n}"),
                    {"Content-Type": "application/json"},
                )
                for n in range(count)
            ]

        sequential_latencies(port, calls("action_noop")[:20])  # warm-up
        noop = sequential_latencies(port, calls("action_noop"))
        start = sequential_latencies(port, calls("action_start_rpa_job"))
    return [
        row(
            "P3",
            "start action /webhook p50 vs trivial action p50",
            statistics.median(start) * 1000,
            statistics.median(noop) * 1000,
            "ms",
            "diff<=",
            5.0,
        )
    ]


def p4_drain(tmp: Path, count: int, conversations: int = 50) -> list[Row]:
    """P4: outbox drain to an instant Rasa stand-in, in order per conversation."""
    from rasa_rpa.config import config_from_dict
    from rasa_rpa.delivery import OutboxDispatcher, RasaClient
    from rasa_rpa.models import EventType, Job, JobEvent
    from rasa_rpa.stores.sqlite import SQLiteJobStore

    with instant_server() as instant:
        url = f"http://127.0.0.1:{instant}"
        config = config_from_dict({"rasa": {"url": url, "token": "t"}}, base_dir=tmp)

        async def run() -> tuple[float, float, dict[str, list[Any]]]:
            tmp.mkdir(parents=True, exist_ok=True)
            store = SQLiteJobStore(tmp / "drain.db")
            await store.open()
            for c in range(conversations):
                await store.create_job(
                    Job(
                        id=f"j{c}",
                        automation="a",
                        provider="p",
                        conversation_id=f"c{c}",
                    )
                )
            for n in range(count):
                c = n % conversations
                await store.record_event(
                    JobEvent(
                        f"e{n}",
                        f"j{c}",
                        EventType.PROGRESS,
                        {"progress": n // conversations},
                    )
                )
            rasa = RasaClient(config.rasa)
            dispatcher = OutboxDispatcher(store, rasa, config.delivery)
            started = time.perf_counter()
            while await dispatcher.drain_once():
                pass
            drained = time.perf_counter() - started
            # Baseline: the same number of calls straight from aiohttp, with
            # the dispatcher's concurrency, and no store at all.
            import aiohttp

            limit = asyncio.Semaphore(config.delivery.concurrency)
            body = {"name": "EXTERNAL_rpa_job_progress", "entities": {}}
            async with aiohttp.ClientSession(url) as client:

                async def one() -> None:
                    async with limit, client.post("/raw/x", json=body) as response:
                        await response.read()

                started = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(count)))
                raw = time.perf_counter() - started
            await rasa.aclose()
            await store.close()
            with urllib.request.urlopen(f"{url}/_calls", timeout=10) as response:
                calls = json.load(response)
            return drained, raw, calls

        drained, raw, calls = asyncio.run(run())
    in_order = all(
        calls.get(f"c{c}") == list(range(count // conversations))
        for c in range(conversations)
    )
    return [
        row(
            "P4",
            "outbox drained/s vs raw aiohttp posts/s (same concurrency)",
            count / drained,
            count / raw,
            "msg/s",
            "value>=",
            1000.0,
        )
        | {"ok": count / drained >= 1000.0 and in_order},
        {
            "id": "P4",
            "measure": f"P4 check: in order per conversation: {in_order}",
            "ok": in_order,
        },
    ]


def p5_many_jobs(tmp: Path, jobs: int, lookups: int) -> list[Row]:
    """P5: status lookup p99 and server RSS with ``jobs`` jobs in flight."""
    from rasa_rpa.models import Job, JobState
    from rasa_rpa.stores.sqlite import SQLiteJobStore

    async def fill() -> list[tuple[str, str]]:
        tmp.mkdir(parents=True, exist_ok=True)
        store = SQLiteJobStore(tmp / "jobs.db")
        await store.open()
        ids = []
        now = time.time()
        for n in range(jobs):
            job = Job(
                id=uuid.uuid4().hex,
                automation="bench",
                provider="instant",
                conversation_id=f"p5-{n}",
                state=JobState.RUNNING,
                deadline_at=now + 86400,
            )
            await store.create_job(job)
            ids.append((job.id, job.conversation_id))
        await store.close()
        return ids

    ids = asyncio.run(fill())
    keys = JobKeys(MASTER_KEY)
    sample = random.sample(ids, min(lookups, len(ids)))
    requests = [
        build_request(
            "GET",
            f"/rpa/v1/jobs/{job_id}",
            headers={"Authorization": f"Bearer {keys.mint_token(job_id, conv)}"},
        )
        for job_id, conv in sample
    ]
    with (
        instant_server() as instant,
        action_server(tmp, f"http://127.0.0.1:{instant}") as port,
    ):
        health = sequential_latencies(port, [build_request("GET", "/health")] * lookups)
        status = sequential_latencies(port, requests)
        rss = _server_rss_mb(port)
    return [
        row(
            "P5",
            f"status lookup p99 with {jobs} jobs in flight",
            percentile(status, 99) * 1000,
            percentile(health, 99) * 1000,
            "ms",
            "value<=",
            5.0,
        ),
        row("P5", "action server worker RSS", rss, 0.0, "MB", "value<=", 200.0),
    ]


def _server_rss_mb(port: int) -> float:
    """RSS of the process listening on ``port`` (the Sanic worker)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            inode = fields[9]
    best = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [str(p.readlink()) for p in (proc / "fd").iterdir()]
            if f"socket:[{inode}]" not in links:
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                best = max(best, int(line.split()[1]) / 1024)
    return best


def p2_rasa_latency(tmp: Path, count: int) -> list[Row]:
    """P2: callback → bot message in the real Rasa vs a direct trigger_intent."""
    from devtools.stack import MODEL, rasa_service
    from tests.e2e.stack import Inbox

    inbox = Inbox()
    rasa_port = free_port()
    token = "bench-rasa-token"
    tmp.mkdir(parents=True, exist_ok=True)
    with (
        instant_server() as instant,
        action_server(
            tmp,
            f"http://127.0.0.1:{rasa_port}",
            None,
            f"http://127.0.0.1:{instant}/start",
            rasa_token=token,
        ) as port,
    ):
        endpoints = tmp / "endpoints.yml"
        endpoints.write_text(
            yaml.safe_dump(
                {"action_endpoint": {"url": f"http://127.0.0.1:{port}/webhook"}}
            )
        )
        credentials = tmp / "credentials.yml"
        credentials.write_text(yaml.safe_dump({"callback": {"url": inbox.url}}))
        rasa = rasa_service(
            rasa_port,
            token=token,
            endpoints=endpoints,
            credentials=credentials,
            log=tmp / "rasa.log",
            model=MODEL,
            cwd=tmp,
        )
        rasa.start(timeout=240)
        try:
            return _p2_measure(tmp, port, rasa_port, token, inbox, count)
        finally:
            rasa.stop()


def _p2_measure(
    tmp: Path, port: int, rasa_port: int, token: str, inbox: Any, count: int
) -> list[Row]:
    sender = f"p2-{uuid.uuid4().hex[:8]}"
    _post(
        f"http://127.0.0.1:{rasa_port}/webhooks/callback/webhook",
        {"sender": sender, "message": "hi"},
    )
    inbox.wait_text(sender, r"Hi!")
    job_id = start_job(port, sender)
    keys = JobKeys(MASTER_KEY)
    ours, direct = [], []
    for n in range(count):
        marker = f"via-plugin-{n}"
        started = time.perf_counter()
        _post(
            f"http://127.0.0.1:{port}/rpa/v1/jobs/{job_id}/events",
            {
                "id": uuid.uuid4().hex,
                "type": "job.progress",
                "data": {"progress": n % 100, "message": marker},
            },
            {"Authorization": f"Bearer {keys.mint_token(job_id, sender)}"},
        )
        inbox.wait_text(sender, marker, timeout=30)
        ours.append(time.perf_counter() - started)
        marker = f"direct-{n}"
        started = time.perf_counter()
        _post(
            f"http://127.0.0.1:{rasa_port}/conversations/{sender}/trigger_intent"
            f"?output_channel=latest&include_events=NONE&token={token}",
            {
                "name": "EXTERNAL_rpa_job_progress",
                "entities": {"rpa_progress": n % 100, "rpa_message": marker},
            },
        )
        inbox.wait_text(sender, marker, timeout=30)
        direct.append(time.perf_counter() - started)
    return [
        row(
            "P2",
            "callback → bot message p50 vs direct trigger_intent p50",
            statistics.median(ours) * 1000,
            statistics.median(direct) * 1000,
            "ms",
            "diff<=",
            10.0,
        ),
        row(
            "P2",
            "callback → bot message p99 vs direct trigger_intent p99",
            percentile(ours, 99) * 1000,
            percentile(direct, 99) * 1000,
            "ms",
            "diff<=",
            30.0,
        ),
    ]


def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


__all__ = [
    "p1_callbacks",
    "p2_rasa_latency",
    "p3_start_action",
    "p4_drain",
    "p5_many_jobs",
    "percentile",
    "row",
    "wait_http",
]
