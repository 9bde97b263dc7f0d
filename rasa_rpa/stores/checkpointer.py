"""Moving SQLite's write-ahead log into the database file, off the event loop.

By default SQLite checkpoints inside whichever commit pushes the log past
1,000 pages, so every few hundred callbacks one of them paid for copying
4 MB and syncing the file, on the event loop thread (about 9% of the
callback throughput in the P1 benchmark). A thread with its own connection
does it instead: ``sqlite3`` lets go of the GIL while SQLite works, so the
copy runs on another core while the loop answers robots.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

__all__ = ["FALLBACK_PAGES", "WalCheckpointer"]

log = logging.getLogger(__name__)
#: The commit-time checkpoint threshold left on the writer as a backstop: if
#: this thread falls behind, the log still stops growing at about 40 MB.
FALLBACK_PAGES = 10_000


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds.

    PASSIVE never waits for or blocks writers and readers: it copies what it
    can and the next round copies the rest.
    """

    def __init__(self, path: Path, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return  # the store was opened again: one thread is enough
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="rasa-rpa-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round (at most one checkpoint's time)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def checkpoint(self, db: sqlite3.Connection) -> tuple[int, int, int]:
        """One passive checkpoint: (busy, pages in the log, pages copied)."""
        busy, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(logged), int(copied)

    def _run(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
        except sqlite3.Error as exc:
            log.warning("WAL checkpointer could not open %s: %s", self.path, exc)
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(db)
                except sqlite3.Error as exc:  # busy or I/O: try again next round
                    log.debug("WAL checkpoint of %s skipped: %s", self.path, exc)
        finally:
            db.close()
