"""Files in the store, on SQLite and PostgreSQL alike: chunks in, chunks out.

The PostgreSQL half needs the server at 127.0.0.1:5432 (see test_contract);
the ``backend`` and ``store`` fixtures are the contract suite's (conftest).
"""

from __future__ import annotations

import asyncio

import pytest

from rasa_rpa.errors import StoreError
from rasa_rpa.models import StoredFile
from rasa_rpa.stores import JobStore
from tests.stores.test_contract import Backend, new_job


def draft(file_id: str, job_id: str = "j1", upload_id: str = "u1") -> StoredFile:
    return StoredFile(
        file_id, job_id, upload_id, "orders.xlsx", "report", "text/csv", 0, "", 5.0
    )


async def put(store: JobStore, file_id: str, *chunks: bytes, **draft_args: str) -> None:
    await store.begin_file(draft(file_id, **draft_args))
    for n, data in enumerate(chunks):
        await store.put_file_chunk(file_id, n, data)


async def test_a_file_round_trips_chunk_by_chunk(store: JobStore) -> None:
    await store.create_job(new_job())
    await put(store, "f1", b"\x00" * 10, b"\xff\x01")
    # Not stored until finished: nobody can download half a file.
    assert await store.get_file("f1") is None
    assert await store.list_files("j1") == []
    stored, new = await store.finish_file("f1", 12, "abc", 10.0)
    assert new and stored.size == 12 and stored.sha256 == "abc"
    assert stored.created_at == 10.0
    assert await store.get_file("f1") == stored
    assert await store.file_by_upload("j1", "u1") == stored
    assert await store.list_files("j1") == [stored]
    assert await store.file_chunk("f1", 0) == b"\x00" * 10
    assert await store.file_chunk("f1", 1) == b"\xff\x01"
    assert await store.file_chunk("f1", 2) is None


async def test_two_uploads_of_one_id_store_one_file(store: JobStore) -> None:
    await store.create_job(new_job())
    await put(store, "f1", b"a")
    await put(store, "f2", b"a")
    first, second = await asyncio.gather(
        store.finish_file("f1", 1, "h", 1.0), store.finish_file("f2", 1, "h", 1.0)
    )
    assert sorted([first[1], second[1]]) == [False, True]
    assert first[0] == second[0]
    [kept] = await store.list_files("j1")
    assert await store.file_chunk("f2" if kept.id == "f1" else "f1", 0) is None


async def test_a_dropped_upload_leaves_nothing(store: JobStore) -> None:
    await store.create_job(new_job())
    await put(store, "f1", b"abc")
    await store.drop_file("f1")
    assert await store.file_chunk("f1", 0) is None
    with pytest.raises(StoreError):
        await store.finish_file("f1", 3, "h", 1.0)


async def test_a_file_needs_its_job(store: JobStore) -> None:
    with pytest.raises(StoreError):
        await store.begin_file(draft("f1", job_id="nobody"))


async def test_files_survive_reopening(backend: Backend) -> None:
    first = await backend.open()
    await first.create_job(new_job())
    await put(first, "f1", b"kept")
    await first.finish_file("f1", 4, "h", 1.0)
    await first.close()
    again = await backend.open()
    assert (await again.get_file("f1")) is not None
    assert await again.file_chunk("f1", 0) == b"kept"
