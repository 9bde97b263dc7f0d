"""What only the SQLite store does (the shared behaviour is in test_contract.py)."""

from __future__ import annotations

from rasa_rpa.stores import open_store
from rasa_rpa.stores.sqlite import SQLiteJobStore


def test_relative_sqlite_url_is_resolved_against_the_config_folder(tmp_path):
    store = open_store("sqlite:///state/jobs.db", tmp_path)
    assert isinstance(store, SQLiteJobStore)
    assert store.path == tmp_path / "state" / "jobs.db"


def test_url_options(tmp_path):
    store = SQLiteJobStore.from_url(
        f"sqlite:///{tmp_path}/j.db?synchronous=full&busy_timeout=0.25", tmp_path
    )
    assert store.path == tmp_path / "j.db"
    assert store._synchronous == "FULL"
    assert store._busy_timeout == 0.25


async def test_wal_mode_is_on(tmp_path):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    await store.open()
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.close()
