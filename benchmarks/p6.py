"""P6, fan-in: many robots report at once into the real Rasa.

``jobs`` jobs in as many conversations each send ``updates`` progress
updates and a result, as fast as the robots can, to ``rasa-rpa run``; the
clock stops when Rasa has answered every outbox message (so every update is
in its tracker). The baseline posts the very same intents (read back from the
bridge's outbox) straight to Rasa's ``trigger_intent``, in order per
conversation, at several concurrencies; the best one counts.

The same flood, sent once with progress coalescing off and once on, also
gives what a user sees when robots report faster than Rasa absorbs: the time
from a job's final callback to its final message in the chat.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import (
    MASTER_KEY,
    Row,
    action_server,
    percentile,
    row,
    start_job,
)
from benchmarks.withrasa import TOKEN, RasaStack, say_hi
from rasa_rpa.security import JobKeys

__all__ = ["p6_fan_in"]

#: Callbacks in flight at once: many robots, each waiting for its answer.
ROBOTS = 64


def p6_fan_in(
    stack: RasaStack,
    tmp: Path,
    jobs: int,
    updates: int,
    concurrencies: tuple[int, ...],
) -> list[Row]:
    """P6 on a running Rasa, with an action server of its own for each setting."""
    with _bridge(stack, tmp / "off", coalesce=False) as bridge:
        off = _flood(bridge, "off", jobs, updates)
        intents = _sent_intents(bridge.db)
    direct = {c: _direct(stack, intents, c) for c in concurrencies}
    best = min(direct, key=lambda c: direct[c])
    with _bridge(stack, tmp / "on", coalesce=True) as bridge:
        on = _flood(bridge, "on", jobs, updates)
    total = jobs * (updates + 1)
    return [
        row(
            "P6",
            f"fan-in {jobs}x{updates + 1} updates into Rasa/s vs direct"
            " trigger_intent/s (best concurrency)",
            total / off["seconds"],
            total / direct[best],
            "upd/s",
            "ratio>=",
            0.9,
        )
        | {
            "best_concurrency": best,
            "direct_by_concurrency": {str(c): total / t for c, t in direct.items()},
        },
        {
            "id": "P6",
            "measure": "P6 check: every update in its tracker, in order per"
            f" conversation: {off['in_order']}",
            "ok": off["in_order"],
        },
        row(
            "P6",
            "final callback → final message p50, coalescing on vs off",
            statistics.median(on["final"]) * 1000,
            statistics.median(off["final"]) * 1000,
            "ms",
            "shows",
            0.0,
        ),
        row(
            "P6",
            "final callback → final message p99, coalescing on vs off",
            percentile(on["final"], 99) * 1000,
            percentile(off["final"], 99) * 1000,
            "ms",
            "shows",
            0.0,
        ),
        {
            "id": "P6",
            "measure": "P6 check: with coalescing, each conversation still ends"
            f" with its result, progress rising: {on['in_order']}",
            "ok": on["in_order"],
        },
    ]


@contextmanager
def _bridge(stack: RasaStack, tmp: Path, *, coalesce: bool) -> Iterator[RasaStack]:
    """Another ``rasa-rpa run`` on the same Rasa, with a fresh store.

    Rasa runs no custom action for these intents, so its action endpoint
    can stay pointed at the stack's own server.
    """
    with action_server(
        tmp,
        f"http://127.0.0.1:{stack.rasa}",
        None,
        stack.provider_url,
        rasa_token=TOKEN,
        extra={"delivery": {"coalesce_progress": coalesce}},
    ) as port:
        yield RasaStack(
            port, stack.rasa, stack.inbox, tmp / "jobs.db", stack.provider_url
        )


def _flood(stack: RasaStack, tag: str, jobs: int, updates: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    senders = [f"p6-{tag}-{run}-{n}" for n in range(jobs)]
    # Each conversation starts with the user saying hi, so Rasa knows the
    # channel to push to (output_channel=latest), as in a real chat.
    for sender in senders:
        say_hi(stack, sender)
    job_ids = [start_job(stack.actions, sender) for sender in senders]
    started, final_sent = asyncio.run(_robots(stack.actions, senders, job_ids, updates))
    deadline = time.monotonic() + 600
    while stack.pending():
        if time.monotonic() > deadline:
            raise RuntimeError("P6: the outbox did not drain in 10 minutes")
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    final = [stack.inbox.arrived_at[s][-1] - final_sent[s] for s in senders]
    trackers = asyncio.run(_trackers(stack.rasa, senders))
    exact = [*(f"progress {k}" for k in range(1, updates + 1)), "succeeded"]
    if tag == "off":
        in_order = all(t == exact for t in trackers)
    else:
        in_order = all(_rising(t, updates) for t in trackers)
    return {"seconds": seconds, "final": final, "in_order": in_order}


def _rising(said: list[str], updates: int) -> bool:
    """Progress only ever rises, the newest is there, the result comes last."""
    figures = [int(s.split()[1]) for s in said[:-1] if s.startswith("progress ")]
    return (
        said[-1:] == ["succeeded"]
        and len(figures) == len(said) - 1
        and figures == sorted(set(figures))
        and figures[-1:] == [updates]
    )


async def _robots(
    port: int, senders: list[str], job_ids: list[str], updates: int
) -> tuple[float, dict[str, float]]:
    """Every job reports in order, all jobs at once: when the first callback
    went, and when each job sent its result."""
    keys = JobKeys(MASTER_KEY)
    limit = asyncio.Semaphore(ROBOTS)
    final_sent: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=ROBOTS)
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{port}", connector=connector
    ) as client:

        async def post(job_id: str, sender: str, event: dict[str, Any]) -> None:
            headers = {"Authorization": f"Bearer {keys.mint_token(job_id, sender)}"}
            async with limit:
                if event["type"] == "job.succeeded":
                    final_sent[sender] = time.perf_counter()
                async with client.post(
                    f"/rpa/v1/jobs/{job_id}/events", json=event, headers=headers
                ) as response:
                    if response.status >= 300:
                        raise RuntimeError(f"callback answered {response.status}")

        async def robot(job_id: str, sender: str) -> None:
            for k in range(1, updates + 1):
                event = {
                    "id": uuid.uuid4().hex,
                    "type": "job.progress",
                    "data": {"progress": k, "message": f"step {k}"},
                }
                await post(job_id, sender, event)
            await post(
                job_id, sender, {"id": uuid.uuid4().hex, "type": "job.succeeded"}
            )

        started = time.perf_counter()
        await asyncio.gather(
            *(robot(j, s) for j, s in zip(job_ids, senders, strict=True))
        )
    return started, final_sent


def _sent_intents(db_path: Path) -> list[tuple[str, dict[str, Any]]]:
    """What the bridge sent Rasa, oldest first: (conversation, intent body)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT conversation_id, payload FROM outbox WHERE kind = 'intent'"
            " AND conversation_id LIKE 'p6-%' ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    return [(conversation, json.loads(payload)) for conversation, payload in rows]


