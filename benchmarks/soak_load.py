"""The soak's robots: callbacks on a fixed schedule, from a process of their own.

Callback ``k`` is due at ``t0 + k / rate`` whatever happened before it: paced,
not as fast as possible, so a server that falls behind shows as lag (the
send late against its schedule) instead of a rate that quietly drops.

Each job does what a robot does: ``job.started``, a few progress updates, on
some jobs a small file, then its result (a failure on some). ``slots`` jobs
run at once, and the schedule goes round them, so each job's callbacks are
spread over its life. Jobs are started ahead, as Rasa would (``/webhook``), by
starters of their own that keep ``slots + SPARE`` jobs alive: the schedule
never waits for a start unless the server is too slow to start them.

Requests are signed just before they are sent (a signature carries its
timestamp, and the soak lasts longer than the server accepts one for).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import MASTER_KEY, signed_event, webhook_body
from benchmarks.loadgen import build_request, read_response
from rasa_rpa.security import JobKeys

__all__ = ["Plan", "Sent", "run_soak_load"]

#: Jobs started ahead of need, beyond those running.
SPARE = 64
#: Starters working at once (each on its own connection).
STARTERS = 4
#: Most connections the schedule opens; more in flight means the server is
#: far behind, and the lag says so.
CONNECTIONS = 64
#: A connection idle this long is closed rather than used: the server closes
#: a kept-alive connection idle for ``callbacks.head_timeout`` (30 s), and a
#: request written just as it does so fails.
IDLE = 10.0
#: The small CSV some jobs upload (files are pruned too).
REPORT = b"order,amount\n" + b"".join(b"%d,%d.50\n" % (n, n * 7) for n in range(100))


@dataclass(frozen=True)
class Plan:
    """What the robots do."""

    port: int
    #: Callbacks per second, on schedule.
    rate: float
    #: How long the schedule runs.
    seconds: float
    #: Jobs running at once.
    slots: int
    #: Progress updates per job, between job.started and the result.
    progress: int = 3
    #: Every n-th job fails (the others succeed).
    fail_every: int = 10
    #: Every n-th job uploads a file before its result.
    file_every: int = 20


@dataclass
class Sent:
    """What the robots saw: one entry per callback, in schedule order."""

    #: Unix times: when each callback was due, sent, and answered.
    due: list[float] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    #: HTTP status (0: the connection failed).
    status: list[int] = field(default_factory=list)
    #: Jobs started, and how long each start took (seconds).
    starts: list[float] = field(default_factory=list)
    #: Times the schedule found no job ready to take a free slot.
    starved: int = 0
    #: Starts that failed (and were tried again).
    start_failures: int = 0
    #: Callbacks sent again on a fresh connection: the kept-alive one they
    #: went on had been closed by the server.
    retried: int = 0


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    #: time.monotonic() when it last answered.
    used: float


@dataclass
class _Job:
    job_id: str
    conversation: str
    steps: list[str]
    last: asyncio.Task[None] | None = None


class _Robots:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.keys = JobKeys(MASTER_KEY)
        self.sent = Sent()
        self.ready: asyncio.Queue[_Job] = asyncio.Queue()
        #: Jobs alive (ready or running) may not exceed slots + SPARE.
        self.room = asyncio.Semaphore(plan.slots + SPARE)
        self.idle: list[_Connection] = []
        self.opened = 0
        self.free = asyncio.Condition()
        self.numbered = 0

    def steps(self, n: int) -> list[str]:
        plan = self.plan
        steps = ["started", *(f"progress {k}" for k in range(1, plan.progress + 1))]
        if n % plan.file_every == 0:
            steps.append("file")
        steps.append("failed" if n % plan.fail_every == 0 else "succeeded")
        return steps

    async def starter(self) -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        while True:
            await self.room.acquire()
            n = self.numbered
            self.numbered += 1
            sender = f"soak-{uuid.uuid4().hex[:12]}"
            body = webhook_body("action_start_rpa_job", sender)
            headers = {"Content-Type": "application/json"}
            started = time.perf_counter()
            try:
                if connection is None:
                    connection = await asyncio.open_connection(
                        "127.0.0.1", self.plan.port
                    )
                reader, writer = connection
                writer.write(build_request("POST", "/webhook", body, headers))
                status, answer = await read_response(reader)
                events = json.loads(answer)["events"] if status == 200 else []
                job_id = next(
                    e["value"] for e in events if e.get("name") == "rpa_job_id"
                )
            except (OSError, asyncio.IncompleteReadError, StopIteration, ValueError):
                # Counted, and tried again: the schedule waits (and the lag
                # shows it) rather than the whole soak stopping.
                self.sent.start_failures += 1
                self.room.release()
                if connection is not None:
                    connection[1].close()
                    connection = None
                await asyncio.sleep(0.1)
                continue
            self.sent.starts.append(time.perf_counter() - started)
            await self.ready.put(_Job(job_id, sender, self.steps(n)))

    def request(self, job: _Job, step: str) -> bytes:
        if step == "file":
            token = self.keys.mint_token(job.job_id, job.conversation)
            return build_request(
                "POST",
                f"/rpa/v1/jobs/{job.job_id}/files?name=orders.csv&title=order%20report",
                REPORT,
                {
                    "Content-Type": "text/csv",
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": uuid.uuid4().hex,
                },
            )
        event: dict[str, Any] = {"id": uuid.uuid4().hex, "type": f"job.{step}"}
        if step.startswith("progress"):
            k = int(step.split()[1])
            percent = round(100 * k / (self.plan.progress + 1))
            event = {
                "id": event["id"],
                "type": "job.progress",
                "data": {"progress": percent, "message": f"Reading orders, page {k}"},
            }
        elif step == "succeeded":
            event["data"] = {"outputs": {"orders": 12}, "message": "All done"}
        elif step == "failed":
            event["data"] = {"error": "The portal refused the login"}
        return signed_event(self.keys, job.job_id, event)

    async def connection(self) -> tuple[_Connection, bool]:
        """An idle connection, or a new one (True) while under CONNECTIONS."""
        async with self.free:
            while True:
                while not self.idle and self.opened >= CONNECTIONS:
                    await self.free.wait()
                if not self.idle:
                    self.opened += 1
                    break
                connection = self.idle.pop()
                if time.monotonic() - connection.used < IDLE:
                    return connection, False
                connection.writer.close()  # the server may be closing it now
                self.opened -= 1
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.plan.port)
        except OSError:
            await self.drop(None)
            raise
        return _Connection(reader, writer, 0.0), True

    async def drop(self, connection: _Connection | None) -> None:
        if connection is not None:
            connection.writer.close()
        async with self.free:
            self.opened -= 1
            self.free.notify()

    async def send(self, index: int, job: _Job, step: str) -> None:
        request = self.request(job, step)
        sent = self.sent
        status = 0
        sent.sent[index] = time.time()
        try:
            for _ in range(2):
                connection, fresh = await self.connection()
                try:
                    connection.writer.write(request)
                    status, _ = await read_response(connection.reader)
                except (OSError, asyncio.IncompleteReadError):
                    await self.drop(connection)
                    if fresh:
                        break  # a new connection that fails: the server's doing
                    # A kept-alive connection the server closed meanwhile: what
                    # any HTTP client does, once, on a fresh one. (The event id
                    # makes a repeat harmless.)
                    sent.retried += 1
                    continue
                connection.used = time.monotonic()
                async with self.free:
                    self.idle.append(connection)
                    self.free.notify()
                break
        except OSError:
            pass  # could not connect: status 0
        finally:
            sent.answered[index] = time.time()
            sent.status[index] = status

    async def schedule(self) -> None:
        plan = self.plan
        total = int(plan.rate * plan.seconds)
        running: list[_Job | None] = [None] * plan.slots
        tasks: list[asyncio.Task[None]] = []
        sent = self.sent
        sent.due = [0.0] * total
        sent.sent = [0.0] * total
        sent.answered = [0.0] * total
        sent.status = [0] * total
        t0 = time.time() + 0.1
        for k in range(total):
            due = t0 + k / plan.rate
            wait = due - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
            slot = k % plan.slots
            job = running[slot]
            if job is None or not job.steps:
                if job is not None:
                    self.room.release()
                if self.ready.empty():
                    sent.starved += 1
                job = running[slot] = await self.ready.get()
            if job.last is not None and not job.last.done():
                await job.last  # a job's callbacks go in order, one at a time
            sent.due[k] = due
            job.last = asyncio.create_task(self.send(k, job, job.steps.pop(0)))
            tasks.append(job.last)
            if len(tasks) > 4 * CONNECTIONS:
                tasks = [t for t in tasks if not t.done()]
        await asyncio.gather(*tasks)

    async def run(self) -> Sent:
        starters = [asyncio.create_task(self.starter()) for _ in range(STARTERS)]
        # Before the clock: every slot's first job (and the spares) started.
        while self.ready.qsize() < self.plan.slots + SPARE:
            if self.sent.start_failures > 100:
                raise RuntimeError("soak: jobs do not start (see actions.log)")
            await asyncio.sleep(0.01)
        try:
            await self.schedule()
        finally:
            for task in starters:
                task.cancel()
            await asyncio.gather(*starters, return_exceptions=True)
            for connection in self.idle:
                connection.writer.close()
        return self.sent


def _child(plan: Plan, queue: Any) -> None:
    queue.put(asyncio.run(_Robots(plan).run()))


def run_soak_load(plan: Plan) -> tuple[multiprocessing.process.BaseProcess, Any]:
    """Start the robots in a process of their own; the queue gets :class:`Sent`."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(plan, queue))
    process.start()
    return process, queue
