"""What ``rasa-rpa jobs`` prints: plain-text tables, a job's details, a progress bar.

Pure text from jobs, events and outbox messages (no store, no network), so
the CLI's commands stay thin. Cells hold text users and robots chose, so
control characters are printed escaped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rasa_rpa import strictjson
from rasa_rpa.controls import escape_controls
from rasa_rpa.models import Job, OutboxMessage
from rasa_rpa.ops.export import export_row, iso
from rasa_rpa.variables import job_ref

__all__ = [
    "ProgressBar",
    "job_details",
    "jobs_table",
    "outbox_table",
    "table",
    "timeline_table",
]


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table: columns as wide as their widest cell.

    Cells hold text users and robots chose (a conversation id, an error):
    their control characters are printed escaped, so a line feed cannot
    forge a row and an ESC sequence cannot drive the operator's terminal.
    """
    cells = [
        list(header),
        *[["" if v is None else escape_controls(str(v)) for v in r] for r in rows],
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _short_time(timestamp: float | None) -> str:
    text = iso(timestamp)
    return "" if text is None else text[:19].replace("T", " ") + "Z"


def _clip(text: str | None, width: int = 48) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def jobs_table(jobs: Iterable[Job]) -> str:
    """``rasa-rpa jobs list``: newest first, one line per job."""
    rows = [
        (
            job.id,
            job_ref(job.id),
            job.automation,
            job.state.value,
            "" if job.progress is None else f"{job.progress:.0f}%",
            _short_time(job.created_at),
            f"{job.elapsed():.1f}s",
            job.conversation_id,
            _clip(job.error or job.message),
        )
        for job in jobs
    ]
    header = ("JOB", "REF", "AUTOMATION", "STATE", "PROG", "CREATED (UTC)", "TOOK")
    return table((*header, "CONVERSATION", "ERROR / MESSAGE"), rows)


def timeline_table(events: Iterable[dict[str, Any]]) -> str:
    """A job's event log: when, what, from whom, and whether it changed the job."""
    rows = [
        (
            _short_time(event.get("received_at")),
            event.get("type"),
            event.get("source"),
            "yes" if event.get("applied") else "no (ignored)",
            _clip(strictjson.dumps(event.get("data") or {}, default=str), 60),
        )
        for event in events
    ]
    return table(("RECEIVED (UTC)", "TYPE", "SOURCE", "APPLIED", "DATA"), rows)


def _what(message: OutboxMessage) -> str:
    if message.kind == "intent":
        return str(message.payload.get("name"))
    events = message.payload.get("events") or []
    return ", ".join(str(e.get("event")) for e in events if isinstance(e, dict))


def outbox_table(messages: Iterable[tuple[str, OutboxMessage]]) -> str:
    """What was (or is still to be) sent to Rasa, with the last error."""
    rows = [
        (
            m.seq,
            status,
            m.kind,
            _clip(_what(m), 36),
            m.attempts,
            _short_time(m.created_at),
            _clip(m.last_error, 60),
        )
        for status, m in messages
    ]
    header = ("SEQ", "STATUS", "KIND", "WHAT", "TRIES", "QUEUED (UTC)", "LAST ERROR")
    return table(header, rows)


def job_details(
    job: Job,
    events: Sequence[dict[str, Any]],
    outbox: Sequence[tuple[str, OutboxMessage]],
) -> str:
    """``rasa-rpa jobs show``: the job, its event timeline and what Rasa was sent."""
    row = export_row(job, len(events))
    progress = "" if job.progress is None else f", {job.progress:.0f}%"
    fields = [
        ("automation", f"{job.automation} (provider {job.provider})"),
        ("provider ref", job.provider_ref),
        ("conversation", job.conversation_id),
        ("state", job.state.value + progress),
        ("message", job.message),
        ("error", job.error),
        ("created", iso(job.created_at)),
        ("started", iso(job.started_at)),
        ("finished", iso(job.finished_at)),
        ("queue / run", f"{row['queue_seconds']}s / {row['run_seconds']}s"),
        ("inputs", strictjson.dumps(job.inputs, default=str)),
        ("outputs", strictjson.dumps(job.outputs, default=str)),
    ]
    lines = [f"job {job.id} (reference {job_ref(job.id)})"]
    lines += [
        f"  {k:<14}{escape_controls(v)}" for k, v in fields if v not in (None, "")
    ]
    lines += ["", f"events ({len(events)})", timeline_table(events)]
    lines += ["", f"sent to Rasa ({len(outbox)})", outbox_table(outbox)]
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar on a terminal stream, redrawn in place with ``\\r``.

    Long work (exporting thousands of jobs, asking several vendors) should
    show that it is moving; the caller decides whether the stream is a
    terminal. Redraws are throttled so drawing never costs more than the work.
    """

    def __init__(
        self, stream: TextIO, label: str, *, width: int = 30, every: float = 0.1
    ) -> None:
        self.stream = stream
        self.label = label
        self.width = width
        self._every = every
        self._drawn_at = 0.0
        self._done = False

    def update(self, done: int, total: int, note: str = "") -> None:
        """Draw ``done`` of ``total``; the last step is always drawn."""
        now = time.monotonic()
        if done < total and now - self._drawn_at < self._every:
            return
        self._drawn_at = now
        filled = self.width if total <= 0 else self.width * done // total
        bar = "#" * filled + "-" * (self.width - filled)
        text = f"\r{self.label} [{bar}] {done}/{total} {_clip(note, 30)}"
        self.stream.write(text.ljust(self.width + len(self.label) + 50))
        self.stream.flush()

    def close(self) -> None:
        """End the line, so later output starts on a fresh one."""
        if not self._done:
            self._done = True
            self.stream.write("\n")
            self.stream.flush()


