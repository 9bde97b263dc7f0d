"""The doctor's look at the job store: its size, and what retention would free."""

from __future__ import annotations

import time

from rasa_rpa.models import EventType, Job, JobEvent, StoredFile
from rasa_rpa.ops.findings import Report
from rasa_rpa.ops.storage import check_storage, describe_storage
from rasa_rpa.stores.retention import Storage
from rasa_rpa.stores.sqlite import SQLiteJobStore

DAY = 86400.0


def test_the_store_is_told_in_words():
    storage = Storage(
        bytes=3 * 1024 * 1024,
        rows={"jobs": 1200, "events": 1, "outbox": 3, "files": 2},
        file_bytes=12 * 1024,
        prunable={"files": 1, "delivered": 0, "events": 1, "jobs": 0},
        prunable_bytes=6 * 1024,
    )
    held, freed = describe_storage(storage)
    assert held == (
        "1,200 jobs, 1 event, 3 messages to Rasa and 2 files (12 KB): 3 MB in all"
    )
    assert freed == "1 file (6 KB), 1 event"


async def old_job_with_a_file(path, at: float) -> None:
    store = SQLiteJobStore(path)
    await store.open()
    await store.create_job(Job("old", "a", "local", "c"))
    await store.record_event(
        JobEvent("e1", "old", EventType.SUCCEEDED, {}, received_at=at)
    )
    [message] = await store.list_outbox(status="pending")
    await store.mark_delivered(message.seq or 0, at)
    await store.begin_file(
        StoredFile("f1", "old", "u1", "a.csv", "report", "text/csv", 0, "", at)
    )
    await store.put_file_chunk("f1", 0, b"x" * 2048)
    await store.finish_file("f1", 2048, "h", at)
    await store.close()


async def test_the_doctor_says_what_retention_would_free(tmp_path, make_config):
    await old_job_with_a_file(tmp_path / "jobs.db", time.time() - 100 * DAY)
    report = Report()
    await check_storage(make_config(), report)
    found = {f.check: f for f in report.findings}
    assert found["store"].status == "ok"
    assert (
        "1 job, 1 event, 1 message to Rasa and 1 file (2 KB)" in found["store"].message
    )
    assert found["retention"].status == "ok"
    assert found["retention"].message.startswith(
        "retention would free 1 file (2 KB), 1 delivered message, 1 event, 1 job now"
    )


async def test_retention_off_for_everything_is_a_warning(tmp_path, make_config):
    await old_job_with_a_file(tmp_path / "jobs.db", 1000.0)
    config = make_config(
        retention={"files": "off", "delivered": "off", "events": "off", "jobs": "off"}
    )
    report = Report()
    await check_storage(config, report)
    [retention] = [f for f in report.findings if f.check == "retention"]
    assert retention.status == "warning"
    assert "grows for ever" in retention.message
    assert "retention:" in retention.fix


async def test_no_store_yet_is_fine(make_config):
    report = Report()
    await check_storage(make_config(), report)
    [finding] = report.findings
    assert (finding.check, finding.status) == ("store", "ok")
    assert "no job store yet" in finding.message
