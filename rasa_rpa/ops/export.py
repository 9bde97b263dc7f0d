"""Jobs as rows for ``rasa-rpa export`` (CSV/JSON); the tables are in ``tables``.

Everything here is pure (no store, no network) so the numbers an operator
reports from (queue time, run time, outcome) are tested once and mean the
same in ``rasa-rpa export`` and ``rasa-rpa jobs``. Times are ISO 8601 in
UTC, so a spreadsheet in another time zone reads the same instants.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, TextIO

from rasa_rpa import strictjson
from rasa_rpa.models import Job

__all__ = [
    "EXPORT_COLUMNS",
    "export_row",
    "iso",
    "parse_since",
    "render_csv",
    "to_csv",
    "to_json",
]

EXPORT_COLUMNS = (
    "id",
    "conversation_id",
    "automation",
    "provider",
    "state",
    "created_at",
    "started_at",
    "finished_at",
    "queue_seconds",
    "run_seconds",
    "total_seconds",
    "error",
    "events",
)


def iso(timestamp: float | None) -> str | None:
    """``2024-05-01T12:00:03.250Z`` for an epoch timestamp; None stays None."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_since(text: str) -> float:
    """Epoch seconds from an ISO 8601 date or time; without a zone it is UTC.

    Raises ValueError with the accepted forms, for the command line to show.
    """
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"--since {text!r} is not ISO 8601: write 2024-05-01 or "
            "2024-05-01T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 3)


def export_row(job: Job, events: int) -> dict[str, Any]:
    """One job as an export row (``EXPORT_COLUMNS``); spans are None until known.

    ``queue_seconds`` is how long the job waited for a robot, ``run_seconds``
    how long the robot worked, ``total_seconds`` what the user waited.
    """
    return {
        "id": job.id,
        "conversation_id": job.conversation_id,
        "automation": job.automation,
        "provider": job.provider,
        "state": job.state.value,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "queue_seconds": _span(job.created_at, job.started_at),
        "run_seconds": _span(job.started_at, job.finished_at),
        "total_seconds": _span(job.created_at, job.finished_at),
        "error": job.error,
        "events": events,
    }


#: What makes a spreadsheet read a cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@")


def _skipped_by_spreadsheets(char: str) -> bool:
    """Spreadsheets look past blanks and control characters for a formula sign."""
    return char.isspace() or not char.isprintable()


def _cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run.

    The user chooses the conversation id and robots write the error, so a
    cell may start with ``=``, ``+``, ``-`` or ``@``, also after leading
    blanks or control characters (``"\\r=HYPERLINK(...)"``, ``"\\t=1+1"``),
    which spreadsheets skip. Such a cell gets a leading ``'``, OWASP's advice:
    the spreadsheet shows the text and runs nothing.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        first = next((c for c in value if not _skipped_by_spreadsheets(c)), "")
        if first in _FORMULA_START or value[:1] in ("\t", "\r"):
            return "'" + value
    return value


def to_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Rows as CSV with a header; None becomes an empty cell.

    Lines end in CRLF (RFC 4180): Python's writer quotes a cell only for the
    characters of its line terminator, so with a bare LF a CR inside a cell
    went out unquoted and a spreadsheet started a new row there.
    """
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})


def to_json(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """Rows as one JSON array (``jq``-friendly)."""
    out.write(strictjson.dumps(list(rows), indent=2))
    out.write("\n")


def render_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV as a string (tests and small exports)."""
    out = io.StringIO()
    to_csv(rows, out)
    return out.getvalue()
