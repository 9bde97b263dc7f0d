"""Files from robots to users: stored in pieces, checked, then announced.

A file reaches the store the same way whoever sends it (the upload route
for a robot, the local provider for a robot's output file): chunk by chunk
as it arrives, with its size held to ``files.max_bytes`` and its SHA-256
computed on the way. Only once every chunk is in (and a signed upload's
signature checked) is the file marked stored; then a ``file`` event is
recorded for its job, through :meth:`JobService.record` like any other, and
the user gets ``EXTERNAL_rpa_job_file`` with the link, in order with the
job's other news.

The two steps are two transactions, and that is safe both ways: a file is
stored before it is announced, and a crash between them leaves a stored file
whose upload the robot retries: the retry finds it by its upload id and
only records the announcement (once: the event id is the upload id).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from rasa_rpa.config import RpaConfig
from rasa_rpa.errors import InvalidPayload, RpaError, StoreError
from rasa_rpa.files import (
    CHUNK_BYTES,
    clean_name,
    clean_title,
    media_type,
    new_file_id,
    size_words,
    type_allowed,
)
from rasa_rpa.models import EventType, Job, JobEvent, StoredFile
from rasa_rpa.service import JobService
from rasa_rpa.stores.base import EventResult, Guard, JobStore

__all__ = ["MAX_UPLOAD_ID", "Attachments", "Received", "Upload"]

log = logging.getLogger(__name__)
#: Longest upload id kept (the uploader's id for retries).
MAX_UPLOAD_ID = 200


@dataclass(frozen=True)
class Upload:
    """What an uploader says about a file before its bytes arrive."""

    job_id: str
    upload_id: str
    name: str
    title: str
    content_type: str


@dataclass(frozen=True)
class Received:
    """A file taken in: as stored, the announcement, and whether it is new."""

    file: StoredFile
    result: EventResult
    #: False when an upload with the same id was stored before.
    new: bool


class Attachments:
    """Takes files in for jobs, announces them, and reads them back."""

    def __init__(self, config: RpaConfig, store: JobStore, service: JobService) -> None:
        self.settings = config.files
        self.store = store
        self.service = service

    def describe(
        self,
        job_id: str,
        upload_id: str,
        name: str | None,
        title: str | None,
        content_type: str | None,
    ) -> Upload:
        """Check what an upload says about itself, before its body is read.

        Raises:
            InvalidPayload: 415 for a type off the allow-list, 422 for a
                missing name or an unusable upload id.
        """
        media = media_type(content_type)
        if not type_allowed(media, self.settings.content_types):
            shown = media or "no Content-Type"
            raise InvalidPayload(
                f"{shown[:80]} is not accepted; send one of: "
                f"{', '.join(self.settings.content_types)} (files.content_types)",
                status=415,
                code="unsupported_media_type",
            )
        try:
            cleaned = clean_name(name or "")
        except ValueError:
            raise InvalidPayload(
                "give the file's name: ?name=orders.xlsx", code="invalid_file"
            ) from None
        if not upload_id or len(upload_id) > MAX_UPLOAD_ID or not _storable(upload_id):
            raise InvalidPayload(
                f"the upload id must be 1 to {MAX_UPLOAD_ID} characters of text",
                code="invalid_file",
            )
        return Upload(job_id, upload_id, cleaned, clean_title(title), media)

    async def receive(
        self,
        upload: Upload,
        body: AsyncIterator[bytes],
        *,
        guard: Guard | None = None,
        check: Callable[[], None] | None = None,
        source: str = "robot",
    ) -> Received:
        """Store ``body`` as ``upload``'s file, then announce it to the user.

        ``check`` runs once the whole body is in, before the file counts as
        stored (a signed upload's signature); whatever it or the body raises
        (413, 408, 401, a dropped connection) leaves nothing behind.
        """
        limit = self.settings.max_bytes
        draft = StoredFile(
            new_file_id(),
            upload.job_id,
            upload.upload_id,
            upload.name,
            upload.title,
            upload.content_type,
            0,
            "",
            time.time(),
        )
        await self.store.begin_file(draft)
        try:
            digest = hashlib.sha256()
            size = count = 0
            pending = bytearray()
            async for piece in body:
                size += len(piece)
                if size > limit:
                    raise too_large(limit)
                digest.update(piece)
                pending += piece
                while len(pending) >= CHUNK_BYTES:
                    await self.store.put_file_chunk(
                        draft.id, count, bytes(pending[:CHUNK_BYTES])
                    )
                    del pending[:CHUNK_BYTES]
                    count += 1
            if not size:
                raise InvalidPayload("the file is empty", code="invalid_file")
            if pending:
                await self.store.put_file_chunk(draft.id, count, bytes(pending))
            if check is not None:
                check()
            stored, new = await self.store.finish_file(
                draft.id, size, digest.hexdigest(), time.time()
            )
        except BaseException:
            # Shielded: a cancelled upload (the client went away) still
            # cleans up; what a crash leaves, retention drops when stale.
            with contextlib.suppress(StoreError, asyncio.CancelledError):
                await asyncio.shield(self.store.drop_file(draft.id))
            raise
        result = await self.announce(stored, guard, source=source)
        return Received(stored, result, new)

    async def announce(
        self, file: StoredFile, guard: Guard | None = None, *, source: str = "robot"
    ) -> EventResult:
        """Record the ``file`` event of a stored file (again: a duplicate)."""
        event = JobEvent(
            f"file:{file.upload_id}",
            file.job_id,
            EventType.FILE,
            {
                "file_id": file.id,
                "name": file.name,
                "title": file.title,
                "content_type": file.content_type,
                "size": file.size,
                "size_words": size_words(file.size),
                "sha256": file.sha256,
            },
            source=source,
        )
        return await self.service.record(event, guard)

    async def chunks(self, file: StoredFile) -> AsyncIterator[bytes]:
        """The file's bytes, a chunk at a time, checked against its SHA-256.

        The last chunk is only given out once the whole file matched: a
        corrupt file ends short (the download fails) instead of arriving
        wrong.

        Raises:
            StoreError: a chunk is missing, or the bytes do not match.
        """
        digest = hashlib.sha256()
        total = max(1, -(-file.size // CHUNK_BYTES))
        for n in range(total):
            data = await self.store.file_chunk(file.id, n)
            if data is None:
                raise StoreError(f"file {file.id} lacks its chunk {n}")
            digest.update(data)
            if n == total - 1 and digest.hexdigest() != file.sha256:
                raise StoreError(f"file {file.id} does not match its SHA-256")
            yield data

    async def send_path(self, job: Job, path: Path, title: str, upload_id: str) -> None:
        """Upload a file a job left on this machine (the local provider's
        ``files`` option). Refusals are logged, not raised: the job's own
        outcome is already told."""
        ids = {"job_id": job.id, "conversation_id": job.conversation_id}
        try:
            if await self.store.file_by_upload(job.id, upload_id) is not None:
                return
            size = path.stat().st_size
            if size > self.settings.max_bytes:
                raise too_large(self.settings.max_bytes)
            guess = _guess_type(path)
            upload = self.describe(job.id, upload_id, path.name, title, guess)
            await self.receive(upload, _read(path), source="local-files")
        except (OSError, RpaError) as exc:  # refused, the store down, the job gone
            log.warning(
                "job %s: file %s was not sent: %s", job.id, path.name, exc, extra=ids
            )


def too_large(limit: int) -> InvalidPayload:
    """413, in the words every route uses for a body over its limit."""
    return InvalidPayload(
        f"the file is over {limit} bytes (files.max_bytes)",
        status=413,
        code="too_large",
    )


def _guess_type(path: Path) -> str:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while data := file.read(CHUNK_BYTES):
            yield data


def _storable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
