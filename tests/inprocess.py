"""The plugin's routes served in this process: a Sanic app per test, no sockets.

The app is built as the action server builds it (a bare Sanic app with
:func:`rasa_rpa.plugin.attach`), its start-up and shutdown listeners run
through the ASGI lifespan protocol, and requests go through httpx's ASGI
transport. A test then sees the whole path in one process: the route reads
the runtime from ``app.ctx``, and the test reads the store that route wrote.

Use real HTTP (``tests.conftest.ActionServer``) where the network matters:
size and time limits, raw header bytes, robots, vendors and Rasa.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sanic import Sanic

from rasa_rpa.config import RpaConfig
from rasa_rpa.models import EventType, Job, JobEvent
from rasa_rpa.plugin import attach
from rasa_rpa.runtime import Runtime
from rasa_rpa.security import sign_webhook


class InProcessApp:
    """A started app, an HTTP client for it, and its runtime."""

    def __init__(self, app: Sanic[Any, Any], client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.runtime: Runtime = app.ctx.rasa_rpa

    # -- what a robot would have: a job and its credentials --------------------

    async def new_job(
        self, conversation_id: str | None = None, *, running: bool = True
    ) -> Job:
        """A job of the ``idle`` automation, stored directly (no robot runs)."""
        job = Job(
            id=uuid.uuid4().hex,
            automation="idle",
            provider="testbots",
            conversation_id=conversation_id or uuid.uuid4().hex,
        )
        await self.runtime.store.create_job(job)
        if running:
            started = JobEvent(f"started-{job.id}", job.id, EventType.STARTED, {})
            return (await self.runtime.service.record(started)).job
        return job

    def token(self, job: Job, conversation_id: str | None = None) -> str:
        return self.runtime.keys.mint_token(
            job.id, conversation_id or job.conversation_id
        )

    async def send_signed(
        self,
        job_id: str,
        body: dict[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> httpx.Response:
        raw = json.dumps(body).encode()
        msg_id = str(body.get("id") or uuid.uuid4().hex)
        stamp = int(time.time()) if timestamp is None else timestamp
        signature = sign_webhook(
            secret or self.runtime.keys.signing_secret(job_id), msg_id, stamp, raw
        )
        return await self.client.post(
            f"/rpa/v1/jobs/{job_id}/events",
            content=raw,
            headers={
                "Content-Type": "application/json",
                "webhook-id": msg_id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": signature,
            },
        )

    async def send_with_token(
        self, job_id: str, body: dict[str, Any] | bytes, token: str, **headers: str
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(
            f"/rpa/v1/jobs/{job_id}/events",
            content=raw,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **headers,
            },
        )


@asynccontextmanager
async def serve_in_process(config: RpaConfig) -> AsyncIterator[InProcessApp]:
    """Build, start, serve and finally stop an app with rasa-rpa attached."""
    name = f"rpa_test_{uuid.uuid4().hex[:12]}"
    app: Sanic[Any, Any] = Sanic(name)
    app.config.MOTD = False
    # Sanic's touch-up rewrites its own classes' source for the first app's
    # signals; a second app in the process then fails to start. A speed-up
    # for servers, not for tests.
    app.config.TOUCHUP = False
    attach(app, config)
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    # The ASGI lifespan runs the plugin's before_server_start and
    # after_server_stop listeners, as a real server start and stop would.
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
    )
    try:
        await to_app.put({"type": "lifespan.startup"})
        started = await asyncio.wait_for(from_app.get(), 30)
        assert started["type"] == "lifespan.startup.complete", started
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://rasa-rpa.test"
        ) as client:
            yield InProcessApp(app, client)
        await to_app.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(from_app.get(), 30)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped
    finally:
        if not lifespan.done():
            lifespan.cancel()
        await asyncio.gather(lifespan, return_exceptions=True)
        Sanic._app_registry.pop(name, None)
