"""Getting the outbox into the conversation: the Rasa HTTP client and the dispatcher.

Status changes become ``trigger_intent`` calls (``EXTERNAL_rpa_job_<state>``)
so the bot's own rules and responses decide the words; robot messages and
slot updates become tracker events. Everything goes with
``output_channel=latest`` so Rasa pushes it to the channel the user is on.

The dispatcher only ever takes the oldest undelivered message of a
conversation, so messages arrive in order, and retries with exponential
backoff (with jitter) while Rasa is down or busy. A message Rasa refuses for
good (say, an intent missing from the domain) is set aside as dead and
logged, so one bad message cannot block a conversation forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jwt
from yarl import URL

from rasa_rpa import strictjson
from rasa_rpa.background import BackgroundLoop
from rasa_rpa.config import DeliverySettings, RasaSettings
from rasa_rpa.drain import Drain
from rasa_rpa.errors import (
    DeliveryError,
    DeliveryRejected,
    InvalidPayload,
    StoreError,
)
from rasa_rpa.metrics import Metrics
from rasa_rpa.models import OutboxMessage
from rasa_rpa.stores.base import JobStore

__all__ = ["OutboxDispatcher", "RasaClient"]

log = logging.getLogger(__name__)
#: Entity (intents) or metadata key (events) tagging each message in the tracker,
#: so a message whose fate is unknown after a crash is not sent twice.
DELIVERY_KEY = "rpa_delivery_id"
#: Statuses that mean "try again later" although they are 4xx.
_RETRYABLE_4XX = {401, 403, 408, 409, 423, 429}


class RasaClient:
    """The slice of Rasa's HTTP API that external events need.

    Built on aiohttp: this is the plugin's hot path, and on this machine
    aiohttp's pooled keep-alive connections delivered ~15 times more small
    calls per second than httpx at the same concurrency (benchmarks, P4).
    """

    def __init__(self, settings: RasaSettings) -> None:
        self.settings = settings
        self._base = settings.url.rstrip("/")
        self._encoded_base = str(URL(self._base))
        self._session: aiohttp.ClientSession | None = None
        self._auth_params: dict[str, str] = {}
        self._auth_headers: dict[str, str] = {}
        if settings.token is not None:
            self._auth_params["token"] = settings.token.get_secret_value()
        if settings.jwt_secret is not None:
            bearer = jwt.encode(
                {"user": {"username": "rasa-rpa", "role": "admin"}},
                settings.jwt_secret.get_secret_value(),
                algorithm=settings.jwt_method,
            )
            self._auth_headers["Authorization"] = f"Bearer {bearer}"
        # Every call's query, encoded once: a dict of params costs aiohttp
        # (yarl) about 10 µs a call to encode, a tenth of a whole call to an
        # instant Rasa (benchmarks, P4).
        params = {"output_channel": "latest", "include_events": "NONE"}
        self._query = urlencode({**params, **self._auth_params}, quote_via=quote)
        self._query_side_effects = urlencode(
            {**params, "execute_side_effects": "true", **self._auth_params},
            quote_via=quote,
        )

    @property
    def session(self) -> aiohttp.ClientSession:
        """One pooled session, created inside the running event loop."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
                headers=self._auth_headers,
                # Rasa gets strict JSON: aiohttp's default json.dumps writes NaN.
                json_serialize=strictjson.dumps,
            )
        return self._session

    async def trigger_intent(
        self, conversation_id: str, name: str, entities: dict[str, Any]
    ) -> None:
        """Make the conversation act as if the user had said ``name``."""
        await self._post(
            conversation_id,
            "trigger_intent",
            {"name": name, "entities": entities},
            self._query,
        )

    async def append_events(
        self, conversation_id: str, events: list[dict[str, Any]], *, side_effects: bool
    ) -> None:
        """Add events to the tracker; with side effects, bot events are sent."""
        query = self._query_side_effects if side_effects else self._query
        await self._post(conversation_id, "tracker/events", events, query)

    async def has_delivery(self, conversation_id: str, delivery_id: str) -> bool:
        """Whether the tracker already holds the message tagged ``delivery_id``.

        Asked only for messages in doubt (an attempt got no answer, or a
        dispatcher died between sending and recording it), so the cost of
        reading the tracker is rare.
        """
        url = f"{self._base}/conversations/{quote(conversation_id, safe='')}/tracker"
        params = {"include_events": "ALL", **self._auth_params}
        try:
            async with self.session.get(url, params=params) as response:
                if response.status >= 300:
                    raise DeliveryError(
                        f"Rasa answered {response.status} for the tracker"
                    )
                tracker = await response.json(content_type=None, loads=strictjson.loads)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise DeliveryError(f"Rasa unreachable: {type(exc).__name__}") from exc
        except (ValueError, InvalidPayload) as exc:
            # A proxy's error page, a truncated answer: the question is still
            # open, so this is a retry (the message stays in doubt), not a crash
            # of the dispatcher's round.
            raise DeliveryError("Rasa's tracker answer is not JSON") from exc
        if not isinstance(tracker, dict):
            raise DeliveryError("Rasa's tracker answer is not a JSON object")
        events = tracker.get("events")
        if not isinstance(events, list):
            raise DeliveryError("Rasa's tracker answer has no list of events")
        return any(_delivery_id_of(event) == delivery_id for event in reversed(events))

    async def _post(
        self, conversation_id: str, path: str, body: Any, query: str
    ) -> None:
        # Every part encoded already (the base by yarl, once): yarl takes the
        # text as it is instead of parsing and quoting it again.
        url = URL(
            f"{self._encoded_base}/conversations/{quote(conversation_id, safe='')}"
            f"/{path}?{query}",
            encoded=True,
        )
        try:
            async with self.session.post(url, json=body) as response:
                status = response.status
                if status < 300:
                    return
                detail = _short(await response.read())
        except aiohttp.ClientConnectorError as exc:  # never reached Rasa
            raise DeliveryError(f"Rasa unreachable: {type(exc).__name__}") from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            # Sent, perhaps processed: the next attempt checks the tracker first.
            raise DeliveryError(
                f"no answer from Rasa: {type(exc).__name__}", maybe_sent=True
            ) from exc
        if status in (401, 403):
            raise DeliveryError(
                f"Rasa refused our credentials (HTTP {status}): check "
                "rasa.token / rasa.jwt_secret in rpa.yml against Rasa's --auth-token"
            )
        if status == 404 and "domain" not in detail:
            # A wrong rasa.url or a Rasa without --enable-api: fixable, so retry.
            raise DeliveryError(
                f"Rasa answered 404 ({detail}): check rasa.url and that Rasa runs "
                "with --enable-api"
            )
        if status < 500 and status not in _RETRYABLE_4XX:
            raise DeliveryRejected(f"Rasa answered {status}: {detail}")
        raise DeliveryError(f"Rasa answered {status}: {detail}", maybe_sent=True)

    async def aclose(self) -> None:
        """Close connections."""
        if self._session is not None:
            await self._session.close()


