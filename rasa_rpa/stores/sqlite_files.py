"""The SQLite store's files and retention: chunks in, chunks out, and pruning.

A mixin of :class:`~rasa_rpa.stores.sqlite.SQLiteJobStore`, on its one
connection. A file is a ``files`` row and its ``file_chunks`` (BLOBs of
:data:`rasa_rpa.files.CHUNK_BYTES`): an upload writes each chunk in a
transaction of its own as it arrives, and a download reads one at a time,
so neither holds a whole file in memory nor the write lock for long. The
row is only "stored" (``stored_at``) once every chunk is in and checked.

Pruning follows :mod:`rasa_rpa.stores.retention`: one short write
transaction per kind and batch, so callbacks wait at most milliseconds.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasa_rpa.errors import StoreError
from rasa_rpa.models import StoredFile
from rasa_rpa.stores.retention import (
    COUNT_DELIVERED,
    COUNT_EVENTS,
    COUNT_FILES,
    COUNT_JOBS,
    DELIVERED,
    DISCARDED,
    EVENTS,
    FILES,
    JOBS,
    Cutoffs,
    Storage,
    batch_sizes,
)

__all__ = ["FILE_COLUMNS", "SQLiteFiles", "file_from_row"]

FILE_COLUMNS = (
    "id, job_id, upload_id, name, title, content_type, size, sha256, stored_at"
)
_STORED = f"SELECT {FILE_COLUMNS} FROM files WHERE stored_at IS NOT NULL"


def file_from_row(row: Any) -> StoredFile:
    return StoredFile(
        id=row["id"],
        job_id=row["job_id"],
        upload_id=row["upload_id"],
        name=row["name"],
        title=row["title"],
        content_type=row["content_type"],
        size=int(row["size"]),
        sha256=row["sha256"],
        created_at=row["stored_at"],
    )


def _marks(items: list[Any]) -> str:
    return ",".join("?" * len(items))


class SQLiteFiles:
    """Files in chunks, and retention, on the store's one connection."""

    if TYPE_CHECKING:  # SQLiteJobStore defines them
        path: Path

        @property
        def db(self) -> sqlite3.Connection: ...

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _errors(self) -> AbstractContextManager[None]: ...

    # -- files ----------------------------------------------------------------

    async def begin_file(self, file: StoredFile) -> None:
        with self._errors():
            self.db.execute(
                "INSERT INTO files (id, job_id, upload_id, name, title, content_type,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    file.id,
                    file.job_id,
                    file.upload_id,
                    file.name,
                    file.title,
                    file.content_type,
                    file.created_at,
                ),
            )

    async def put_file_chunk(self, file_id: str, n: int, data: bytes) -> None:
        with self._errors():
            self.db.execute(
                "INSERT INTO file_chunks (file_id, n, data) VALUES (?, ?, ?)",
                (file_id, n, data),
            )

    async def finish_file(
        self, file_id: str, size: int, sha256: str, now: float
    ) -> tuple[StoredFile, bool]:
        with self._write() as db:
            row = db.execute(
                "SELECT job_id, upload_id FROM files"
                " WHERE id = ? AND stored_at IS NULL",
                (file_id,),
            ).fetchone()
            if row is None:
                raise StoreError(f"upload {file_id} is no longer in the store")
            earlier = db.execute(
                f"{_STORED} AND job_id = ? AND upload_id = ?",
                (row["job_id"], row["upload_id"]),
            ).fetchone()
            if earlier is not None:
                # A retry raced an upload with the same id, which won.
                self._drop(db, [file_id])
                return file_from_row(earlier), False
            db.execute(
                "UPDATE files SET size = ?, sha256 = ?, stored_at = ? WHERE id = ?",
                (size, sha256, now, file_id),
            )
            stored = db.execute(f"{_STORED} AND id = ?", (file_id,)).fetchone()
        return file_from_row(stored), True

    async def drop_file(self, file_id: str) -> None:
        with self._write() as db:
            self._drop(db, [file_id])

    @staticmethod
    def _drop(db: sqlite3.Connection, ids: list[str]) -> None:
        db.execute(f"DELETE FROM file_chunks WHERE file_id IN ({_marks(ids)})", ids)
        db.execute(f"DELETE FROM files WHERE id IN ({_marks(ids)})", ids)

    async def get_file(self, file_id: str) -> StoredFile | None:
        with self._errors():
            row = self.db.execute(f"{_STORED} AND id = ?", (file_id,)).fetchone()
        return None if row is None else file_from_row(row)

    async def file_by_upload(self, job_id: str, upload_id: str) -> StoredFile | None:
        with self._errors():
            row = self.db.execute(
                f"{_STORED} AND job_id = ? AND upload_id = ?", (job_id, upload_id)
            ).fetchone()
        return None if row is None else file_from_row(row)

    async def file_chunk(self, file_id: str, n: int) -> bytes | None:
        with self._errors():
            row = self.db.execute(
                "SELECT data FROM file_chunks WHERE file_id = ? AND n = ?",
                (file_id, n),
            ).fetchone()
        return None if row is None else bytes(row[0])

    async def list_files(self, job_id: str) -> list[StoredFile]:
        with self._errors():
            rows = self.db.execute(
                f"{_STORED} AND job_id = ? ORDER BY stored_at", (job_id,)
            ).fetchall()
        return [file_from_row(row) for row in rows]

    # -- retention --------------------------------------------------------------

    async def prune(self, cutoffs: Cutoffs, *, batch: int) -> dict[str, int]:
        sizes = batch_sizes(batch)
        done: dict[str, int] = {}
        with self._write() as db:
            ids = [r[0] for r in db.execute(FILES, cutoffs.params(sizes["files"]))]
            if ids:
                self._drop(db, ids)
            done["files"] = len(ids)
        with self._write() as db:
            done["delivered"] = sum(
                db.execute(
                    f"DELETE FROM outbox WHERE seq IN ({query})",
                    cutoffs.params(sizes["delivered"]),
                ).rowcount
                for query in (DELIVERED, DISCARDED)
            )
        with self._write() as db:
            done["events"] = db.execute(
                f"DELETE FROM job_events WHERE seq IN ({EVENTS})",
                cutoffs.params(sizes["events"]),
            ).rowcount
        with self._write() as db:
            ids = [r[0] for r in db.execute(JOBS, cutoffs.params(sizes["jobs"]))]
            if ids:
                marks = _marks(ids)
                db.execute(f"DELETE FROM job_events WHERE job_id IN ({marks})", ids)
                db.execute(f"DELETE FROM outbox WHERE job_id IN ({marks})", ids)
                # A finished job's questions are closed: they go with it.
                db.execute(f"DELETE FROM questions WHERE job_id IN ({marks})", ids)
                db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", ids)
            done["jobs"] = len(ids)
        return done

    async def storage(self, cutoffs: Cutoffs) -> Storage:
        params = cutoffs.params()
        with self._errors():
            db = self.db
            rows = {
                kind: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for kind, table in (
                    ("jobs", "jobs"),
                    ("events", "job_events"),
                    ("outbox", "outbox"),
                    ("files", "files"),
                )
            }
            total = "SELECT COALESCE(SUM(size), 0) FROM files"
            file_bytes = db.execute(total).fetchone()
            files, prunable_bytes = db.execute(COUNT_FILES, params).fetchone()
            prunable = {
                "files": files,
                "delivered": db.execute(COUNT_DELIVERED, params).fetchone()[0],
                "events": db.execute(COUNT_EVENTS, params).fetchone()[0],
                "jobs": db.execute(COUNT_JOBS, params).fetchone()[0],
            }
        on_disk = sum(
            path.stat().st_size
            for path in (self.path, self.path.with_name(self.path.name + "-wal"))
            if path.exists()
        )
        return Storage(on_disk, rows, int(file_bytes[0]), prunable, int(prunable_bytes))
