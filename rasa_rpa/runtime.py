"""Everything the plugin runs in one action-server worker, built from rpa.yml.

The runtime owns the store, the providers, the job service, the files robots
send, the outbox dispatcher and the reconciler. The Sanic listeners in
:mod:`rasa_rpa.plugin` start it before the server takes requests and stop it
after, and keep it on ``app.ctx.rasa_rpa``. Routes read it from their request;
actions, which rasa-sdk hands no app, read it from the request Sanic is
serving them in (:func:`current_runtime`). No module global: two apps in one
process (tests do this) each find their own.
"""

from __future__ import annotations

from functools import partial

from sanic import Request
from sanic.exceptions import ServerError

from rasa_rpa.asking import QuestionDesk
from rasa_rpa.attachments import Attachments
from rasa_rpa.config import RpaConfig, secret_values
from rasa_rpa.delivery import OutboxDispatcher, RasaClient
from rasa_rpa.errors import RpaError
from rasa_rpa.files import FileLinks
from rasa_rpa.lifecycle import apply_event, with_handover
from rasa_rpa.logs import configure_logging
from rasa_rpa.metrics import Metrics
from rasa_rpa.models import JobState
from rasa_rpa.providers.base import Provider
from rasa_rpa.ratelimit import RateLimiter
from rasa_rpa.reconciler import Reconciler
from rasa_rpa.registry import provider_class
from rasa_rpa.security import keys_for
from rasa_rpa.service import JobService
from rasa_rpa.stores import open_store

__all__ = ["Runtime", "current_runtime"]


class Runtime:
    """The running plugin."""

    def __init__(self, config: RpaConfig) -> None:
        self.config = config
        self.store = open_store(config.store.url, config.base_dir, source=config.source)
        self.keys = keys_for(config)
        #: Signs the download links users get for files robots send.
        self.links = FileLinks(self.keys, config.files_url, config.files.link_ttl)
        titles = config.titles()
        self.store.planner = partial(apply_event, titles=titles, links=self.links.url)
        if config.handover.intent:
            self.store.planner = with_handover(
                self.store.planner,
                config.handover.intent,
                frozenset(JobState(s) for s in config.handover.states),
                frozenset(n for n, a in config.automations.items() if not a.handover),
                titles,
            )
        configure_logging([self.keys.master_key, *secret_values(config)])
        self.metrics = Metrics()
        self.service = JobService(config, self.store, self.keys, metrics=self.metrics)
        self.limiter = RateLimiter(
            config.callbacks.rate_limit, config.callbacks.rate_burst
        )
        self.rasa = RasaClient(config.rasa)
        self.dispatcher = OutboxDispatcher(
            self.store, self.rasa, config.delivery, metrics=self.metrics
        )
        #: Robots' questions: answers from the chat, long polls, expiry.
        self.questions = QuestionDesk(self.service)
        self.reconciler = Reconciler(
            self.service,
            interval=config.reconciler.interval,
            max_concurrent_polls=config.reconciler.max_concurrent_polls,
            questions=self.questions,
            retention=config.retention,
        )
        #: Files robots send: in, announced, and back out to their users.
        self.files = Attachments(config, self.store, self.service)
        self.service.on_queued.append(self.dispatcher.wake)
        providers: dict[str, Provider] = {}
        for name, settings in config.providers.items():
            cls = provider_class(settings.type, source=config.source)
            providers[name] = cls(name, settings, config, self.service.record)
            providers[name].file_sink = self.files.send_path
        self.service.providers = providers

    async def start(self, *, background: bool = True) -> None:
        """Open the store and start delivery and reconciliation.

        If any of it fails, what was built is closed before the error goes
        on: the plugin keeps no runtime that did not start, so nobody would
        call :meth:`stop` later, and providers' connections would leak.
        """
        try:
            await self.store.open()
            if background:
                self.dispatcher.start()
                self.reconciler.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop background work and release everything."""
        # Each step runs even if an earlier one fails: nothing is left open.
        self.questions.release()
        try:
            await self.reconciler.stop()
            await self.dispatcher.stop()
            await self.service.aclose()
        finally:
            try:
                await self.rasa.aclose()
            finally:
                await self.store.close()


def current_runtime() -> Runtime:
    """The runtime of the app serving the current request (an action's /webhook).

    A clear error outside a request, or when the plugin is not attached.
    """
    try:
        runtime = getattr(Request.get_current().app.ctx, "rasa_rpa", None)
    except ServerError:  # not inside a request
        runtime = None
    if runtime is None:
        raise RpaError(
            "rasa-rpa is not running in this action server: attach it with the "
            "rasa_sdk_plugins hook (docs/install.md) or start the server with "
            "`rasa-rpa run`"
        )
    found: Runtime = runtime
    return found