def _delivery_id_of(event: Any) -> str | None:
    """The delivery id an event carries; None for anything else, however shaped
    (a tracker is read back from Rasa, or whatever answers in its place)."""
    if not isinstance(event, dict):
        return None
    metadata = event.get("metadata")
    if isinstance(metadata, dict) and metadata.get(DELIVERY_KEY):
        return str(metadata[DELIVERY_KEY])
    parse_data = event.get("parse_data")
    entities = parse_data.get("entities") if isinstance(parse_data, dict) else None
    for entity in entities if isinstance(entities, list) else []:
        if isinstance(entity, dict) and entity.get("entity") == DELIVERY_KEY:
            return str(entity.get("value"))
    return None


def _short(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace")
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body)[:200]
    return str(body)[:200]


class OutboxDispatcher(BackgroundLoop):
    """Background task that sends the outbox to Rasa, in order per conversation.

    Stopping it abandons the messages in flight; their leases run out and
    the next dispatcher checks Rasa's tracker before sending them again.
    """

    task_name = "rasa-rpa-outbox"

    def __init__(
        self,
        store: JobStore,
        rasa: RasaClient,
        settings: DeliverySettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.rasa = rasa
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._wakeup = asyncio.Event()
        self._counters: dict[tuple[str, str], Any] = {}

    def wake(self) -> None:
        """New messages were queued in this process: look now, not at the next poll."""
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            # Cleared before the drain, not after: a wake during it counts.
            self._wakeup.clear()
            try:
                sent = await self.drain_once()
            except StoreError as exc:
                log.error("outbox: store unavailable: %s", exc)
                sent = 0
            except Exception:  # one odd answer must not stop delivery for good
                log.exception("outbox: unexpected error; carrying on")
                sent = 0
            if sent:
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.settings.poll_interval)

    async def drain_once(self) -> int:
        """Deliver what is due until nothing is; return how many were handled.

        In order per conversation, a claim and a settling commit shared by
        many messages (:class:`~rasa_rpa.drain.Drain` says how).
        """
        drain = Drain(
            self.store,
            self._deliver,
            concurrency=self.settings.concurrency,
            # The worst send: a tracker check and a call, each within the timeout.
            send_time=self.rasa.settings.timeout * 2,
            coalesce_progress=self.settings.coalesce_progress,
        )
        return await drain.run()

    async def _deliver(self, message: OutboxMessage) -> bool:
        """Send one message and record a failure; True when Rasa has it."""
        assert message.seq is not None
        now = time.time()
        if now - message.created_at > self.settings.max_age:
            reason = (
                f"undelivered after {now - message.created_at:.0f}s "
                f"(delivery.max_age); last error: {message.last_error}"
            )
            log.error(
                "outbox: message %s dead: %s",
                message.seq,
                reason,
                extra=_context(message),
            )
            await self.store.mark_dead(message.seq, reason, now)
            self._count(message, "dead")
            return False
        try:
            await self._send(message)
        except DeliveryRejected as exc:
            log.error(
                "outbox: Rasa rejected message %s for good: %s",
                message.seq,
                exc,
                extra=_context(message),
            )
            await self.store.mark_dead(message.seq, str(exc), time.time())
            self._count(message, "dead")
            return False
        except DeliveryError as exc:
            # A message in doubt stays so whatever this attempt's error:
            # a refused connection or a failed tracker check tells
            # nothing about whether an earlier attempt reached Rasa.
            await self._retry(message, str(exc), exc.maybe_sent or message.in_doubt)
            return False
        except Exception as exc:
            # A bug or a payload nothing expected: retried like a failed call
            # (until delivery.max_age), never left to block its conversation
            # and stop every drain. Whether it reached Rasa is unknown.
            log.exception("outbox: message %s could not be sent", message.seq)
            await self._retry(message, f"{type(exc).__name__}: {exc}", True)
            return False
        self._count(message, "delivered")
        return True

    async def _retry(
        self, message: OutboxMessage, error: str, maybe_sent: bool
    ) -> None:
        assert message.seq is not None
        delay = self._backoff(message.attempts)
        log.warning(
            "outbox: message %s not delivered (%s); retry in %.1fs",
            message.seq,
            error,
            delay,
            extra=_context(message),
        )
        await self.store.mark_retry(
            message.seq, error, time.time() + delay, in_doubt=maybe_sent
        )
        self._count(message, "retry")

    async def _send(self, message: OutboxMessage) -> None:
        payload = message.payload
        tag = message.delivery_id
        if message.in_doubt and await self.rasa.has_delivery(
            message.conversation_id, tag
        ):
            log.info(
                "outbox: message %s had arrived before; not sent again",
                message.seq,
                extra=_context(message),
            )
            self._count(message, "skipped")
            return
        if message.kind == "intent":
            entities = {**payload.get("entities", {}), DELIVERY_KEY: tag}
            await self.rasa.trigger_intent(
                message.conversation_id, payload["name"], entities
            )
        elif message.kind == "events":
            events = [
                {
                    **event,
                    "metadata": {**(event.get("metadata") or {}), DELIVERY_KEY: tag},
                }
                for event in payload["events"]
            ]
            await self.rasa.append_events(
                message.conversation_id,
                events,
                side_effects=bool(payload.get("execute_side_effects")),
            )
        else:
            raise DeliveryRejected(f"unknown outbox kind {message.kind!r}")

    def _count(self, message: OutboxMessage, outcome: str) -> None:
        # The labelled child, looked up once: labels() takes a lock and
        # builds a key on every call, a few µs a message.
        key = (message.kind, outcome)
        counter = self._counters.get(key)
        if counter is None:
            counter = self.metrics.delivery_attempts.labels(*key)
            self._counters[key] = counter
        counter.inc()

    def _backoff(self, attempts: int) -> float:
        base = self.settings.initial_backoff * (2 ** min(attempts, 20))
        capped = min(base, self.settings.max_backoff)
        jittered: float = capped * random.uniform(0.5, 1.0)
        return jittered  # jitter spreads retries out


def _context(message: OutboxMessage) -> dict[str, Any]:
    return {"job_id": message.job_id, "conversation_id": message.conversation_id}
