"""The PostgreSQL store's files and retention: chunks in, chunks out, and pruning.

A mixin of :class:`~rasa_rpa.stores.postgres.PostgresJobStore`. The files
live in the database (``bytea`` chunks of :data:`rasa_rpa.files.CHUNK_BYTES`),
so every replica serves every file and no disk is shared. Each chunk is a
statement of its own, in and out: an upload or a download holds one chunk
in memory, and no transaction stays open while bytes cross the network.

Pruning follows :mod:`rasa_rpa.stores.retention`, one short transaction per
kind and batch. Files and jobs are picked ``FOR UPDATE SKIP LOCKED``: two
replicas pruning at once take different rows, and a job a callback is
recording right now is left for the next pass.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
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
    numbered,
)

__all__ = ["PostgresFiles"]

_COLUMNS = "id, job_id, upload_id, name, title, content_type, size, sha256, stored_at"
_STORED = f"SELECT {_COLUMNS} FROM files WHERE stored_at IS NOT NULL"
#: First key of the advisory lock that lets one upload of an id finish at a time.
_FILE_LOCK_CLASS = 0x5246
_TABLES = ["jobs", "job_events", "outbox", "files", "file_chunks", "schema_version"]


def _file(row: Any) -> StoredFile:
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


class PostgresFiles:
    """Files in chunks, and retention, on the store's pool."""

    if TYPE_CHECKING:  # PostgresJobStore defines them

        @property
        def pool(self) -> Any: ...

        async def _call(self, method: str, query: str, *args: Any) -> Any: ...

        def _errors(self, doing: str = "") -> AbstractContextManager[None]: ...

    # -- files ----------------------------------------------------------------

    async def begin_file(self, file: StoredFile) -> None:
        await self._call(
            "execute",
            "INSERT INTO files (id, job_id, upload_id, name, title, content_type,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            file.id,
            file.job_id,
            file.upload_id,
            file.name,
            file.title,
            file.content_type,
            file.created_at,
        )

    async def put_file_chunk(self, file_id: str, n: int, data: bytes) -> None:
        await self._call(
            "execute",
            "INSERT INTO file_chunks (file_id, n, data) VALUES ($1, $2, $3)",
            file_id,
            n,
            data,
        )

    async def finish_file(
        self, file_id: str, size: int, sha256: str, now: float
    ) -> tuple[StoredFile, bool]:
        with self._errors():
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT job_id, upload_id FROM files"
                    " WHERE id = $1 AND stored_at IS NULL FOR UPDATE",
                    file_id,
                )
                if row is None:
                    raise StoreError(f"upload {file_id} is no longer in the store")
                # Uploads of one id finish one at a time, here or in a replica.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2 || '/' || $3))",
                    _FILE_LOCK_CLASS,
                    row["job_id"],
                    row["upload_id"],
                )
                earlier = await conn.fetchrow(
                    f"{_STORED} AND job_id = $1 AND upload_id = $2",
                    row["job_id"],
                    row["upload_id"],
                )
                if earlier is not None:
                    await self._drop(conn, [file_id])
                    return _file(earlier), False
                stored = await conn.fetchrow(
                    "UPDATE files SET size = $2, sha256 = $3, stored_at = $4"
                    f" WHERE id = $1 RETURNING {_COLUMNS}",
                    file_id,
                    size,
                    sha256,
                    now,
                )
        return _file(stored), True

    async def drop_file(self, file_id: str) -> None:
        with self._errors():
            async with self.pool.acquire() as conn, conn.transaction():
                await self._drop(conn, [file_id])

    @staticmethod
    async def _drop(conn: Any, ids: list[str]) -> None:
        await conn.execute("DELETE FROM file_chunks WHERE file_id = ANY($1)", ids)
        await conn.execute("DELETE FROM files WHERE id = ANY($1)", ids)

    async def get_file(self, file_id: str) -> StoredFile | None:
        row = await self._call("fetchrow", f"{_STORED} AND id = $1", file_id)
        return None if row is None else _file(row)

    async def file_by_upload(self, job_id: str, upload_id: str) -> StoredFile | None:
        query = f"{_STORED} AND job_id = $1 AND upload_id = $2"
        row = await self._call("fetchrow", query, job_id, upload_id)
        return None if row is None else _file(row)

    async def file_chunk(self, file_id: str, n: int) -> bytes | None:
        query = "SELECT data FROM file_chunks WHERE file_id = $1 AND n = $2"
        data = await self._call("fetchval", query, file_id, n)
        return None if data is None else bytes(data)

    async def list_files(self, job_id: str) -> list[StoredFile]:
        query = f"{_STORED} AND job_id = $1 ORDER BY stored_at"
        return [_file(row) for row in await self._call("fetch", query, job_id)]

    # -- retention --------------------------------------------------------------

    async def prune(self, cutoffs: Cutoffs, *, batch: int) -> dict[str, int]:
        sizes = batch_sizes(batch)
        done: dict[str, int] = {}
        with self._errors():
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    query = FILES + " FOR UPDATE OF f SKIP LOCKED"
                    sql, args = numbered(query, cutoffs.params(sizes["files"]))
                    ids = [r["id"] for r in await conn.fetch(sql, *args)]
                    if ids:
                        await self._drop(conn, ids)
                    done["files"] = len(ids)
                done["delivered"] = 0
                for query in (DELIVERED, DISCARDED):
                    sql, args = numbered(
                        f"DELETE FROM outbox WHERE seq IN ({query})",
                        cutoffs.params(sizes["delivered"]),
                    )
                    done["delivered"] += _count(await conn.execute(sql, *args))
                sql, args = numbered(
                    f"DELETE FROM job_events WHERE seq IN ({EVENTS})",
                    cutoffs.params(sizes["events"]),
                )
                done["events"] = _count(await conn.execute(sql, *args))
                async with conn.transaction():
                    query = JOBS + " FOR UPDATE OF j SKIP LOCKED"
                    sql, args = numbered(query, cutoffs.params(sizes["jobs"]))
                    ids = [r["id"] for r in await conn.fetch(sql, *args)]
                    if ids:
                        for delete in (
                            "DELETE FROM job_events WHERE job_id = ANY($1)",
                            "DELETE FROM outbox WHERE job_id = ANY($1)",
                            # A finished job's questions are closed: they go too.
                            "DELETE FROM questions WHERE job_id = ANY($1)",
                            "DELETE FROM jobs WHERE id = ANY($1)",
                        ):
                            await conn.execute(delete, ids)
                    done["jobs"] = len(ids)
        return done

    async def storage(self, cutoffs: Cutoffs) -> Storage:
        params = cutoffs.params()
        with self._errors():
            async with self.pool.acquire() as conn:
                size = await conn.fetchval(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)"
                    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                    " AND c.relname = ANY($1)",
                    _TABLES,
                )
                counts = await conn.fetchrow(
                    "SELECT (SELECT COUNT(*) FROM jobs) AS jobs,"
                    " (SELECT COUNT(*) FROM job_events) AS events,"
                    " (SELECT COUNT(*) FROM outbox) AS outbox,"
                    " (SELECT COUNT(*) FROM files) AS files,"
                    " (SELECT COALESCE(SUM(size), 0) FROM files) AS file_bytes"
                )
                sql, args = numbered(COUNT_FILES, params)
                files = await conn.fetchrow(sql, *args)
                prunable = {"files": int(files[0])}
                for kind, query in (
                    ("delivered", COUNT_DELIVERED),
                    ("events", COUNT_EVENTS),
                    ("jobs", COUNT_JOBS),
                ):
                    sql, args = numbered(query, params)
                    prunable[kind] = int(await conn.fetchval(sql, *args))
        kinds = ("jobs", "events", "outbox", "files")
        rows = {kind: int(counts[kind]) for kind in kinds}
        total = int(counts["file_bytes"])
        return Storage(int(size), rows, total, prunable, int(files[1]))


def _count(status: str) -> int:
    """The row count of a command tag such as ``DELETE 12``."""
    return int(status.rsplit(" ", 1)[-1])
