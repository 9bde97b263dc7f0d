"""The store fixtures of the contract suite, for the other store test modules:
``backend`` (each test on SQLite and on PostgreSQL) and ``store`` (opened)."""

from __future__ import annotations

from tests.stores.test_contract import backend, store

__all__ = ["backend", "store"]
