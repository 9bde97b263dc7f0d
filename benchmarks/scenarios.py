"""P3-P5 of issue #5 (P1 is in :mod:`benchmarks.p1`, P2 and P6 with the
real Rasa in :mod:`benchmarks.withrasa`), each next to a baseline
taken in the same run.

Every scenario starts what it needs (an action server with rasa-rpa, an
instant HTTP stand-in) on 127.0.0.1, measures, stops
everything, and returns rows: ``{id, measure, value, baseline, unit,
compare, target, ok}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    MASTER_KEY,
    Row,
    action_server,
    instant_server,
    percentile,
    row,
    webhook_body,
    with_instant,
)
from benchmarks.loadgen import build_request, sequential_latencies
from rasa_rpa.security import JobKeys

__all__ = ["p3_start_action", "p4_drain", "p5_many_jobs"]


def p3_start_action(tmp: Path, count: int) -> list[Row]:
    """P3: /webhook latency of the start action vs a trivial action (p50)."""
    with with_instant(tmp) as port:

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
            1.5,
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
        # Every message sent, none coalesced: this measures the drain itself.
        config = config_from_dict(
            {
                "rasa": {"url": url, "token": "t"},
                "delivery": {"coalesce_progress": False},
            },
            base_dir=tmp,
        )

        async def run() -> tuple[float, float, float, float, dict[str, list[Any]]]:
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
            started, cpu = time.perf_counter(), time.process_time()
            while await dispatcher.drain_once():
                pass
            drained = time.perf_counter() - started
            drained_cpu = time.process_time() - cpu
            # Baseline: the same number of calls straight from aiohttp, with
            # the dispatcher's concurrency, and no store at all.
            import aiohttp

            limit = asyncio.Semaphore(config.delivery.concurrency)
            body = {"name": "EXTERNAL_rpa_job_progress", "entities": {}}
            async with aiohttp.ClientSession(url) as client:

                async def one() -> None:
                    async with limit, client.post("/raw/x", json=body) as response:
                        await response.read()

                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(one() for _ in range(count)))
                raw = time.perf_counter() - started
                raw_cpu = time.process_time() - cpu
            await rasa.aclose()
            await store.close()
            with urllib.request.urlopen(f"{url}/_calls", timeout=10) as response:
                calls = json.load(response)
            return drained, raw, drained_cpu, raw_cpu, calls

        drained, raw, drained_cpu, raw_cpu, calls = asyncio.run(run())
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
            "ratio>=",
            0.8,
        ),
        # The same two, per second of this process's CPU: what the store
        # costs the event loop, whatever share of the cores the shared
        # machine left the benchmark in each phase.
        row(
            "P4",
            "outbox drained vs raw posts, per CPU-second of this process",
            count / drained_cpu,
            count / raw_cpu,
            "msg/CPU-s",
            "ratio",
            0.0,
        ),
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
            2.0,
        ),
        row("P5", "action server worker RSS", rss, 0.0, "MB", "value<=", 150.0),
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
