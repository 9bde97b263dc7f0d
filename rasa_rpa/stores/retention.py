"""What the store may forget, and when: the pruning both SQL stores share.

``retention:`` in rpa.yml gives a period per kind of thing; the reconciler
turns them into :class:`Cutoffs` (moments before which things may go) and
asks the store to :meth:`~rasa_rpa.stores.base.JobStore.prune` one small
batch of each kind at a time, each in a short transaction of its own.

The rules, the same on both stores (written once here, with ``:name``
parameters SQLite reads as they are and PostgreSQL as ``$n``):

* nothing of a job that is not finished, and nothing of a job with a
  message not yet delivered (pending, or dead and not discarded), is
  touched: :data:`UNDELIVERED`;
* a file goes ``files`` after it was stored (or with its job); an upload
  that never completed goes once it is stale;
* a delivered (or discarded) message of a finished job goes ``delivered``
  after that;
* an event goes ``events`` after its job ended, and after it arrived;
* a finished job goes ``jobs`` after it ended, once its files are gone,
  with whatever is left of its events and messages.

A period of None (``off``) binds NULL, which no comparison passes: that
kind is kept for ever.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from rasa_rpa.configfiles import RetentionSettings

__all__ = [
    "COUNT_DELIVERED",
    "COUNT_EVENTS",
    "COUNT_FILES",
    "COUNT_JOBS",
    "DELIVERED",
    "DISCARDED",
    "EVENTS",
    "FILES",
    "JOBS",
    "KINDS",
    "STALE_UPLOAD",
    "Cutoffs",
    "Storage",
    "batch_sizes",
    "numbered",
]

#: What a prune reports, by kind, in the order it prunes them.
KINDS = ("files", "delivered", "events", "jobs")
#: An upload still incomplete this long after it began was abandoned.
STALE_UPLOAD = 24 * 3600.0


@dataclass(frozen=True)
class Cutoffs:
    """Moments (unix seconds) before which each kind may be pruned; None keeps it."""

    files: float | None
    delivered: float | None
    events: float | None
    jobs: float | None
    #: Incomplete uploads begun before this are dropped.
    stale: float

    @classmethod
    def at(
        cls,
        now: float,
        *,
        files: float | None,
        delivered: float | None,
        events: float | None,
        jobs: float | None,
    ) -> Cutoffs:
        """The cutoffs at ``now`` for periods in seconds (None: keep for ever)."""

        def before(period: float | None) -> float | None:
            return None if period is None else now - period

        return cls(
            files=before(files),
            delivered=before(delivered),
            events=before(events),
            jobs=before(jobs),
            stale=now - STALE_UPLOAD,
        )

    @classmethod
    def of(cls, settings: RetentionSettings, now: float) -> Cutoffs:
        """The cutoffs rpa.yml's ``retention:`` gives at ``now``."""
        return cls.at(
            now,
            files=settings.files,
            delivered=settings.delivered,
            events=settings.events,
            jobs=settings.jobs,
        )

    def params(self, limit: int | None = None) -> dict[str, Any]:
        """The named parameters of the statements below."""
        return {**asdict(self), "limit": limit}


@dataclass(frozen=True)
class Storage:
    """How big the store is, and what retention would free now."""

    #: On disk (SQLite: the file and its WAL) or in the database (PostgreSQL).
    bytes: int
    #: Rows per kind: jobs, events, outbox, files.
    rows: dict[str, int]
    #: The files' own bytes.
    file_bytes: int
    #: Rows a prune would drop now, per kind (:data:`KINDS`).
    prunable: dict[str, int]
    #: The file bytes a prune would drop now.
    prunable_bytes: int


def batch_sizes(batch: int) -> dict[str, int]:
    """Rows per transaction, per kind, for ``retention.batch`` rows.

    Files carry megabytes and jobs take their events along: fewer of those.
    """
    return {
        "files": max(1, min(batch, 4)),
        "delivered": batch,
        "events": batch,
        "jobs": max(1, batch // 20),
    }


#: The job ``j`` still has news on its way to Rasa (or set aside as dead).
UNDELIVERED = (
    "EXISTS (SELECT 1 FROM outbox o WHERE o.job_id = j.id"
    " AND o.delivered_at IS NULL AND o.discarded_at IS NULL)"
)
_FILE = f"""(
    (f.stored_at IS NULL AND f.created_at < :stale)
    OR (f.stored_at IS NOT NULL AND j.finished_at IS NOT NULL
        AND (f.stored_at < :files OR j.finished_at < :jobs)
        AND NOT {UNDELIVERED})
)"""
_EVENT = "e.received_at < :events AND j.finished_at < :events"
_JOB = (
    f"j.finished_at < :jobs AND NOT {UNDELIVERED}"
    " AND NOT EXISTS (SELECT 1 FROM files f WHERE f.job_id = j.id)"
)

#: Ids of files to drop, oldest first.
FILES = (
    f"SELECT f.id FROM files f JOIN jobs j ON j.id = f.job_id WHERE {_FILE}"
    " ORDER BY f.created_at LIMIT :limit"
)
#: Outbox rows delivered (or discarded) long enough ago, of finished jobs.
DELIVERED = (
    "SELECT o.seq FROM outbox o JOIN jobs j ON j.id = o.job_id"
    " WHERE o.delivered_at < :delivered AND j.finished_at IS NOT NULL"
    " ORDER BY o.delivered_at LIMIT :limit"
)
DISCARDED = (
    "SELECT o.seq FROM outbox o JOIN jobs j ON j.id = o.job_id"
    " WHERE o.discarded_at < :delivered AND j.finished_at IS NOT NULL"
    " ORDER BY o.discarded_at LIMIT :limit"
)
#: Event rows of jobs that ended long enough ago.
EVENTS = (
    "SELECT e.seq FROM job_events e JOIN jobs j ON j.id = e.job_id"
    f" WHERE {_EVENT} ORDER BY e.received_at LIMIT :limit"
)
#: Finished jobs to drop (with what is left of their events and messages).
JOBS = f"SELECT j.id FROM jobs j WHERE {_JOB} ORDER BY j.finished_at LIMIT :limit"

# What a prune would free, for ``rasa-rpa doctor``: the same conditions.
COUNT_FILES = (
    "SELECT COUNT(*), COALESCE(SUM(f.size), 0) FROM files f"
    f" JOIN jobs j ON j.id = f.job_id WHERE {_FILE}"
)
COUNT_DELIVERED = (
    "SELECT COUNT(*) FROM outbox o JOIN jobs j ON j.id = o.job_id"
    " WHERE (o.delivered_at < :delivered OR o.discarded_at < :delivered)"
    " AND j.finished_at IS NOT NULL"
)
COUNT_EVENTS = (
    f"SELECT COUNT(*) FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE {_EVENT}"
)
# Jobs whose files would go in the same pass count too.
COUNT_JOBS = (
    f"SELECT COUNT(*) FROM jobs j WHERE j.finished_at < :jobs AND NOT {UNDELIVERED}"
)

_PARAM = re.compile(r":([a-z_]+)")


def numbered(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``sql`` with ``:name`` parameters as PostgreSQL's ``$1, $2, ...``."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), [params[name] for name in names]
