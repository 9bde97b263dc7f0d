"""Job stores, chosen by the scheme of ``store.url``.

Built-in backends are named by lazy ``"module:Class"`` paths so a backend's
driver is only imported when it is used.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rasa_rpa.configvalues import DEFAULT_CONFIG
from rasa_rpa.errors import ConfigError
from rasa_rpa.stores.base import EventResult, JobStore, find_job

__all__ = ["STORE_BACKENDS", "EventResult", "JobStore", "find_job", "open_store"]

#: What a good URL looks like, for each scheme (shown in errors).
_EXAMPLES = {
    "sqlite": "sqlite:///.rasa-rpa/jobs.db?synchronous=FULL",
    "postgresql": "postgresql://rasa@db.example:5432/rasa?pool_size=10",
    "postgres": "postgresql://rasa@db.example:5432/rasa?pool_size=10",
}

STORE_BACKENDS = {
    "sqlite": "rasa_rpa.stores.sqlite:SQLiteJobStore",
    "postgresql": "rasa_rpa.stores.postgres:PostgresJobStore",
    "postgres": "rasa_rpa.stores.postgres:PostgresJobStore",
}


def open_store(url: str, base_dir: Path, *, source: str = DEFAULT_CONFIG) -> JobStore:
    """The store for ``url`` (not yet opened).

    A URL its backend cannot read (``from_url`` raises ValueError) is a
    mistake in ``store.url`` of ``source``, the config file: reported as such.
    """
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
    try:
        store: JobStore = backend.from_url(url, base_dir)
    except ValueError as exc:
        raise ConfigError(
            source,
            "store.url",
            str(exc),
            f"write it like {_EXAMPLES[scheme]}",
        ) from None
    return store
