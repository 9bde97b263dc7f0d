"""Job stores, chosen by the scheme of ``store.url``.

Built-in backends are named by lazy ``"module:Class"`` paths so a backend's
driver is only imported when it is used.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rasa_rpa.errors import ConfigError
from rasa_rpa.stores.base import EventResult, JobStore

__all__ = ["STORE_BACKENDS", "EventResult", "JobStore", "open_store"]

STORE_BACKENDS = {
    "sqlite": "rasa_rpa.stores.sqlite:SQLiteJobStore",
    "postgresql": "rasa_rpa.stores.postgres:PostgresJobStore",
    "postgres": "rasa_rpa.stores.postgres:PostgresJobStore",
}


def open_store(url: str, base_dir: Path, *, source: str = "rpa.yml") -> JobStore:
    """The store for ``url`` (not yet opened)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    target = STORE_BACKENDS.get(scheme)
    if target is None:
        raise ConfigError(
            source,
            "store.url",
            f"unsupported store scheme {scheme!r}",
            f"use one of: {', '.join(f'{s}://' for s in STORE_BACKENDS)}",
        )
    module, _, name = target.partition(":")
    backend = getattr(importlib.import_module(module), name)
    store: JobStore = backend.from_url(url, base_dir)
    return store
