"""The doctor's look at the job store: how big it is, and what retention frees.

Everything the plugin keeps (jobs, their event logs, messages to Rasa, files
robots sent) stays until ``retention:`` lets it go; the reconciler of the
running server prunes it. The doctor opens the store itself (it answers
while the server is down too) and says how much it holds and how much a
prune would drop right now, with the same rules the server prunes by
(:mod:`rasa_rpa.stores.retention`).
"""

from __future__ import annotations

import time
from pathlib import Path

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import ConfigError, StoreError
from rasa_rpa.files import size_words
from rasa_rpa.ops.findings import Report
from rasa_rpa.stores import open_store
from rasa_rpa.stores.retention import Cutoffs, Storage

__all__ = ["check_storage", "describe_storage"]

_NAMES = {
    "jobs": ("job", "jobs"),
    "events": ("event", "events"),
    "outbox": ("message to Rasa", "messages to Rasa"),
    "delivered": ("delivered message", "delivered messages"),
    "files": ("file", "files"),
}


def _count(kind: str, number: int) -> str:
    one, many = _NAMES[kind]
    return f"{number:,} {one if number == 1 else many}"


def describe_storage(storage: Storage) -> tuple[str, str]:
    """What the store holds, and what retention would free now, in words."""
    rows = storage.rows
    held = ", ".join(_count(kind, rows[kind]) for kind in ("jobs", "events", "outbox"))
    held += f" and {_count('files', rows['files'])}"
    if rows["files"]:
        held += f" ({size_words(storage.file_bytes)})"
    held += f": {size_words(storage.bytes)} in all"
    due = storage.prunable
    parts = [
        _count(kind, due[kind])
        for kind in ("files", "delivered", "events", "jobs")
        if due[kind]
    ]
    if due["files"]:
        parts[0] += f" ({size_words(storage.prunable_bytes)})"
    freed = ", ".join(parts) if parts else "nothing"
    return held, freed


async def check_storage(config: RpaConfig, report: Report) -> None:
    """Report the store's size and what retention would free; open it to look."""
    retention = config.retention
    try:
        store = open_store(config.store.url, config.base_dir, source=config.source)
    except ConfigError:
        return  # the config check already said what is wrong with store.url
    path = getattr(store, "path", None)
    if isinstance(path, Path) and not path.exists():
        report.add("store", "ok", f"no job store yet at {path} (no job has run)")
        return
    try:
        await store.open()
        try:
            storage = await store.storage(Cutoffs.of(retention, time.time()))
        finally:
            await store.close()
    except StoreError as exc:
        report.add(
            "store",
            "error",
            f"the job store cannot be read: {exc}",
            f"check store.url in {config.source} and that the database is up",
        )
        return
    held, freed = describe_storage(storage)
    report.add("store", "ok", f"the job store holds {held}")
    kept = [
        kind
        for kind in ("files", "delivered", "events", "jobs")
        if getattr(retention, kind) is None
    ]
    every = f"(the running server prunes every {retention.interval:g} s)"
    if len(kept) == 4:
        report.add(
            "retention",
            "warning",
            "retention is off for everything: the store grows for ever",
            f"set retention: in {config.source} (docs/files.md#retention)",
        )
    elif freed == "nothing":
        report.add("retention", "ok", f"nothing is due for pruning now {every}")
    else:
        report.add("retention", "ok", f"retention would free {freed} now {every}")
