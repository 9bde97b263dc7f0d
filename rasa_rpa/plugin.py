"""Attaching rasa-rpa to the rasa-sdk action server.

rasa-sdk finds plugins only through a top-level package named
``rasa_sdk_plugins``; this library does not ship one (it would shadow
yours). Your bot's ``rasa_sdk_plugins/__init__.py`` needs two lines::

    def init_hooks(manager):
        import rasa_rpa.plugin; manager.register(rasa_rpa.plugin)

or start the server with ``rasa-rpa run``, which attaches the plugin itself.
The hook runs once per Sanic worker; it only adds routes and listeners, and
the listeners build the runtime inside the worker's own event loop.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pluggy
from sanic import Sanic
from sanic.exceptions import SanicException

from rasa_rpa.config import RpaConfig, load_config
from rasa_rpa.http.admin import admin_blueprint
from rasa_rpa.http.botpress import botpress_blueprint
from rasa_rpa.http.callbacks import blueprint
from rasa_rpa.http.common import http_error
from rasa_rpa.http.diagnostics import diagnostics_blueprint
from rasa_rpa.http.files import files_blueprint
from rasa_rpa.http.limits import apply_server_limits
from rasa_rpa.http.monitor import monitor_blueprint
from rasa_rpa.http.vendors import vendor_blueprint
from rasa_rpa.providers.http import safe_url
from rasa_rpa.runtime import Runtime

__all__ = ["attach", "attach_sanic_app_extensions", "hookimpl"]

log = logging.getLogger(__name__)
hookimpl = pluggy.HookimplMarker("rasa_sdk")


@hookimpl
def attach_sanic_app_extensions(app: Sanic[Any, Any]) -> None:
    """rasa-sdk's hook: add the callback API and background tasks to ``app``."""
    attach(app)


def attach(app: Sanic[Any, Any], config: RpaConfig | str | Path | None = None) -> None:
    """Add rasa-rpa to ``app``; the config is read now, so mistakes stop start-up."""
    if getattr(app.ctx, "rasa_rpa_attached", False):
        return
    app.ctx.rasa_rpa_attached = True
    settings = config if isinstance(config, RpaConfig) else load_config(config)
    apply_server_limits(app, settings)
    app.blueprint(blueprint)
    app.blueprint(vendor_blueprint)
    app.blueprint(botpress_blueprint)
    app.blueprint(admin_blueprint)
    app.blueprint(monitor_blueprint)
    app.blueprint(diagnostics_blueprint)
    app.blueprint(files_blueprint)

    async def start_runtime(app: Sanic[Any, Any]) -> None:
        runtime = Runtime(settings)
        await runtime.start()
        app.ctx.rasa_rpa = runtime
        log.info(
            "rasa-rpa: %d automation(s), store %s, callbacks at %s",
            len(settings.automations),
            safe_url(settings.store.url),
            settings.callbacks.public_url,
        )

    async def release_waits(app: Sanic[Any, Any]) -> None:
        # Robots' long polls would hold the shutdown for Sanic's grace period:
        # answer them now (their question is still open; they ask again).
        runtime: Runtime | None = getattr(app.ctx, "rasa_rpa", None)
        if runtime is not None:
            runtime.questions.release()

    async def stop_runtime(app: Sanic[Any, Any]) -> None:
        runtime: Runtime | None = getattr(app.ctx, "rasa_rpa", None)
        if runtime is not None:
            await runtime.stop()

    # rasa-sdk answers every exception with a 500; a wrong path or method is
    # the caller's mistake and gets its own status, as JSON like ours.
    app.exception(SanicException)(http_error)
    app.register_listener(start_runtime, "before_server_start")
    app.register_listener(release_waits, "before_server_stop")
    app.register_listener(stop_runtime, "after_server_stop")