def _direct(
    stack: RasaStack, intents: list[tuple[str, dict[str, Any]]], concurrency: int
) -> float:
    """The same intents straight to Rasa, in order per (fresh) conversation."""
    run = uuid.uuid4().hex[:6]
    by_conversation: dict[str, list[dict[str, Any]]] = {}
    for conversation, body in intents:
        by_conversation.setdefault(f"p6d-{run}-{conversation}", []).append(body)
    for sender in by_conversation:
        say_hi(stack, sender)
    return asyncio.run(_post_direct(stack.rasa, by_conversation, concurrency))


async def _post_direct(
    rasa: int, by_conversation: dict[str, list[dict[str, Any]]], concurrency: int
) -> float:
    limit = asyncio.Semaphore(concurrency)
    params = {"output_channel": "latest", "include_events": "NONE", "token": TOKEN}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{rasa}", connector=connector
    ) as client:

        async def conversation(sender: str, bodies: list[dict[str, Any]]) -> None:
            for n, body in enumerate(bodies):
                tagged = {
                    **body,
                    "entities": {
                        **body["entities"],
                        "rpa_delivery_id": f"{sender}:{n}",
                    },
                }
                async with (
                    limit,
                    client.post(
                        f"/conversations/{sender}/trigger_intent",
                        json=tagged,
                        params=params,
                    ) as response,
                ):
                    await response.read()
                    if response.status >= 300:
                        raise RuntimeError(f"Rasa answered {response.status}")

        started = time.perf_counter()
        await asyncio.gather(*(conversation(s, b) for s, b in by_conversation.items()))
        return time.perf_counter() - started


async def _trackers(rasa: int, senders: list[str]) -> list[list[str]]:
    """Each conversation's external intents as the tracker holds them."""
    limit = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{rasa}") as client:

        async def said(sender: str) -> list[str]:
            async with (
                limit,
                client.get(
                    f"/conversations/{sender}/tracker",
                    params={"include_events": "ALL", "token": TOKEN},
                ) as response,
            ):
                tracker = await response.json()
            out = []
            for event in tracker["events"]:
                if event.get("event") != "user":
                    continue
                name = event["parse_data"]["intent"]["name"]
                if not name.startswith("EXTERNAL_rpa_job_"):
                    continue
                name = name.removeprefix("EXTERNAL_rpa_job_")
                if name == "progress":
                    entities = {
                        e["entity"]: e["value"] for e in event["parse_data"]["entities"]
                    }
                    name = f"progress {int(float(entities['rpa_progress']))}"
                out.append(name)
            return out

        return await asyncio.gather(*(said(s) for s in senders))
